"""How the suite spreads over pytest-xdist's workers (``make test``: ``-n 2 --dist loadgroup``, which
the conftest's ``pytest_xdist_make_scheduler`` answers with :func:`scheduler`).

Owns:

- :func:`one_thread`: under xdist, one CPU thread per test process (OpenMP, MKL, OpenBLAS, torch),
  so that two workers on two cores do not fight over them; kernels and subprocesses inherit it.
- :func:`group`: each item's ``xdist_group``. The tests that share a module-, class- or
  package-scoped fixture (one group per parameter of it) go to one worker, which builds the fixture
  once; every other test is sent on its own. Nothing is declared by hand, so a new slow module
  spreads over the workers by itself. The items that wait for the shared executions of the
  notebooks (``helpers.executed``) are never grouped: a worker that holds such a group would wait
  for them with the group's other tests undone.
- :func:`write_groups` and :func:`scheduler`: the groups as the workers found them, and the
  controller's scheduling that keeps each group on one worker.
- :func:`slow_first`: the order work is handed out in (``--no-loadscope-reorder``).
- :func:`run_folder` and :class:`Lock`: work done once per run for every worker (the executed
  notebooks, ``helpers.executed``; the template courses, ``helpers.course.Templates``): a folder
  that every worker of the run sees, and a file lock per piece of work in it.

The tests that must not share the machine (marker ``alone``, ``helpers.markers``) are left out of
the parallel run and run after it, one at a time (the Makefile's ``test``).
"""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest

HIGHER_SCOPES = {"module", "class", "package"}  # torn down when a worker moves on: built once per group
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def worker() -> str | None:
    """This process's xdist worker id (``gw0``, ...), or None outside xdist."""
    return os.environ.get("PYTEST_XDIST_WORKER")


def one_thread() -> None:
    """Under xdist: one CPU thread for this process (before torch is imported) and its children."""
    if worker() is None:
        return
    for name in THREAD_VARIABLES:
        os.environ[name] = "1"
    import torch

    torch.set_num_threads(1)


def _scoped_fixtures(item) -> list[str]:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return []
    return sorted(name for name in item.fixturenames
                  if any(d.scope in HIGHER_SCOPES for d in info.name2fixturedefs.get(name, ())))


def group_of(item, ungrouped=lambda item: False) -> str | None:
    """The xdist group of ``item``: its module and the parameters of the higher-scoped fixtures
    it uses (``tests/test_adversarial.py[attacked=basic]``); the file of an item that a file
    collector of a plugin made (nbval's cells share the notebook's kernel, in order); or None (sent
    on its own)."""
    if ungrouped(item):
        return None
    parent = getattr(item, "parent", None)
    if parent is not None and not isinstance(parent, (pytest.Module, pytest.Class)):
        return parent.nodeid
    names = _scoped_fixtures(item)
    if not names:
        return None
    module = item.nodeid.split("::", 1)[0]
    params = getattr(getattr(item, "callspec", None), "params", {})
    chosen = [f"{n}={params[n]}" for n in names if n in params]
    return module + (f"[{','.join(chosen)}]" if chosen else "")


def group(items, ungrouped=lambda item: False) -> None:
    """Mark each item with :func:`group_of`'s group (``xdist_group``, for :func:`write_groups`)."""
    for item in items:
        name = group_of(item, ungrouped)
        if name is not None and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(name=name))


def write_groups(config, items) -> None:
    """In a worker, once collected: {node id: group} for :func:`scheduler` (xdist's own
    ``--dist loadgroup`` appends the group to ``item._nodeid``, which pytest 9 no longer reads)."""
    if worker() is None:
        return
    groups = {}
    for item in items:
        mark = item.get_closest_marker("xdist_group")
        if mark is not None:
            groups[item.nodeid] = str(mark.kwargs.get("name", mark.args[0] if mark.args else "default"))
    path = run_folder(config, "labkit-groups") / f"{worker()}.json"
    path.with_suffix(".partial").write_text(json.dumps(groups), encoding="utf-8")
    path.with_suffix(".partial").replace(path)


def scheduler(config, log, folder: Path | None = None):
    """In the controller: xdist's scheduling by scope, each group of :func:`write_groups` one scope
    (handed to one worker whole), every other item a scope of its own."""
    from xdist.scheduler import LoadScopeScheduling

    folder = folder or run_folder(config, "labkit-groups")

    class Grouped(LoadScopeScheduling):
        groups: dict | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.groups is None:  # the workers wrote theirs before reporting their collection
                self.groups = {}
                for path in sorted(folder.glob("*.json")):
                    self.groups.update(json.loads(path.read_text(encoding="utf-8")))
            return self.groups.get(nodeid, nodeid)

    return Grouped(config, log)


def slow_first(items, last=lambda item: False) -> None:
    """Under xdist: the items marked ``slow`` first (the longest work is handed out first, so that
    the workers end together), then the others, then ``last``'s; in collection order otherwise."""
    if worker() is not None:
        items.sort(key=lambda item: 2 if last(item) else 0 if item.get_closest_marker("slow") else 1)


def run_folder(config, name: str) -> Path:
    """``name``, a folder of this run that every worker sees: under the workers' common basetemp
    (``.../pytest-N/``, one per run) under xdist, else under this session's own basetemp."""
    base = config._tmp_path_factory.getbasetemp()
    folder = (base.parent if worker() is not None else base) / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Lock:
    """An exclusive ``flock`` on ``path`` for a process of the run (released when it ends, also
    when it dies). ``with Lock(path):`` waits for it; ``Lock(path).take()`` is False when taken."""

    def __init__(self, path: Path):
        self.path, self.fd = Path(path), None

    def take(self, wait: bool = False) -> bool:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(self.fd)
            self.fd = None
            return False
        return True

    def free(self) -> bool:
        """Nobody holds it now (tried without waiting, and let go at once)."""
        if not self.take():
            return False
        self.release()
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the only descriptor drops the flock
            self.fd = None

    def __enter__(self):
        self.take(wait=True)
        return self

    def __exit__(self, *exc):
        self.release()
