"""What is written beside grades.csv: one row per student, and the files a gradebook imports.

Owns: :func:`student_totals` (per student, from grades.csv's table),
:func:`write_summary` (``summary.csv``), :func:`write_canvas` (Canvas's
gradebook CSV: ``Student, ID, SIS User ID, SIS Login ID, Section,
<assignment>`` and a ``Points Possible`` row), :func:`write_moodle`
(Moodle's *Import grades from CSV*: identifier columns and one grade column)
and :func:`write_outputs`, which writes those a run asks for (again with
``--from-course``: :mod:`labkit.course.grading.kept`).

Points waiting for manual grading count zero in every total until they are
graded in the formgrader and exported again (``--from-course``).
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from labkit.course.grading.assignment import Template
from labkit.course.grading.gradebook import format_points as fmt_points
from labkit.course.grading.records import GradeLine
from labkit.course.intake.submissions import Submission
from labkit.errors import OptionError

LMS = ("canvas", "moodle")
SUMMARY_COLUMNS = ("student", "user_id", "name", "email")
CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
# Moodle's import columns, and the roster's columns they are read from (Canvas's SIS ids are
# what the institution's student system gives both platforms)
MOODLE_IDS = (("Email address", ("email",)), ("ID number", ("ID number", "SIS User ID")),
              ("Username", ("Username", "SIS Login ID")))


@dataclass
class Totals:
    """One student's line of summary.csv, before formatting."""

    student: str
    notebooks: dict[str, str] = field(default_factory=dict)  # notebook -> its total ("" when not scored)
    total: float = 0.0
    max: float = 0.0
    manual: float = 0.0                                       # points waiting for the formgrader
    attention: list[str] = field(default_factory=list)
    scored: bool = False                                      # at least one notebook row with points


def student_totals(lines: list[GradeLine], template: Template) -> dict[str, Totals]:
    """grades.csv's lines summed per student."""
    out: dict[str, Totals] = {}
    for line in lines:
        t = out.setdefault(line.student, Totals(line.student))
        outcome = line.status.split(";")[0].strip()
        if line.notebook not in template.notebooks:  # an unrecognised notebook or an ignored entry
            t.attention.append(line.status if outcome.startswith("ignored") else f"not graded: {line.notebook}")
            continue
        t.notebooks[line.notebook] = line.total
        if line.total != "":
            t.scored = True
            t.total += float(line.total)
            t.max += float(line.max)
            t.manual += sum(template.max_score[line.notebook][gid] for gid in line.pending)
        if outcome != "graded":
            t.attention.append(f"{line.notebook}: {outcome}")
    return out


def _person(sub: Submission) -> dict[str, str]:
    return getattr(sub.person, "fields", None) or {}


def _email(sub: Submission) -> str:
    return getattr(sub.person, "email", "") or ""


def _csv(path: Path, header, rows) -> list[list[str]]:
    rows = [list(r) for r in rows]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return rows


def write_summary(totals: dict[str, Totals], subs: list[Submission], template: Template, path: Path):
    """summary.csv: one row per student: ids, name, one total per notebook, total, max, the points
    waiting for manual grading, late, and what needs the instructor's attention (``ok`` when nothing)."""
    rows = []
    for sub in sorted(subs, key=lambda s: s.student):
        t = totals.get(sub.student, Totals(sub.student))
        attention = ([sub.problem] if sub.missing else []) + sub.attention + [
            a for a in t.attention if not (sub.missing and a.endswith(sub.problem or ""))]
        if t.manual:
            attention.append("to grade by hand")
        if sub.late:
            attention.append("late")
        user_id = sub.platform_id or getattr(sub.person, "id", "")
        numbers = [t.notebooks.get(n, "") for n in template.notebooks]
        scores = [fmt_points(t.total), fmt_points(t.max), fmt_points(t.manual)] if t.scored else ["", "", ""]
        rows.append([sub.student, user_id, sub.name, _email(sub), *numbers, *scores,
                     "yes" if sub.late else "no", "; ".join(attention) or "ok"])
    header = [*SUMMARY_COLUMNS, *template.notebooks, "total", "max", "to_grade_by_hand", "late", "status"]
    return _csv(path, header, rows)


def _graded(subs: list[Submission], totals: dict[str, Totals]) -> list[tuple[Submission, Totals]]:
    return [(s, totals[s.student]) for s in sorted(subs, key=lambda s: s.student)
            if not s.ignored and s.student in totals and totals[s.student].scored]


def check_lms(lms: tuple[str, ...], layout: str, roster_kind: str | None) -> None:
    """Refuse, before grading, an import file that could not name its students."""
    for name in lms:
        if name not in LMS:
            raise OptionError(f"--lms {name!r}: choose canvas or moodle")
    if "canvas" in lms and layout != "canvas" and roster_kind != "canvas":
        raise OptionError("--lms canvas needs Canvas user IDs: grade Canvas's download (--layout canvas) or give "
                         "Canvas's gradebook export as --roster (Grades > Export)")
    if "moodle" in lms and roster_kind is None:
        raise OptionError("--lms moodle needs --roster: Moodle's import finds students by email, ID number or "
                         "username, which only the roster has (Moodle: Grades > Export > Plain text file)")


def write_canvas(totals: dict[str, Totals], subs: list[Submission], column: str, path: Path, layout: str,
                 log=print):
    """Canvas's gradebook import CSV (Grades > Import): students keyed by their Canvas user ID
    (the roster's ``ID``, else the file names'), one assignment column and its Points Possible row."""
    rows, skipped, maximum = [], [], 0.0
    for sub, t in _graded(subs, totals):
        fields = _person(sub)
        canvas_id = fields["ID"] if "ID" in fields else sub.platform_id if layout == "canvas" else ""
        if not canvas_id.isdigit():
            skipped.append(sub.student)
            continue
        maximum = max(maximum, t.max)
        rows.append([fields.get("Student", sub.name), canvas_id, fields.get("SIS User ID", ""),
                     fields.get("SIS Login ID", ""), fields.get("Section", ""), fmt_points(t.total)])
    if skipped:
        log(f"labkit autograde: warning: {path.name}: no Canvas user ID for {', '.join(skipped)} (left out); "
            "give Canvas's gradebook export as --roster")
    points = ["Points Possible", "", "", "", "", fmt_points(maximum)]
    return _csv(path, [*CANVAS_COLUMNS, column], [points, *rows])


def write_moodle(totals: dict[str, Totals], subs: list[Submission], column: str, path: Path, layout: str,
                 log=print):
    """Moodle's grade import CSV (Grades > Import > CSV file): the roster's identifiers (email,
    ID number, username: map one of them under "Identify user by"), the full name, one grade column."""
    ids = [(header, key) for header, key in MOODLE_IDS
           if any(_field(s, key) for s, _ in _graded(subs, totals))]
    rows, skipped = [], []
    for sub, t in _graded(subs, totals):
        values = [_field(sub, key) for _, key in ids]
        if not any(values):
            skipped.append(sub.student)
            continue
        rows.append([*values, sub.name, fmt_points(t.total)])
    if skipped:
        log(f"labkit autograde: warning: {path.name}: no email, ID number or username for "
            f"{', '.join(skipped)} (left out: not on the roster, or the roster has none of these columns)")
    return _csv(path, [*(h for h, _ in ids), "Full name", column], rows)


def _field(sub: Submission, keys: tuple[str, ...]) -> str:
    fields = {k.strip().lower(): v for k, v in _person(sub).items()}
    values = [_email(sub) if key == "email" else fields.get(key.lower(), "") for key in keys]
    return next((v for v in values if v), "")


def write_outputs(lines: list[GradeLine], subs: list[Submission], template: Template, out: Path,
                  lms: tuple[str, ...] = (), column: str | None = None, layout: str = "folders",
                  log=print) -> list[Path]:
    """summary.csv, and ``<lms>-import.csv`` for each platform in ``lms``. Returns the paths written."""
    totals = student_totals(lines, template)
    written = [out / "summary.csv"]
    write_summary(totals, subs, template, written[0])
    column = column or template.assignment
    for name in lms:
        path = out / f"{name}-import.csv"
        (write_canvas if name == "canvas" else write_moodle)(totals, subs, column, path, layout, log)
        written.append(path)
    return written
