"""The throwaway working folder of the browser tests.

``solved/NAME.ipynb``: the student notebook ``notebooks/NAME.ipynb`` as handed out, with every
solution cell (nbgrader ``solution: true``, code or written answer) replaced by the cell of the same
``grade_id`` in ``solutions/NAME.ipynb``, the ``### BEGIN/END SOLUTION`` delimiter lines left out.
Everything else (the self-checks without their hidden tests, the given code) is the student's.
``unsolved/NAME.ipynb``: the student notebook unchanged.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

from labkit.course.release.leaks import BEGIN_SOLUTION, END_SOLUTION


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def is_solution_cell(cell) -> bool:
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("solution"))


def strip_delimiters(source: str) -> str:
    """A solution cell's source without nbgrader's BEGIN/END SOLUTION lines."""
    return "\n".join(line for line in source.split("\n") if BEGIN_SOLUTION not in line and END_SOLUTION not in line)


def fill_solutions(student_path: Path, solution_path: Path):
    """The student notebook with its solution cells taken from the solution notebook, by grade_id.

    Raises ValueError naming the grade_id when the solution notebook lacks one the student
    notebook has (the two are out of step: run ``labkit release``)."""
    student = nbformat.read(student_path, as_version=4)
    solutions = {grade_id(c): c for c in nbformat.read(solution_path, as_version=4).cells if grade_id(c)}
    filled = 0
    for cell in student.cells:
        if not is_solution_cell(cell):
            continue
        gid = grade_id(cell)
        if gid not in solutions:
            raise ValueError(f"{student_path.name}: solution cell {gid!r} is not in {solution_path} "
                             "(notebooks/ is out of step with solutions/: run `labkit release`)")
        cell.source = strip_delimiters(solutions[gid].source)
        filled += 1
    if not filled:
        raise ValueError(f"{student_path.name}: no solution cell to fill (is it a student notebook?)")
    return student


def student_notebooks(notebooks_dir: Path) -> list[Path]:
    """The student notebooks, found by globbing (sorted by name)."""
    return sorted(Path(notebooks_dir).glob("*.ipynb"))


def build(work: Path, notebooks_dir: Path, solutions_dir: Path) -> dict[str, Path]:
    """Write ``work/solved/`` and ``work/unsolved/``; return {"solved": folder, "unsolved": folder}."""
    solved, unsolved = work / "solved", work / "unsolved"
    solved.mkdir(parents=True, exist_ok=True)
    unsolved.mkdir(parents=True, exist_ok=True)
    for path in student_notebooks(notebooks_dir):
        nbformat.write(fill_solutions(path, Path(solutions_dir) / path.name), solved / path.name)
        shutil.copy(path, unsolved / path.name)
    return {"solved": solved, "unsolved": unsolved}
