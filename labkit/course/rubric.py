"""The written answers of the solution notebooks and their rubrics.

Owns: :func:`answers` (every manually graded Markdown answer of ``solutions/``, in notebook
order, as :class:`Answer`) and :func:`rubric_for` (grade id -> :class:`Rubric`, the question and
its point items), shared by ``scripts/answer_key.py`` (``docs/rubric.md``), the marking page
(``labkit mark``) and the students' feedback.

A written answer is a Markdown cell with nbgrader's ``solution`` and ``grade``: the model
answer, then a rubric that starts with a line ``**Rubric (N points).**`` followed by
``- k point(s): ...`` items (their k add up to N) and optional notes (``- Partial credit: ...``,
``- Numbers: ...``). The question is the Markdown cell above it, ``**Question 4.1.** text``
(without that label, the whole cell is the question). Rubric item ids are ``"1"``, ``"2"``, ...
in the order the rubric lists them.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

RUBRIC_RE = re.compile(r"^\*\*Rubric \((\d+) points?\)\.\*\*\s*$", re.MULTILINE)
POINT_ITEM_RE = re.compile(r"^- (\d+) points?: ", re.MULTILINE)
QUESTION_RE = re.compile(r"\*\*Question (\d\.\d+)\.\*\*\s*(.*)", re.DOTALL)
_ITEM_RE = re.compile(r"^- (?:(\d+) points?: )?(.*?)(?=^- |\Z)", re.MULTILINE | re.DOTALL)
_SOLUTION_MARKS = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$", re.MULTILINE)


@dataclass
class Answer:
    notebook: str      # e.g. "3_vae"
    grade_id: str      # e.g. "q4_10-answer"
    question: str      # e.g. "4.10", from the Markdown cell above
    question_text: str
    points: int
    answer: str        # the model answer (Markdown), without the rubric
    rubric: str        # the rubric, from its "**Rubric (N points).**" line on
    rubric_points: int  # N


@dataclass(frozen=True)
class RubricItem:
    id: str            # "1", "2", ... in the rubric's order
    points: float
    text: str          # Markdown


@dataclass(frozen=True)
class Rubric:
    question: str      # the question's text (Markdown); the cell above the answer
    points: float      # the cell's points in nbgrader
    items: list[RubricItem] = field(default_factory=list)
    notebook: str = ""
    grade_id: str = ""
    number: str = ""   # "4.10"; "" when the question has no "**Question N.M.**" label
    notes: list[str] = field(default_factory=list)  # partial credit, numbers: Markdown

    @property
    def title(self) -> str:
        return f"Question {self.number}" if self.number else self.grade_id


def _source(cell) -> str:
    s = cell["source"]
    return "".join(s) if isinstance(s, list) else s


def _is_answer(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell["cell_type"] == "markdown" and bool(meta.get("solution")) and bool(meta.get("grade"))


def _answers_with_above(solutions: Path) -> list[tuple[Answer, str]]:
    out = []
    for path in sorted(Path(solutions).glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for i, cell in enumerate(cells):
            if not _is_answer(cell):
                continue
            meta = cell["metadata"]["nbgrader"]
            text = _source(cell)
            above = _source(cells[i - 1]) if i else ""
            q = QUESTION_RE.search(above)
            found = RUBRIC_RE.search(text)
            out.append((Answer(
                notebook=path.stem, grade_id=meta["grade_id"], question=q.group(1) if q else "",
                question_text=q.group(2).strip() if q else "", points=int(meta.get("points", 0)),
                answer=(text[: found.start()] if found else text).strip(),
                rubric=text[found.start():].strip() if found else "",
                rubric_points=int(found.group(1)) if found else 0,
            ), above))
    return out


def answers(solutions: Path) -> list[Answer]:
    """Every manually graded written answer of the solution notebooks, in notebook order."""
    return [a for a, _ in _answers_with_above(solutions)]


def rubric_item_points(rubric: str) -> list[int]:
    """The k of every "- k point(s): ..." item."""
    return [int(k) for k in POINT_ITEM_RE.findall(rubric)]


def parse_items(rubric: str) -> tuple[list[RubricItem], list[str]]:
    """The point items (ids "1", "2", ...) and the other notes of a rubric's text."""
    body = _SOLUTION_MARKS.sub("", RUBRIC_RE.sub("", rubric, count=1))
    items, notes = [], []
    for m in _ITEM_RE.finditer(body.strip()):
        text = m.group(2).strip()
        if m.group(1) is None:
            notes.append(text)
        else:
            items.append(RubricItem(str(len(items) + 1), float(m.group(1)), text))
    return items, notes


def rubric_for(solutions_dir: Path) -> dict[str, Rubric]:
    """grade id -> :class:`Rubric` of every written answer of ``solutions_dir``, in notebook order."""
    out = {}
    for a, above in _answers_with_above(solutions_dir):
        items, notes = parse_items(a.rubric)
        question = a.question_text or _SOLUTION_MARKS.sub("", above).strip()
        out[a.grade_id] = Rubric(question, float(a.points), items, a.notebook, a.grade_id, a.question, notes)
    return out
