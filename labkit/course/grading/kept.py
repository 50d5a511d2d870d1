"""The class course kept with ``--keep``, and ``labkit autograde --from-course``.

Owns: what labkit keeps in the class course beside nbgrader's own files, read
back by ``--from-course`` after written answers were graded in the formgrader:
:data:`ROWS_FILE` (grades.csv's rows before the scores: each row's status) and
:data:`STUDENTS_FILE` (who each student is, the layout, the ``--lms`` files and
their column), written by :func:`save` and read by :func:`load`;
:func:`export` (grades.csv and the feedback pages again) and :func:`outputs`
(summary.csv and the import files again). The scores come from the course's
gradebook, the notebooks from its ``release/`` folder
(:func:`~labkit.course.grading.assignment.template_from_course`).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from labkit.course.grading.assignment import template_from_course
from labkit.course.grading.exports import write_outputs
from labkit.course.grading.gradebook import make_private, write_grades
from labkit.course.grading.records import GradeLine, Row
from labkit.course.intake.roster import Person
from labkit.course.intake.submissions import Submission
from labkit.errors import OptionError

ROWS_FILE = "labkit-rows.json"          # each row's status
STUDENTS_FILE = "labkit-students.json"  # who each student is, for summary.csv and the import files
# the marking page's record of the written answers (labkit.course.marking.store writes it; the term's
# course flags entries to re-mark, the feedback pages and the class report read it)
MARKS_FILE = "labkit-marks.json"
SUBMISSION_FIELDS = ("student", "source", "problem", "ignored", "name", "platform_id", "late", "attention", "missing")


@dataclass
class Kept:
    """What a kept course holds for ``--from-course`` besides nbgrader's files."""

    rows: list[Row]
    subs: list[Submission] | None  # None: a course kept before labkit saved the students
    layout: str = "folders"
    lms: tuple[str, ...] = ()
    column: str | None = None


def save(course: Path, rows: list[Row], subs: list[Submission], layout: str, lms: tuple[str, ...],
         column: str | None) -> None:
    """Keep ``rows`` and what summary.csv and the import files need in the class course."""
    (course / ROWS_FILE).write_text(json.dumps([asdict(r) for r in rows], indent=1) + "\n")
    students = [submission_record(s) for s in subs]
    record = {"layout": layout, "lms": list(lms), "column": column, "students": students}
    (course / STUDENTS_FILE).write_text(json.dumps(record, indent=1) + "\n")


def submission_record(sub: Submission) -> dict:
    """What summary.csv and the import files need of ``sub``, as JSON."""
    return {**{k: getattr(sub, k) for k in SUBMISSION_FIELDS}, "person": asdict(sub.person) if sub.person else None}


def submission_from(record: dict) -> Submission:
    """The Submission :func:`submission_record` kept (without its files)."""
    return Submission(**{**record, "person": Person(**record["person"]) if record["person"] else None})


def load(course: Path) -> Kept:
    """What :func:`save` kept in ``course``; OptionError when it is not a kept course."""
    rows_file = course / ROWS_FILE
    if not rows_file.is_file():
        raise OptionError(f"{course} is not a course kept by `labkit autograde --keep` (no {ROWS_FILE})")
    rows = [Row(**r) for r in json.loads(rows_file.read_text())]
    if not (course / STUDENTS_FILE).is_file():
        return Kept(rows, None)
    record = json.loads((course / STUDENTS_FILE).read_text())
    subs = [submission_from(s) for s in record["students"]]
    return Kept(rows, subs, record["layout"], tuple(record["lms"]), record["column"])


def export(course: str | os.PathLike, out: str | os.PathLike = "grades", log=print) -> list[GradeLine]:
    """Rewrite ``out/grades.csv`` and ``out/feedback/`` from a course kept with ``--keep``
    (after grading written answers in nbgrader's formgrader)."""
    course, out = Path(course).resolve(), Path(out).resolve()
    kept = load(course)
    template = template_from_course(course)
    old_umask = os.umask(0o077)
    try:
        lines = write_grades([course / "gradebook.db"], template, kept.rows, out / "grades.csv")
        from labkit.course.report import write_reports  # report/ builds on grading/: imported here only
        n = write_reports(course, out, lines, log)
        make_private(out)
    finally:
        os.umask(old_umask)
    log(f"wrote {out / 'grades.csv'} ({len(lines)} rows) and {n} feedback pages in {out / 'feedback'}")
    return lines


def outputs(course: str | os.PathLike, out: str | os.PathLike, lines: list[GradeLine], log=print) -> list[Path]:
    """summary.csv and the import files again, from a course kept with ``--keep`` (after the
    formgrader) and grades.csv's ``lines`` (:func:`export`). Returns the paths written."""
    course = Path(course).resolve()
    kept = load(course)
    if kept.subs is None:
        return []
    return write_outputs(lines, kept.subs, template_from_course(course), Path(out).resolve(), kept.lms, kept.column,
                         kept.layout, log)
