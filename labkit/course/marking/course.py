"""A class course read for marking: its written questions and every student's answer to each.

Owns: :class:`StudentAnswer`, :class:`MarkingCourse` (:meth:`MarkingCourse.read`) and
:func:`normalise` (the text by which identical answers are grouped).

The answers come from the submitted notebooks (``submitted/<student>/<assignment>/``, repaired
by labkit), for the notebooks nbgrader graded (``autograded/`` has them, so the gradebook has a
grade to write the mark into). What the student saw comes from ``labkit-outputs/<student>/
<notebook>.ipynb`` (the submission with its outputs, capped): the code cells after the previous
written answer up to this one.
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from labkit.course.grading.assignment import template_from_course
from labkit.course.grading.seen import OUTPUTS_DIR
from labkit.course.rubric import Rubric, rubric_for
from labkit.errors import OptionError

_TEX_SPACING = re.compile(r"\\[,;:! ]|\\q?quad\b")
_MATH = re.compile(r"\$\$.*?\$\$|\$[^$]*\$", re.DOTALL)


def normalise(text: str) -> str:
    """``text`` with case, runs of whitespace and LaTeX spacing (``\\,``, spaces inside ``$...$``) ignored."""
    text = _TEX_SPACING.sub("", text)
    text = _MATH.sub(lambda m: re.sub(r"\s+", "", m.group(0)), text)
    return re.sub(r"\s+", " ", text).strip().lower()


@dataclass
class StudentAnswer:
    student: str
    notebook: str
    grade_id: str
    text: str                   # Markdown, as the student wrote it
    outputs: list | None = None  # nbformat outputs of the task's code cells; None: none in the submission
    sha256: str = field(init=False)

    def __post_init__(self):
        self.sha256 = hashlib.sha256(self.text.encode()).hexdigest()

    @property
    def key(self) -> str:
        return f"{self.student}/{self.notebook}/{self.grade_id}"


def _cells(path: Path) -> list[dict]:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError):
        return []


def _source(cell: dict) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else str(s)


def _grade_id(cell: dict) -> str | None:
    meta = (cell.get("metadata") or {}).get("nbgrader") or {}
    return meta.get("grade_id") if cell.get("cell_type") == "markdown" and meta.get("grade") else None


def task_outputs(cells: list[dict], written: set[str]) -> dict[str, list]:
    """grade id of each written answer -> the outputs of the code cells since the previous written answer."""
    out, pending = {}, []
    for cell in cells:
        gid = _grade_id(cell)
        if gid in written:
            out[gid], pending = pending, []
        elif cell.get("cell_type") == "code":
            pending.extend(o for o in cell.get("outputs") or [] if isinstance(o, dict))
    return out


@dataclass
class MarkingCourse:
    course: Path
    assignment: str
    questions: dict[str, Rubric]                    # grade id -> rubric, in the lab's order
    answers: dict[str, list[StudentAnswer]]          # grade id -> every student's answer
    salt: str = field(default_factory=lambda: secrets.token_hex(16))

    def ref(self, answer: StudentAnswer) -> str:
        """The answer's name on the page: opaque, so an anonymous page names no student even in its source."""
        return hashlib.sha256(f"{self.salt}/{answer.key}".encode()).hexdigest()[:24]

    def by_ref(self) -> dict[str, tuple[str, StudentAnswer]]:
        """ref -> (grade id, answer) of every answer."""
        return {self.ref(a): (gid, a) for gid, answers in self.answers.items() for a in answers}

    @classmethod
    def read(cls, course: Path) -> "MarkingCourse":
        course = Path(course).resolve()
        if not (course / "gradebook.db").is_file() or not (course / "source").is_dir():
            raise OptionError(f"{course} is not a class course (no gradebook.db and source/): give the folder "
                              "that `labkit autograde --keep DIR` wrote")
        template = template_from_course(course)
        questions = rubric_for(course / "source" / template.assignment)
        answers: dict[str, list[StudentAnswer]] = {gid: [] for gid in questions}
        submitted = course / "submitted"
        for student in sorted(p.name for p in submitted.iterdir() if p.is_dir()) if submitted.is_dir() else []:
            for notebook in template.notebooks:
                cls._read_student(course, template.assignment, student, notebook, questions, answers)
        return cls(course, template.assignment, questions, answers)

    @staticmethod
    def _read_student(course, assignment, student, notebook, questions, answers) -> None:
        if not (course / "autograded" / student / assignment / f"{notebook}.ipynb").is_file():
            return  # not graded: the gradebook has no grade to hold a mark
        written = {gid for gid, q in questions.items() if q.notebook == notebook}
        texts = {gid: _source(c) for c in _cells(course / "submitted" / student / assignment / f"{notebook}.ipynb")
                 if (gid := _grade_id(c)) in written}
        seen_path = course / OUTPUTS_DIR / student / f"{notebook}.ipynb"
        seen = task_outputs(_cells(seen_path), written) if seen_path.is_file() else {}
        for gid in questions:
            if gid in texts:
                answers[gid].append(StudentAnswer(student, notebook, gid, texts[gid], seen.get(gid) or None))
