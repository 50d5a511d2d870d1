"""Releasing the lab: what the students get, and nothing of what they must not see.

Owns:

- ``notebooks``     ``labkit release``: the student notebooks generated from solutions/ with nbgrader, checked for leaks
- ``leaks``         which lines of the solutions are secret, found in any text
- ``student_repo``  where the student repository lives (pyproject.toml ``[tool.labkit]``); the Colab badge and install cell
- ``publish``       ``labkit publish``: the student repository, without the solutions (and without ``labkit/course/``)

May import: ``labkit.course.nbgrader``, ``labkit.course.paths``, ``labkit.errors``, ``labkit.data``,
``labkit.cli`` (``add_command``) and the standard library. Never the other subpackages
of ``labkit.course`` (intake, grading, sandbox): releasing needs no submission.
"""
