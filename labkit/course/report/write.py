"""The one call grading makes once a class is graded: everything this room writes.

Owns: :func:`write_reports`, called by ``grading.autograde.write_class`` and ``grading.kept.export``
(``--from-course``), in place of nbgrader's ``generate_feedback``.
"""
from __future__ import annotations

from pathlib import Path

from labkit.course.grading.kept import load
from labkit.course.report import classreport, feedback, lms
from labkit.course.report.graded import read_class


def write_reports(course: Path, out: Path, lines: list, log=print) -> int:
    """From the graded class course ``course`` and grades.csv's ``lines``: the feedback pages in
    ``out/feedback/<student>/`` (each scanned for secrets first), ``out/class-report.html`` and
    ``out/class-report.csv``, and the pages for one upload to the platform (``lms``). Returns the
    number of feedback pages written."""
    course, out = Path(course), Path(out)
    pages: dict[str, dict[str, str]] = {}
    written: list[Path] = []
    try:  # grades.csv is written already: whatever fails here, the grading is not lost
        klass = read_class(course)
        pages = feedback.write_pages(klass, lines, out / "feedback", log)
        written += classreport.write_class_report(klass, lines, out, log)
        kept = load(course)
        written += lms.write_returns(pages, kept.subs or [], kept.layout, kept.lms, out, log)
    except Exception as e:  # noqa: BLE001 - reported, and the run goes on to its end
        log(f"labkit autograde: warning: the feedback and the class report are incomplete "
            f"({type(e).__name__}: {e}); grades.csv is complete")
    if written:
        log(f"wrote {', '.join(str(p) for p in written)}")
    return sum(1 for student in pages.values() for name in student if name != feedback.INDEX)
