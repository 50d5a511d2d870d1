"""Shared fixtures, and the markers every test gets from what it uses (tests/helpers/markers.py).

Tests that need the real MNIST use `mnist_root` (or `mnist_train`, `mnist_test`) and are skipped,
with the reason, only when LABKIT_DATA is unset. The tiers (README "Development"):
``make check`` runs ``-m "not slow and not browser and not cluster"``, ``make test`` everything:
on two xdist workers (``helpers.workers``: the groups, one thread each), then the ``alone`` tests.
"""
import os
from pathlib import Path

import pytest

# `labkit publish` ships this file and the model tests to the student repository, without
# tests/helpers/ (nor labkit.course, solutions/ or the notebook tests): the hooks below are the
# instructor's checkout's only.
INSTRUCTOR = (Path(__file__).parent / "helpers").is_dir()
if INSTRUCTOR:
    from helpers import course, executed, markers, workers

    workers.one_thread()  # under xdist: one CPU thread per worker, before the tests import torch


def mnist_dir() -> str | None:
    return os.environ.get("LABKIT_DATA") or None


@pytest.fixture(scope="session")
def mnist_root():
    root = mnist_dir()
    if root is None:
        pytest.skip("needs the real MNIST: set LABKIT_DATA to the folder holding MNIST/raw (CI sets it)")
    return root


@pytest.fixture(scope="session")
def mnist_test(mnist_root):
    from labkit.data import load_mnist

    return load_mnist("test", root=mnist_root, download=False)


@pytest.fixture(scope="session")
def mnist_train(mnist_root):
    from labkit.data import load_mnist

    return load_mnist("train", root=mnist_root, download=False)


# --------------------------------------------------------------------------- markers and tiers


if INSTRUCTOR:
    @pytest.hookimpl(tryfirst=True)  # before -m deselects by the markers given here
    def pytest_collection_modifyitems(session, config, items):
        items[:] = executed.replace_nbval_items(session, items)
        markers.apply(items, course.slow_entry_points())
        executed.run_last(items)
        workers.group(items, ungrouped=executed.needs_execution)
        workers.slow_first(items, last=executed.needs_execution)
        workers.write_groups(config, items)  # read by the scheduler below

    def pytest_xdist_make_scheduler(config, log):
        if config.getvalue("dist") == "loadgroup":  # the groups of helpers.workers, one worker each
            return workers.scheduler(config, log)

    def pytest_collection_finish(session):
        executed.start(session)

    def pytest_sessionfinish(session, exitstatus):
        executed.stop(session, exitstatus)

    @pytest.fixture(scope="session", autouse=True)
    def shared_templates(request):
        """Every in-process autograde run of the session (of every xdist worker) copies one template
        course per solutions folder instead of running nbgrader generate_assignment again
        (helpers.course.Templates; the folder goes with pytest's basetemp)."""
        templates = course.Templates(workers.run_folder(request.config, "labkit-templates"))
        patch = pytest.MonkeyPatch()
        templates.patch(patch)
        yield templates
        patch.undo()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(item):
        with markers.guard(item):
            return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(item):
        with markers.guard(item):
            return (yield)


# tests/fixtures/ holds tiny nbgrader courses for the grading tests; its
# notebooks are data, not tests (their student versions fail by design).
collect_ignore = ["fixtures"]
