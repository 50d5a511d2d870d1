"""The markers a test gets from what it uses, so that ``make check`` (``-m "not slow and not
browser and not cluster"``) never runs a notebook, nbgrader or a cluster by mistake.

A test's *uses* are the names and constants in the code of the test function and of every
fixture it requests (directly or through other fixtures), nested functions included:

- ``mnist``: the ``mnist_root``, ``mnist_train`` or ``mnist_test`` fixture (also when asked for
  by name, ``request.getfixturevalue("mnist_root")``); nbval's cells of a notebook that loads MNIST;
- ``slow``: an entry point that runs nbgrader, autograde or a notebook (:data:`SLOW_NAMES`,
  ``helpers.course.slow_entry_points()``, or the command line with an nbgrader-running command),
  or ``labkit.lab.run`` (it trains every model); every nbval cell;
- ``browser``: the Chromium/JupyterLab helpers of ``tests/browser/``;
- ``cluster``: a Dask cluster (``dask_cluster.Cluster``) or a scheduler address.

Markers written on a test by hand stay. :func:`guard` is the safety net for what the names miss:
a test without ``slow`` that starts a Jupyter kernel, nbgrader or autograde fails, saying so.

Two markers are only ever written by hand (``@pytest.mark.NAME``, or ``pytestmark`` for a module):

- ``alone``: the test must not share the machine with other tests, because it looks at the whole
  machine (``tests/test_adversarial_sandbox.py`` counts every process of the kernel uids, which
  another worker's grading has too) or times itself. ``make test`` runs the rest on two xdist
  workers (``-m "not alone"``, ``helpers.workers``), then these one at a time (``-m alone``).
  A test that is merely slow needs nothing: it spreads over the workers by itself.
- ``as_user``: the test's outcome depends on file permissions or on not being root (a class
  graded by autograde, the sandbox's limits, what publish writes): ``make test-as-user`` runs
  these once more as an ordinary user (the Makefile says why each kind is there).
"""
from __future__ import annotations

import contextlib
import inspect
import os
import subprocess
import types
import warnings

MNIST_FIXTURES = {"mnist_root", "mnist_train", "mnist_test"}
# Callables, wherever they come from, that execute a notebook or start a kernel.
SLOW_NAMES = {"NotebookClient", "NotebookRun", "start_new_kernel", "KernelManager"}
# `labkit COMMAND` (in-process main([...]) or a subprocess) that runs nbgrader.
SLOW_COMMANDS = {"autograde", "release", "publish"}
CALLERS = {"main", "run", "Popen", "check_output", "check_call"}


def _codes(code: types.CodeType):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


def _strings(consts) -> set[str]:
    out = set()
    for c in consts:
        if isinstance(c, str):
            out.add(c)
        elif isinstance(c, (tuple, frozenset)):
            out |= _strings(c)
    return out


def uses(func) -> tuple[set[str], set[str], set[object]]:
    """(names, string constants, global objects those names reach) of ``func``'s code."""
    func = inspect.unwrap(func)
    code = getattr(func, "__code__", None)
    if code is None:
        return set(), set(), set()
    names, strings = set(), set()
    for c in _codes(code):
        names |= set(c.co_names)
        strings |= _strings(c.co_consts)
    glob = getattr(func, "__globals__", {})
    objects = set()
    for n in names:
        obj = glob.get(n)
        if obj is None:
            continue
        objects.add(id(obj))
        if isinstance(obj, types.ModuleType):  # module.attribute: what the attribute is
            with warnings.catch_warnings():  # some modules warn on deprecated attributes
                warnings.simplefilter("ignore")
                objects |= {id(getattr(obj, a)) for a in names if hasattr(obj, a)}
    return names, strings, objects


def _functions(item) -> list:
    funcs = [getattr(item, "function", None)]
    info = getattr(item, "_fixtureinfo", None)
    for name in getattr(item, "fixturenames", ()):
        for fixdef in (info.name2fixturedefs.get(name, ()) if info else ()):
            funcs.append(fixdef.func)
    return [f for f in funcs if f is not None]


def markers_for(item, slow_entry_points) -> set[str]:
    """The markers ``item``'s uses call for (see the module docstring)."""
    from nbval.plugin import IPyNbCell

    if isinstance(item, IPyNbCell) or getattr(item, "notebook_cell", False):
        text = item.path.read_text(encoding="utf-8")
        return {"slow"} | ({"mnist"} if "load_mnist" in text else set())
    found = set()
    if MNIST_FIXTURES & set(getattr(item, "fixturenames", ())):
        found.add("mnist")
    from labkit import lab

    slow_ids = {id(f) for f in (*slow_entry_points, lab.run)}  # lab.run: trains every model on MNIST
    for func in _functions(item):
        names, strings, objects = uses(func)
        module = getattr(inspect.unwrap(func), "__globals__", {})
        if MNIST_FIXTURES & strings:
            found.add("mnist")
        if SLOW_NAMES & names or slow_ids & objects or (SLOW_COMMANDS & strings and CALLERS & names):
            found.add("slow")
        if any(isinstance(module.get(n), types.ModuleType) and module[n].__name__.startswith("browser.")
               for n in names):
            found.add("browser")
        if "Cluster" in names and "dask_cluster" in str(getattr(module.get("Cluster"), "__module__", "")) \
                or "scheduler" in strings:
            found.add("cluster")
    return found


def apply(items, slow_entry_points) -> None:
    for item in items:
        have = {m.name for m in item.iter_markers()}
        for name in sorted(markers_for(item, slow_entry_points) - have):
            item.add_marker(name)


# --------------------------------------------------------------------------- the safety net


class Mislabelled(AssertionError):
    pass


@contextlib.contextmanager
def guard(item):
    """Around a test without ``slow``: starting a Jupyter kernel, nbgrader or ``labkit autograde``
    (any subprocess of theirs) fails it, naming the fix."""
    if item.get_closest_marker("slow") is not None:
        yield
        return
    popen_init, caught = subprocess.Popen.__init__, []

    def checked(self, args, *rest, **kwargs):
        words = [os.path.basename(str(a)) for a in (args if isinstance(args, (list, tuple)) else [args])]
        if {"nbgrader", "ipykernel_launcher", "ipykernel"} & set(words) \
                or "autograde" in words and any(w.startswith("labkit") for w in words):
            caught.append(f"{item.nodeid} is not marked slow but runs {' '.join(words[:4])}: give it "
                          "a use that tests/helpers/markers.py recognises (or @pytest.mark.slow), so "
                          "that `make check` leaves it out")
            raise Mislabelled(caught[-1])
        popen_init(self, args, *rest, **kwargs)

    subprocess.Popen.__init__ = checked
    try:
        yield
    finally:
        subprocess.Popen.__init__ = popen_init
    if caught:  # also when the code under test caught the error
        raise Mislabelled(caught[0])
