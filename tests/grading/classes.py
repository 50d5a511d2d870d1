"""Classes built from the grading-accuracy variants, for the tests of what grading writes.

:func:`variant_class` writes, for ``0_preparation`` (fast: no MNIST, no training), a Moodle
download (``Full Name_<participant>_assignsubmission_file_/``) and its grading worksheet:

- ``Ada Correct``: every solution cell as in the model answers, written answers with mathematics;
- one student per solution cell, holding one planted mistake (the first ``wrong`` variant of
  ``tests/grading/variants/nb0_preparation.py``), the other cells correct; ``q3_5-code``'s mistake
  twice (two students), so that a count of 2 is seen;
- ``Leo Leaker``: correct, but a given cell prints a line of a hidden-test region (a planted leak);
- ``Zed Broken``: a notebook cut short (not JSON): graded as invalid, zero, listed for attention.

The code of a planted cell is the model answer's followed by the variant, as the harness runs it
(the variant may define only some of the cell's functions). :data:`PLANTED` says which student
holds which mistake; the test module grades the class once (a session-scoped fixture).
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat

from grading.variants import nb0_preparation
from helpers.course import Submissions, cell

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "0_preparation"
SOLUTION = ROOT / "solutions" / f"{NOTEBOOK}.ipynb"
RELEASE = ROOT / "notebooks" / f"{NOTEBOOK}.ipynb"
DELIMITER = re.compile(r"^\s*### (BEGIN|END) (SOLUTION|HIDDEN TESTS)", re.M)
ANSWER = r"The encoding is $\mathbf{z} = \mathbf{V}_M^\top \mathbf{x}$, from $\mathbf{X} = \mathbf{U}\boldsymbol{\Sigma}\mathbf{V}^\top$."


def _mistake(grade_id: str) -> tuple[str, str]:
    name, code = next(iter(nb0_preparation.CELLS[grade_id]["wrong"].items()))
    return name, code


# student -> (full name, participant id, solution cell, (variant name, code)); None: no mistake
PLANTED = {
    "ada": ("Ada Correct", "2001", None),
    **{f"s{i}": (f"Student {label}", f"20{10 + i}", (gid, _mistake(gid)))
       for i, (gid, label) in enumerate([("q3_1-code", "One"), ("q3_2-code", "Two"), ("q3_3-code", "Three"),
                                         ("q3_4-code", "Four"), ("q3_5-code", "Five")])},
    "twin": ("Twin Five", "2020", ("q3_5-code", _mistake("q3_5-code"))),
    "leo": ("Leo Leaker", "2030", None),
}
BROKEN = ("Zed Broken", "2040")


def model_code(grade_id: str) -> str:
    """The model answer of solution cell ``grade_id``, its delimiters removed."""
    source = cell(nbformat.read(SOLUTION, as_version=4), grade_id).source
    return "\n".join(line for line in source.split("\n") if not DELIMITER.match(line))


def hidden_lines(path: Path = SOLUTION) -> list[str]:
    """Every non-blank line inside a hidden-test or solution region, or of a solution cell without
    regions (a written model answer), of the instructor's notebook ``path``: parsed here, without
    labkit's scanner."""
    lines = []
    for c in nbformat.read(path, as_version=4).cells:
        meta = c.metadata.get("nbgrader", {})
        inside = False
        if meta.get("solution") and not DELIMITER.search(c.source):
            lines += [ln for ln in c.source.split("\n") if ln.strip()]
            continue
        for line in c.source.split("\n"):
            if DELIMITER.match(line):
                inside = line.strip().startswith("### BEGIN")
            elif inside and line.strip():
                lines.append(line)
    return lines


def leak_line() -> str:
    """A line of q3_1-tests' hidden tests, long enough to be unmistakable."""
    source = cell(nbformat.read(SOLUTION, as_version=4), "q3_1-tests").source
    hidden = source.split("### BEGIN HIDDEN TESTS", 1)[1].split("\n")
    return next(line.strip() for line in hidden if len(line.strip()) > 30 and '"' not in line)


def _notebook(planted, leak: bool):
    nb = nbformat.read(RELEASE, as_version=4)
    for c in nb.cells:
        meta = c.metadata.get("nbgrader", {})
        if not meta.get("solution"):
            continue
        if c.cell_type == "markdown":
            c.source = ANSWER
            continue
        c.source = model_code(meta["grade_id"])
        if planted and planted[0] == meta["grade_id"]:
            c.source += "\n\n# the student's version\n" + planted[1][1]
    if leak:
        given = next(c for c in nb.cells if c.cell_type == "code" and "torch.manual_seed(0)" in c.source)
        given.source += f"\nprint({leak_line()!r})"
    return nb


WORKSHEET_HEADER = "Identifier,Full name,Email address,Status,Grade,Maximum Grade\n"


def variant_class(folder: Path) -> dict:
    """The class's download, worksheet and solutions (this notebook only) under ``folder``;
    returns autograde's keyword arguments (add ``out``, ``keep``, ``options``)."""
    subs = Submissions(folder / "download")
    rows = []
    for student, (name, pid, planted) in PLANTED.items():
        subs.add(f"{name}_{pid}_assignsubmission_file_/{NOTEBOOK}.ipynb", _notebook(planted, student == "leo"))
        rows.append(f"Participant {pid},{name},{student}@example.org,Submitted for grading,,17\n")
    text = nbformat.writes(_notebook(None, False))
    subs.add(f"{BROKEN[0]}_{BROKEN[1]}_assignsubmission_file_/{NOTEBOOK}.ipynb", text[: len(text) // 2])
    rows.append(f"Participant {BROKEN[1]},{BROKEN[0]},zed@example.org,Submitted for grading,,17\n")
    roster = folder / "worksheet.csv"
    roster.write_text(WORKSHEET_HEADER + "".join(rows), encoding="utf-8")
    solutions = folder / "solutions"
    solutions.mkdir()
    shutil.copyfile(SOLUTION, solutions / SOLUTION.name)
    return {"submissions": subs.folder, "solutions": solutions, "roster": roster, "lms": ("moodle",)}


def student_id(student: str) -> str:
    """The id labkit gives the student from Moodle's folder name (``Ada-Correct_2001``)."""
    name, pid, _ = PLANTED[student]
    return f"{name.replace(' ', '-')}_{pid}"
