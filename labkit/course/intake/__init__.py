"""Intake: a class's SUBMISSIONS as a platform delivers them, read into one record per student.

Owns:

- ``submissions``  :class:`Submission`; finding and reading SUBMISSIONS (folders, zips), matching files to notebooks
- ``layouts``      how platforms lay out SUBMISSIONS (Moodle, GitHub Classroom, Canvas), detected and read
- ``roster``       the class roster, matched to the submissions (missing students, strangers)
- ``unzip``        one zip member read with a hard cap on the bytes it decompresses to
- ``repair``       checking a submitted notebook against its release and repairing it

May import: ``labkit.errors`` and the standard library (nbformat inside functions).
Never ``grading`` or ``sandbox``: the grading imports intake, not the other way.
"""
