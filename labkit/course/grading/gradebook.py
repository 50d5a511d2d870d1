"""The class gradebook and what is written from it: grades.csv.

Owns: merging the students' gradebooks into one class course
(:func:`build_class_course`), reading the scores back
(:func:`scores_from_gradebook`), :func:`write_grades` (grades.csv: one row
per student and notebook, same inputs, same bytes; :func:`format_points`
writes every number in it and beside it); again from a course kept with
``--keep``: :mod:`labkit.course.grading.kept`. The feedback pages are
:mod:`labkit.course.report`'s.
"""
from __future__ import annotations

import csv
import io
import os
import shutil
import sqlite3
from pathlib import Path

from labkit.course.grading.assignment import Template, copy_course
from labkit.course.grading.records import GradeLine, Row
from labkit.course.grading.sanitize import sanitize_notebook
from labkit.course.grading.seen import OUTPUTS_DIR
from labkit.course.nbgrader import COURSE_ID, write_course_config


def merge_gradebooks(target: Path, sources: list[Path]) -> None:
    """Copy every student's rows from ``sources`` (gradebooks made from the same template as
    ``target``) into ``target``. nbgrader keys every row with a UUID, so the template's rows
    are identical everywhere and the students' rows never collide."""
    con = sqlite3.connect(target)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' AND name != 'alembic_version'")]
        for i, src in enumerate(sources):
            con.execute(f"ATTACH DATABASE ? AS s{i}", (str(src),))
            for table in tables:
                con.execute(f"INSERT OR IGNORE INTO main.{table} SELECT * FROM s{i}.{table}")
            con.commit()
            con.execute(f"DETACH DATABASE s{i}")
    finally:
        con.close()


def format_points(x: float | None) -> str:
    """Points as grades.csv and summary.csv write them: up to 3 decimals, no trailing zeros, "" for None."""
    if x is None:
        return ""
    text = f"{x:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def scores_from_gradebook(db: Path, assignment: str, template: Template) -> dict[tuple[str, str], dict]:
    """(student, notebook) -> {grade_id: (score or None, needs manual grade)} for every submission."""
    from nbgrader.api import Gradebook, MissingEntry

    out = {}
    with Gradebook("sqlite:///" + str(db.resolve()), COURSE_ID) as gb:
        for student in gb.students:
            for name in template.notebooks:
                try:
                    snb = gb.find_submission_notebook(name, assignment, student.id)
                except MissingEntry:
                    continue
                cells = {}
                for grade in snb.grades:
                    pending = grade.needs_manual_grade and grade.manual_score is None
                    cells[grade.name] = (None if pending else float(grade.score), pending)
                out[(student.id, name)] = cells
    return out


def write_grades(gradebooks: list[Path], template: Template, rows: list[Row], out_csv: Path) -> list[GradeLine]:
    """grades.csv: one row per student and notebook, sorted; same inputs, same bytes.

    The scores come from ``gradebooks``: the class course's one, or each student's own."""
    scores = {}
    for db in gradebooks:
        scores.update(scores_from_gradebook(db, template.assignment, template))
    lines = [_grade_line(row, scores.get((row.student, row.notebook), {}), template)
             for row in sorted(rows, key=lambda r: (r.student, r.notebook))]
    ids = grade_columns(template)
    clash = {gid for _, gid in ids if sum(g == gid for _, g in ids) > 1}
    columns = [f"{name}:{gid}" if gid in clash else gid for name, gid in ids]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["student", "notebook", *columns, "total", "max", "status"])
    writer.writerows(line_as_csv(line, ids) for line in lines)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    out_csv.write_text(buf.getvalue(), encoding="utf-8")
    return lines


def grade_columns(template: Template) -> list[tuple[str, str]]:
    """(notebook, grade id) of every graded cell: grades.csv's point columns, in order."""
    return [(name, gid) for name in template.notebooks for gid in template.cells[name]]


def line_as_csv(line: GradeLine, columns: list[tuple[str, str]]) -> list[str]:
    """``line`` as a row of grades.csv (``columns``: :func:`grade_columns`)."""
    return [line.student, line.notebook, *line.cells(columns), line.total, line.max, line.status]


def _grade_line(row: Row, cells: dict[str, tuple[float | None, bool]], template: Template) -> GradeLine:
    """``row`` with its notebook's points (``cells``: grade id -> (score or None, waiting for the formgrader))."""
    if not row.scored:
        return GradeLine(row.student, row.notebook, {}, (), "", "", row.status)
    points, pending, total, maximum = {}, [], 0.0, 0.0
    for gid in template.cells.get(row.notebook, []):
        score, waiting = cells.get(gid, (0.0, False))
        if waiting:
            pending.append(gid)
        points[gid] = format_points(score)
        total += score or 0.0
        maximum += template.max_score[row.notebook][gid]
    status = row.status + ("; to grade by hand: " + ", ".join(pending) if pending else "")
    return GradeLine(row.student, row.notebook, points, tuple(pending), format_points(total), format_points(maximum),
                     status)


# nbconvert strips scripts, event handlers and active HTML from markdown and outputs
SANITIZE = "c.HTMLExporter.sanitize_html = True\n"


def build_class_course(course: Path, template: Template, graded: list[tuple[str, Path]]) -> None:
    """One nbgrader course with every graded student (their autograded notebooks, one gradebook)."""
    copy_course(template, course)
    write_course_config(course, course / "gradebook.db", SANITIZE)  # also read by the formgrader
    for student, src in graded:
        for part in ("submitted", "autograded", OUTPUTS_DIR):  # OUTPUTS_DIR: what the student saw
            folder = src / part / student
            if folder.exists():
                shutil.copytree(folder, course / part / student, dirs_exist_ok=True)
        for nb in (course / "autograded" / student).glob("*/*.ipynb"):
            sanitize_notebook(nb)  # what the feedback and the formgrader show: no student script
    merge_gradebooks(course / "gradebook.db", [src / "gradebook.db" for _, src in graded])


def make_private(*paths: Path | None) -> None:
    """Folders 0700 and files 0600 under each of ``paths`` (links left alone), whatever the umask
    was or whoever made them before: they hold hidden tests, grades and students' work."""
    for top in paths:
        if top is None or not top.is_dir() or top.is_symlink():
            continue
        os.chmod(top, 0o700)
        for dirpath, dirnames, filenames in os.walk(top):
            for name in dirnames:
                if not os.path.islink(os.path.join(dirpath, name)):
                    os.chmod(os.path.join(dirpath, name), 0o700)
            for name in filenames:
                if not os.path.islink(os.path.join(dirpath, name)):
                    os.chmod(os.path.join(dirpath, name), 0o600)
