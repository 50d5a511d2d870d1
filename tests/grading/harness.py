"""The grading-accuracy harness: run a solution notebook's test cells against students' variants.

One kernel per notebook, in grading mode (LABKIT_GRADING=1), started in the notebook's folder as
nbgrader's autograde does. The notebook runs once, top to bottom (the reference: every test cell
must pass). Then, for each variant of a solution cell (found by its nbgrader grade_id), the kernel
runs the variant's code in place of the cell and re-runs the cells after it up to the last test
cell that the variant concerns (its own test cell, then the downstream ones), test cells in full,
visible part and hidden tests together, as autograde runs them. The visible part (the student's
self-check) of the own test cell is run on its own as well. After a cell's variants, `restore`
runs the reference code and the same cells again.

Results are plain records (`Outcome`); `tests/grading/test_accuracy.py` turns them into a report
of false fails and false passes per cell.
"""
from __future__ import annotations

import ast
import os
import queue
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

# After the reference run, the figures are drawn no more: the variants re-run cells for their values only.
QUIET_PLOTS = """
import labkit.plotting as _plotting
for _name in dir(_plotting):
    if _name.startswith(("show_", "plot_")) or _name == "latent_explorer":
        setattr(_plotting, _name, lambda *args, **kwargs: None)
"""
HIDDEN_RE = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[^\n]*\n?", re.S | re.M)


def visible_part(source: str) -> str:
    """A test cell's source as the student sees it: the hidden tests removed."""
    return HIDDEN_RE.sub("", source)


@dataclass
class Cell:
    index: int
    source: str
    grade_id: str | None = None
    kind: str = "code"  # "solution", "test" or "code" (given code)
    points: float = 0.0


def read_cells(path: Path) -> list[Cell]:
    """The code cells of a solution notebook with their nbgrader role."""
    cells = []
    for i, c in enumerate(nbformat.read(path, as_version=4).cells):
        if c.cell_type != "code":
            continue
        meta = c.metadata.get("nbgrader", {})
        kind = "solution" if meta.get("solution") else "test" if meta.get("grade") else "code"
        cells.append(Cell(i, c.source, meta.get("grade_id"), kind, float(meta.get("points") or 0)))
    return cells


def assigned_names(source: str) -> set[str]:
    """The global names a cell's top-level statements assign (=, for, with, import, def, class)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                names.add(sub.id)
            elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in sub.names)
    return names


def solution_cell(cells: list[Cell], grade_id: str) -> Cell:
    for c in cells:
        if c.grade_id == grade_id and c.kind == "solution":
            return c
    raise KeyError(f"no solution cell with grade_id {grade_id!r}")


def own_test(cells: list[Cell], solution: Cell) -> Cell:
    """The first graded test cell after a solution cell: the one that grades it."""
    return next(c for c in cells if c.index > solution.index and c.kind == "test")


@dataclass
class Result:
    ok: bool
    error: str = ""  # "ErrorName: message" when the cell failed
    seconds: float = 0.0
    stderr: str = ""

    def graded(self) -> "Result":
        """As nbgrader scores a test cell: an error or any output on stderr (a warning) costs its points."""
        if self.ok and self.stderr:
            return Result(False, f"stderr: {self.stderr.strip()[:300]}", self.seconds, self.stderr)
        return self


@dataclass
class Outcome:
    """What a variant did to the test cells: grade_id -> Result, and the visible self-check's Result."""
    notebook: str
    cell: str
    variant: str
    correct: bool
    own: str
    tests: dict[str, Result] = field(default_factory=dict)
    self_check: Result | None = None
    seconds: float = 0.0


class Kernel:
    """A python3 kernel in ``cwd`` with ``env`` added; ``run(code)`` -> Result."""

    def __init__(self, cwd: Path, env: dict[str, str], timeout: float = 600):
        from jupyter_client.manager import start_new_kernel

        self.km, self.kc = start_new_kernel(kernel_name="python3", cwd=str(cwd), env={**os.environ, **env})
        self.timeout = timeout

    def run(self, code: str) -> Result:
        started = time.perf_counter()
        msg_id = self.kc.execute(code, store_history=False)
        error, stderr = "", ""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                msg = self.kc.get_iopub_msg(timeout=max(1.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"a cell ran over {self.timeout} s:\n{code[:300]}") from None
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "error":
                error = f"{content['ename']}: {content['evalue']}"
            elif kind == "stream" and content["name"] == "stderr":
                stderr += content["text"]
            elif kind == "status" and content["execution_state"] == "idle":
                break
        return Result(not error, error, time.perf_counter() - started, stderr)

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


class NotebookRun:
    """One notebook in one kernel: the reference run, then variants of its solution cells."""

    def __init__(self, path: Path, env: dict[str, str]):
        self.path = path
        self.cells = read_cells(path)
        self.kernel = Kernel(path.parent, {"LABKIT_GRADING": "1", "MPLBACKEND": "Agg", **env})
        self.reference: dict[str, Result] = {}
        self.cell_seconds: dict[int, float] = {}

    def run_reference(self) -> dict[str, Result]:
        """Run every code cell in order; returns the test cells' results (all should pass)."""
        for c in self.cells:
            result = self.kernel.run(c.source)
            self.cell_seconds[c.index] = result.seconds
            if c.kind == "test":
                self.reference[c.grade_id] = result.graded()
            elif not result.ok:
                raise RuntimeError(f"{self.path.name} cell {c.index} ({c.grade_id}) failed in the reference run: {result.error}")
        self.kernel.run(QUIET_PLOTS)
        return self.reference

    def span(self, grade_id: str, downstream: tuple[str, ...] = ()) -> tuple[Cell, Cell, list[Cell]]:
        """The solution cell, its own test cell, and the cells after it up to the last concerned test."""
        solution = solution_cell(self.cells, grade_id)
        own = own_test(self.cells, solution)
        last = max([own.index] + [c.index for c in self.cells if c.grade_id in downstream and c.kind == "test"])
        return solution, own, [c for c in self.cells if solution.index < c.index <= last]

    def try_variant(self, grade_id: str, name: str, code: str, correct: bool,
                    downstream: tuple[str, ...] = ()) -> Outcome:
        """Run ``code`` in place of solution cell ``grade_id``, then the cells up to its own test cell
        and the ``downstream`` test cells (in full, as autograde runs them), and, for a mistake, the own
        test cell's visible part on its own. Names that the given code cells in between assign are deleted
        first, so that a cell that now fails leaves them undefined, as in a fresh run."""
        started = time.perf_counter()
        solution, own, span = self.span(grade_id, downstream)
        out = Outcome(self.path.stem, grade_id, name, correct, own.grade_id)
        names = sorted({n for c in span if c.kind == "code" for n in assigned_names(c.source)})
        if names:
            self.kernel.run("\n".join(f"globals().pop({n!r}, None)" for n in names))
        self.kernel.run(solution.source)  # the reference first: a variant may define only some of the functions
        defined = self.kernel.run(code)
        if not defined.ok:
            out.tests["(the variant itself)"] = defined
        for c in span:
            result = self.kernel.run(c.source)
            if c.kind == "test" and (c is own or c.grade_id in downstream):
                out.tests[c.grade_id] = result.graded()
            if c is own and not correct:  # a mistake: does the student's self-check see it too?
                out.self_check = self.kernel.run(visible_part(c.source)).graded()
        out.seconds = time.perf_counter() - started
        return out

    def restore(self, grade_id: str, downstream: tuple[str, ...] = ()) -> None:
        """Back to the reference state: the solution cell and the cells after it up to the last concerned test."""
        solution, _, span = self.span(grade_id, downstream)
        for c in [solution] + span:
            result = self.kernel.run(c.source)
            if not result.ok:
                raise RuntimeError(f"{self.path.name} cell {c.index} ({c.grade_id}) failed when restoring: {result.error}")

    def close(self) -> None:
        self.kernel.close()
