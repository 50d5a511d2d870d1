"""Which lines of the instructor's notebooks are secret, and finding them in any text.

A line is *secret* when it lies in a solution region, a hidden-test region or
a solution cell without regions (a written model answer), and no visible
part of the instructor's notebooks shows it (nbgrader's own split,
:func:`_split_cell`). Lines are compared whitespace-normalised
(:func:`line_key`). ``labkit release`` scans each student notebook with these
rules (``release.find_leaks``); ``labkit publish`` scans every file of the
student repository.

Owns: nbgrader's delimiters, :func:`secret_lines` and :func:`leaks_in_lines`.
"""
from __future__ import annotations

import re
from pathlib import Path

# nbgrader's delimiters (ClearSolutions / ClearHiddenTests match them anywhere in a line).
BEGIN_SOLUTION, END_SOLUTION = "BEGIN SOLUTION", "END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
# Anything that looks like a delimiter, misspelt ones included, must never reach a student.
_MARKER_RE = re.compile(r"\b(BEGIN|END)\s+(SOL\w*|HIDDEN\w*)", re.IGNORECASE)
# The stubs nbgrader writes in place of solutions.
STUB_LINES = {"# YOUR CODE HERE", "raise NotImplementedError()", "YOUR ANSWER HERE"}


def _split_cell(cell) -> tuple[list[str], list[str]]:
    """(visible lines, secret lines) of one instructor cell, the way nbgrader splits it."""
    nbg = cell.get("metadata", {}).get("nbgrader", {})
    lines = cell.source.split("\n")
    has_solution_region = any(BEGIN_SOLUTION in line for line in lines)
    if nbg.get("solution") and not has_solution_region:
        return [], lines  # the whole cell becomes the stub
    visible, secret = [], []
    region = None
    for line in lines:
        if region is None and (BEGIN_SOLUTION in line or BEGIN_HIDDEN in line):
            region = END_SOLUTION if BEGIN_SOLUTION in line else END_HIDDEN
        elif region is not None and region in line:
            region = None
        elif region is not None:
            secret.append(line)
        else:
            visible.append(line)
    return visible, secret


def line_key(line: str) -> str:
    """The line as compared: whitespace runs collapsed, ends stripped."""
    return " ".join(line.split())


def secret_lines(paths) -> tuple[dict[str, str], set[str]]:
    """(secret, visible) lines of the instructor notebooks ``paths``, whitespace-normalised.

    ``secret`` maps each line of a solution region, a hidden-test region or a
    solution cell without regions to where it comes from (``X.ipynb, cell
    'grade_id'``), unless a visible part of any of the notebooks shows the
    same line, or it is blank or one of nbgrader's stubs.
    """
    import nbformat

    visible, secret = set(), {}
    for src in paths:
        for cell in nbformat.read(src, as_version=4).cells:
            shown, hidden = _split_cell(cell)
            visible.update(line_key(line) for line in shown)
            gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "?")
            for line in hidden:
                secret.setdefault(line_key(line), f"{Path(src).name}, cell {gid!r}")
    return {k: v for k, v in secret.items() if k and k not in visible and k not in STUB_LINES}, visible


def leaks_in_lines(where: str, lines, secret: dict[str, str]) -> list[str]:
    """One message per line of ``lines`` that is secret (see :func:`secret_lines`) or looks like an
    nbgrader delimiter; ``where`` names the text (a file, a cell) and each message gives its line number."""
    problems = []
    for number, line in enumerate(lines, 1):
        key = line_key(line)
        if _MARKER_RE.search(line):
            problems.append(f"{where}, line {number}: nbgrader delimiter left in: {line.strip()!r}")
        elif key in secret:
            problems.append(f"{where}, line {number}: solution or hidden-test text from {secret[key]} "
                            f"left in: {line.strip()!r}")
    return problems
