"""What a graded class gives back: the students' feedback pages and the instructor's class report.

Owns:

- ``graded``       reading the graded class course: each student's notebooks, their tasks (points, the
                   message and named mistake of a failed check), marks of written answers
                   (``labkit-marks.json``, the gradebook's manual scores and comments)
- ``feedback``     labkit's own feedback page per student and notebook, and an index per student,
                   scanned for secrets before it is written
- ``classreport``  ``class-report.html`` and ``class-report.csv`` beside grades.csv
- ``figures``      the class report's histograms (PNG data URIs with alt text)
- ``lms``          the pages returned in one upload: Moodle's feedback zip, a folder per Canvas or
                   GitHub Classroom student
- ``write``        :func:`write_reports`, the one call ``grading.autograde`` and ``grading.kept`` make

May import: ``labkit.course.grading`` (what grading wrote), ``labkit.course.release.leaks`` (the
scanner ``labkit publish`` uses) and ``student_repo`` (the install cell), ``labkit.course.render``,
``labkit.course.intake`` (the platforms' names), ``labkit.errors``. ``grading`` reaches this room
through :func:`write_reports` only, imported where it is called.
"""
from labkit.course.report.write import write_reports

__all__ = ["write_reports"]
