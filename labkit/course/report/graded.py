"""A graded class course read back for the feedback pages and the class report.

Owns: :class:`Task` (one graded cell of one student's notebook: points, the failed check's
message and named mistake, the marker's verdict), :class:`Graded` (one student's notebook),
:func:`read_class` and :func:`marks_of` (``<course>/labkit-marks.json``, contract 1).

The points come from the course's gradebook (the source of truth, the formgrader's manual scores
included); a failed test cell's message is the ``evalue`` of its error (never its traceback,
which quotes the test code); its named mistake is the last named-mistake record
(``metadata["labkit"]``, :mod:`labkit.checks`) the cell displayed before the error.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from labkit.course.grading.assignment import template_from_course
from labkit.course.grading.kept import MARKS_FILE
from labkit.course.nbgrader import COURSE_ID
from labkit.course.rubric import rubric_for


@dataclass
class Task:
    """One graded cell of a student's notebook."""

    grade_id: str
    kind: str                  # "test" (autograded), "written" (a markdown answer) or "manual" (code graded by hand)
    title: str                 # the heading above it in the notebook
    score: float | None        # None: waiting for the marker
    max: float
    message: str = ""          # a failed test: what the check said
    mistake: str | None = None  # a failed test: the named mistake it recorded
    comment: str = ""          # the marker's comment
    items: list[str] = field(default_factory=list)  # rubric items applied (ids)
    marked: bool = False       # a written answer has a score from the marker

    @property
    def failed(self) -> bool:
        return self.kind == "test" and self.score is not None and self.score < self.max


@dataclass
class Graded:
    """One student's graded notebook: the autograded node, its tasks by grade id, in order."""

    student: str
    notebook: str
    nb: object
    submitted: object | None
    tasks: dict[str, Task]


@dataclass
class Class:
    course: Path
    assignment: str
    notebooks: list[str]
    graded: dict[tuple[str, str], Graded]
    marks: dict[str, dict]
    rubric: dict
    max_score: dict[str, dict[str, float]]  # notebook -> grade id -> points possible, in notebook order
    kinds: dict[str, dict[str, str]]        # notebook -> grade id -> Task.kind


def nbgrader_of(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def marks_of(course: Path) -> dict[str, dict]:
    """``labkit-marks.json``'s answers (``"<student>/<notebook>/<grade_id>"`` -> entry); {} without one."""
    path = course / MARKS_FILE
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    answers = record.get("answers") if isinstance(record, dict) else None
    return answers if isinstance(answers, dict) else {}


def rubric_of(course: Path, assignment: str) -> dict:
    """The rubric of each written question (``labkit.course.rubric``)."""
    try:
        return rubric_for(course / "source" / assignment)
    except Exception:  # noqa: BLE001 - a rubric that cannot be read shows item ids only
        return {}


def failure(cell) -> tuple[str, str | None]:
    """(message, named mistake) of a test cell that failed: its error's ``ename: evalue``, and
    the last named-mistake record shown before it."""
    mistake, message = None, ""
    for out in cell.get("outputs", []):
        record = (out.get("metadata") or {}).get("labkit") or {}
        if "check" in record:
            mistake = record.get("mistake")
        if out.get("output_type") == "error":
            name, value = out.get("ename", ""), str(out.get("evalue", "")).strip()
            if name in ("CheckFailed", "ReferenceCallError") and value:
                message = value
            elif name == "NotImplementedError":
                message = "not written yet: a function this check calls raises NotImplementedError"
            else:
                message = f"{name}: {value}" if value else f"{name} (a check without a message)"
            break
        if out.get("output_type") == "stream" and out.get("name") == "stderr" and not message:
            message = "the cell wrote to stderr (a warning costs the points): " + "".join(out.get("text", ""))[:300]
    return message, mistake


def kind_of(cell) -> str:
    """A graded cell's :attr:`Task.kind`."""
    return "written" if cell.cell_type == "markdown" else "manual" if nbgrader_of(cell).get("solution") else "test"


def _titles(nb) -> dict[int, str]:
    title, out = "", {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and cell.source.lstrip().startswith("#"):
            title = cell.source.lstrip().split("\n", 1)[0].lstrip("#").strip()
        out[i] = title
    return out


def _tasks(student: str, notebook: str, nb, scores: dict, marks: dict) -> dict[str, Task]:
    titles, tasks = _titles(nb), {}
    for i, cell in enumerate(nb.cells):
        meta = nbgrader_of(cell)
        gid = meta.get("grade_id")
        if not meta.get("grade") or gid not in scores:
            continue
        score, maximum, comment, manual = scores[gid]
        task = Task(gid, kind_of(cell), titles[i], score, maximum, comment=comment, marked=manual)
        if task.failed:
            task.message, task.mistake = failure(cell)
        mark = marks.get(f"{student}/{notebook}/{gid}")
        if isinstance(mark, dict):
            task.items = [str(x) for x in mark.get("items") or []]
            task.comment = str(mark.get("comment") or task.comment)
            task.marked = task.marked or (mark.get("score") is not None and not mark.get("to_remark"))
        tasks[gid] = task
    return tasks


def _scores(gb, notebook: str, assignment: str, student: str) -> dict | None:
    from nbgrader.api import MissingEntry

    try:
        snb = gb.find_submission_notebook(notebook, assignment, student)
    except MissingEntry:
        return None
    comments = {c.name: (c.manual_comment or "") for c in snb.comments}
    out = {}
    for g in snb.grades:
        waiting = g.needs_manual_grade and g.manual_score is None
        out[g.name] = (None if waiting else float(g.score), float(g.max_score), comments.get(g.name, ""),
                       g.manual_score is not None)
    return out


def read_class(course: Path) -> Class:
    """Every autograded notebook of the class course ``course`` with its tasks."""
    import nbformat
    from nbgrader.api import Gradebook

    template = template_from_course(course)
    assignment, marks = template.assignment, marks_of(course)
    graded = {}
    with Gradebook("sqlite:///" + str((course / "gradebook.db").resolve()), COURSE_ID) as gb:
        for folder in sorted((course / "autograded").glob("*")):
            for name in template.notebooks:
                path = folder / assignment / f"{name}.ipynb"
                scores = _scores(gb, name, assignment, folder.name) if path.is_file() else None
                if scores is None:
                    continue
                nb = nbformat.read(path, as_version=4)
                sub = course / "submitted" / folder.name / assignment / f"{name}.ipynb"
                submitted = nbformat.read(sub, as_version=4) if sub.is_file() else None
                graded[folder.name, name] = Graded(folder.name, name, nb, submitted,
                                                   _tasks(folder.name, name, nb, scores, marks))
    kinds = {name: {nbgrader_of(c)["grade_id"]: kind_of(c) for c in nb.cells if nbgrader_of(c).get("grade")}
             for name, nb in template.release.items()}
    return Class(course, assignment, template.notebooks, graded, marks, rubric_of(course, assignment),
                 template.max_score, kinds)
