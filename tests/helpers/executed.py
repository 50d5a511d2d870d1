"""1_pca, 2_ppca and 3_vae executed once per run (for every xdist worker), for two users that used
to run them each.

nbval's cells of these notebooks (``solutions/<name>.ipynb::Cell N``, one test per code cell:
the cell ran without an error, outputs not compared, as ``--nbval-lax``) and the answer-key test
(tests/test_answer_key.py: the numbers the notebooks print lie in docs/seed_ranges.json) read
the same execution: ``scripts/seed_ranges.py``'s :func:`execute`, seed 0, the lab's full budget,
one CPU thread per kernel (the threads the ranges were measured with: the same numbers on any
machine, and kernels that do not wait for each other on shared cores), errors kept in their
cells (``allow_errors``: the cells after a failing one still run, as under nbval).

:func:`start` begins the three executions when collection is over, two kernels at a time in
pool processes (3_vae, the longest, first), while the rest of the suite runs; the items wait
for theirs at the end of the session (:func:`run_last` puts them there). Under xdist each worker
starts one pool process, and each notebook is executed by the first process of the run that
takes its lock in a folder every worker sees (``helpers.workers``); its result is a file there
that every worker reads.
"""
from __future__ import annotations

import importlib.util
import os
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from helpers import workers

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = ROOT / "solutions"
NOTEBOOKS = ("3_vae", "2_ppca", "1_pca")  # the longest first: the two workers finish together
_KEY = pytest.StashKey["Executions"]()
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def script(name: str):
    """scripts/<name>.py as a module (the scripts folder is no package)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _execute(name: str, folder: str) -> str:
    """In a pool process: execute ``name`` unless another process of the run has it or had it;
    its result (executed notebook as JSON text and {quantity: value} or None, or the error)
    goes to ``folder/<name>.json``. Returns what this process did."""
    import json
    import traceback

    import nbformat

    lock = workers.Lock(Path(folder) / f"{name}.lock")
    if not lock.take():
        return "taken"  # another worker executes it
    try:
        result = Path(folder) / f"{name}.json"
        if result.exists():
            return "done"
        try:
            nb, values = script("seed_ranges").execute(name, 0, allow_errors=True)
            record = {"notebook": nbformat.writes(nb), "values": values}
        except Exception:  # noqa: BLE001 - the readers raise it
            record = {"error": traceback.format_exc()}
        partial = result.with_suffix(".partial")
        partial.write_text(json.dumps(record), encoding="utf-8")
        partial.replace(result)  # whole or absent for the readers
        return "executed"
    finally:
        lock.release()


class Executions:
    """The run's executions: each done once, by whichever process of the run claims it first (a
    file lock per notebook in a folder every xdist worker sees), read by every item that needs one."""

    def __init__(self, folder: Path, parallel: int):
        self.folder, self.parallel = folder, parallel
        self.pool, self.futures, self.done = None, {}, {}

    def start(self, names) -> None:
        script("seed_ranges")  # loaded before the workers fork
        self.pool = ProcessPoolExecutor(max_workers=self.parallel)
        self.futures = {name: self.pool.submit(_execute, name, str(self.folder))
                        for name in NOTEBOOKS if name in names}

    def _record(self, name: str) -> dict:
        """The result ``name``'s execution wrote, waited for."""
        import json

        result = self.folder / f"{name}.json"
        while not result.exists():
            future = self.futures[name]
            if future.done():
                future.result()  # raises what the pool raised
                if not result.exists() and all(f.done() for f in self.futures.values()) \
                        and workers.Lock(self.folder / f"{name}.lock").free() and not result.exists():
                    raise RuntimeError(f"the execution of {name} was lost: the worker that ran it ended first")
            time.sleep(0.5)
        return json.loads(result.read_text(encoding="utf-8"))

    def result(self, name: str):
        """(executed notebook, values) of ``name``; raises what the execution raised."""
        import nbformat

        if name not in self.done:
            record = self._record(name)
            if "error" in record:
                raise RuntimeError(f"executing {name} failed:\n{record['error']}")
            self.done[name] = nbformat.reads(record["notebook"], as_version=4), record["values"]
        return self.done[name]

    def stop(self, interrupted: bool) -> None:
        """Let the pool go. Outside xdist, or on Ctrl-C, executions still running end with it;
        under xdist they run to their end, since another worker may be waiting for them."""
        if self.pool is None:
            return
        if interrupted or workers.worker() is None:
            for process in list(getattr(self.pool, "_processes", {}).values()):
                if process.is_alive() and not all(f.done() for f in self.futures.values()):
                    process.terminate()  # an interrupted session: the kernels end with their worker
            self.pool.shutdown(wait=False, cancel_futures=True)
        else:
            self.pool.shutdown(wait=True)


def executions(config) -> Executions | None:
    return config.stash.get(_KEY, None)


class ExecutedNotebook(pytest.File):
    """solutions/<name>.ipynb as nbval collects it, its cells checked in the shared execution."""

    def collect(self):
        import nbformat

        nb = nbformat.read(self.path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        for number, cell in enumerate(code):
            yield ExecutedCell.from_parent(self, name=f"Cell {number}", number=number, source=cell.source)


class ExecutedCell(pytest.Item):
    notebook_cell = True  # helpers.markers: slow, and mnist when the notebook loads it

    def __init__(self, *, number: int, source: str, **kwargs):
        super().__init__(**kwargs)
        self.number, self.source = number, source

    def runtest(self):
        if not os.environ.get("LABKIT_DATA"):
            pytest.skip("needs the real MNIST: set LABKIT_DATA to the folder holding MNIST/raw (CI sets it)")
        nb, _ = executions(self.config).result(self.path.stem)
        cell = [c for c in nb.cells if c.cell_type == "code"][self.number]
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                raise CellError(cell.source, _ANSI.sub("", "\n".join(out.get("traceback", [])))
                                or f"{out.get('ename')}: {out.get('evalue')}")

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, CellError):
            source, traceback = excinfo.value.args
            return f"{self.path.name}, code cell {self.number}:\n{source}\n\n{traceback}"
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, 0, f"{self.path.name}::{self.name}"


class CellError(Exception):
    pass


def replace_nbval_items(session, items: list) -> list:
    """nbval's items of NOTEBOOKS replaced by ExecutedCell items of the same names."""
    from nbval.plugin import IPyNbCell

    files, out = {}, []
    for item in items:
        if isinstance(item, IPyNbCell) and item.path.parent == SOLUTIONS and item.path.stem in NOTEBOOKS:
            if item.path not in files:
                files[item.path] = ExecutedNotebook.from_parent(item.parent.parent, path=item.path)
                out.extend(files[item.path].collect())
            continue
        out.append(item)
    return out


def needs_execution(item) -> bool:
    return isinstance(item, ExecutedCell) or "executed" in getattr(item, "fixturenames", ())


def run_last(items: list) -> None:
    """The items that wait for the executions after all the others, so that the rest of the
    suite runs meanwhile: the notebooks' cells, then the answer-key test (stable order otherwise)."""
    def rank(item) -> int:
        if isinstance(item, ExecutedCell):
            return 1
        return 2 if needs_execution(item) else 0

    items.sort(key=rank)


def start(session) -> None:
    """Start the executions the selected items need (every notebook for the answer-key test),
    when MNIST is there."""
    names = {i.path.stem if isinstance(i, ExecutedCell) else n for i in session.items if needs_execution(i)
             for n in NOTEBOOKS}
    if names and os.environ.get("LABKIT_DATA") and not session.config.option.collectonly:
        workers_count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
        runs = Executions(workers.run_folder(session.config, "labkit-executed"), max(1, 2 // workers_count))
        runs.start(names)
        session.config.stash[_KEY] = runs


def stop(session, exitstatus) -> None:
    runs = executions(session.config)
    if runs is not None:
        runs.stop(interrupted=exitstatus == pytest.ExitCode.INTERRUPTED)


def answer_key_values(config) -> dict | None:
    """{quantity: value} of the shared execution (None when this session did not start it)."""
    runs = executions(config)
    if runs is None:
        return None
    values = {}
    for name in NOTEBOOKS:
        nb, found = runs.result(name)
        if found is None:
            failed = [c.source.splitlines()[0] for c in nb.cells if c.cell_type == "code"
                      and any(o.get("output_type") == "error" for o in c.get("outputs", []))]
            raise AssertionError(f"{name}: the notebook's values could not be measured; failing cells: {failed}")
        values.update(found)
    return values
