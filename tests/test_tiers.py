"""The test tiers: `make check` (-m "not slow and not browser and not cluster") leaves out every
test that executes a notebook, runs nbgrader or autograde, drives a browser or starts a cluster,
from the markers tests/conftest.py applies (tests/helpers/markers.py); `make test` runs them all."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import markers

ROOT = Path(__file__).resolve().parent.parent
CHECK = "not slow and not browser and not cluster"  # as the Makefile's check target


def collected(*args: str) -> set[str]:
    """The node ids pytest collects (a fresh process, as `make check` would)."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {line.strip() for line in proc.stdout.splitlines() if "::" in line}


def test_the_check_tier_leaves_out_what_runs_notebooks_nbgrader_browsers_and_clusters():
    files = ["tests/test_grading.py", "tests/test_notebooks.py", "tests/test_cluster.py", "tests/test_lab.py",
             "solutions/1_pca.ipynb"]
    everything = collected(*files)
    check = collected("-m", CHECK, *files)
    must_leave_out = [
        "tests/test_grading.py::test_every_submission_has_rows_and_originals_are_untouched",  # autograde (fixture)
        "tests/test_grading.py::test_grading_twice_gives_the_same_bytes",       # `labkit autograde` in-process
        "tests/test_grading.py::test_cpu_time_limit_and_the_command_from_anywhere_without_an_activated_venv",
        "tests/test_notebooks.py::test_student_notebooks_are_up_to_date",       # nbgrader (fixture)
        "tests/test_cluster.py::test_cluster_grades_csv_is_byte_for_byte_the_local_one",
        "solutions/1_pca.ipynb::Cell 0",                                         # a notebook executed
    ]
    must_keep = [
        "tests/test_grading.py::test_student_ids_from_lms_names",
        "tests/test_notebooks.py::test_graded_cells_have_points_and_unique_ids",
        "tests/test_cluster.py::test_pack_unpack_roundtrip_and_no_escape",
    ]
    for node in must_leave_out + must_keep:
        assert node in everything, f"{node} is not collected at all: update this test"
    assert not set(must_leave_out) & check, sorted(set(must_leave_out) & check)
    assert set(must_keep) <= check, sorted(set(must_keep) - check)


def test_markers_follow_the_fixtures_and_calls_a_test_uses():
    def runs_a_notebook():
        from nbclient import NotebookClient  # noqa: F401

    def grades_on_the_command_line(tmp_path):
        subprocess.run(["labkit", "autograde", str(tmp_path)])

    def asks_for_mnist(request):
        request.getfixturevalue("mnist_root")

    assert "NotebookClient" in markers.uses(runs_a_notebook)[0]
    names, strings, _ = markers.uses(grades_on_the_command_line)
    assert markers.SLOW_COMMANDS & strings and markers.CALLERS & names
    assert markers.MNIST_FIXTURES & markers.uses(asks_for_mnist)[1]


class _Item:
    nodeid = "tests/test_x.py::test_unmarked"

    def __init__(self, slow: bool):
        self.slow = slow

    def get_closest_marker(self, name):
        return object() if self.slow and name == "slow" else None


def test_an_unmarked_test_that_runs_nbgrader_or_a_kernel_fails_saying_so():
    for command in ([sys.executable, "-m", "nbgrader", "--version"], [sys.executable, "-m", "ipykernel_launcher"]):
        with pytest.raises(markers.Mislabelled, match="not marked slow"):
            with markers.guard(_Item(slow=False)):
                subprocess.run(command, capture_output=True)
    with pytest.raises(markers.Mislabelled, match="not marked slow"):  # also when the code caught the error
        with markers.guard(_Item(slow=False)):
            try:
                subprocess.run([sys.executable, "-m", "nbgrader", "--version"])
            except markers.Mislabelled:
                pass
    with markers.guard(_Item(slow=False)):  # anything else runs
        assert subprocess.run([sys.executable, "-c", "print(1)"], capture_output=True, text=True).stdout == "1\n"


# --------------------------------------------------------------------------- the parallel run (helpers.workers)


class _Def:
    def __init__(self, scope: str):
        self.scope = scope


class _Info:
    def __init__(self, scopes: dict[str, str]):
        self.name2fixturedefs = {name: (_Def(scope),) for name, scope in scopes.items()}


class _Spec:
    def __init__(self, params: dict):
        self.params = params


class _Collected:
    """A test function's item as workers.group_of reads it."""

    parent = None

    def __init__(self, nodeid: str, scopes: dict[str, str], params: dict | None = None):
        self.nodeid, self.fixturenames = nodeid, list(scopes)
        self._fixtureinfo = _Info(scopes)
        if params is not None:
            self.callspec = _Spec(params)


def test_tests_sharing_a_module_fixture_go_to_one_worker_per_parameter_and_others_on_their_own():
    from helpers import workers

    module = "tests/test_x.py"
    graded = [_Collected(f"{module}::test_{n}[{mode}]", {"attacked": "module", "tmp_path": "function"},
                         {"attacked": mode}) for n in (1, 2) for mode in ("basic", "bwrap")]
    assert [workers.group_of(i) for i in graded] == [f"{module}[attacked={m}]" for m in ("basic", "bwrap")] * 2
    assert workers.group_of(_Collected(f"{module}::test_c", {"graded_class": "module"})) == module
    assert workers.group_of(_Collected(f"{module}::test_d", {"mnist_root": "session", "tmp_path": "function"})) is None
    assert workers.group_of(graded[0], ungrouped=lambda item: True) is None  # waits for the executions


def test_the_controller_hands_each_group_to_one_worker_whole(tmp_path):
    """The workers' groups (written as write_groups does) are the scopes of xdist's scheduling."""
    import json
    import types

    from helpers import workers

    (tmp_path / "gw0.json").write_text(json.dumps({"t.py::a[basic]": "t.py[m=basic]", "t.py::b[basic]": "t.py[m=basic]",
                                                   "t.py::a[bwrap]": "t.py[m=bwrap]"}))
    (tmp_path / "gw1.json").write_text(json.dumps({"n.ipynb::Cell 0": "n.ipynb"}))
    controller = types.SimpleNamespace(getvalue=lambda name: ["2*popen"] if name == "tx" else None)  # -n 2
    sched = workers.scheduler(controller, None, folder=tmp_path)
    nodes = ["t.py::a[basic]", "t.py::b[basic]", "t.py::a[bwrap]", "n.ipynb::Cell 0", "t.py::c", "t.py::d"]
    assert [sched._split_scope(n) for n in nodes] == [
        "t.py[m=basic]", "t.py[m=basic]", "t.py[m=bwrap]", "n.ipynb", "t.py::c", "t.py::d"]


def test_the_checked_in_suite_keeps_nbval_cells_of_a_notebook_and_a_graded_class_together():
    """The groups of the real collection, as an xdist worker makes them (a fresh process)."""
    code = ("import pytest, sys\n"
            "class Show:\n"
            "    @pytest.hookimpl(trylast=True)\n"
            "    def pytest_collection_modifyitems(self, items):\n"
            "        for i in items:\n"
            "            m = i.get_closest_marker('xdist_group')\n"
            "            print('GROUP', i.nodeid, m.kwargs['name'] if m else None, sep='\\t')\n"
            "sys.exit(pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', 'tests/test_grading.py',"
            " 'solutions/00_pytorch.ipynb', 'solutions/1_pca.ipynb'], plugins=[Show()]))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTEST_XDIST_WORKER": "gw0"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shown = [line.split("\t")[1:] for line in proc.stdout.splitlines() if line.startswith("GROUP\t")]
    groups = dict(shown)
    assert groups["solutions/00_pytorch.ipynb::Cell 0"] == groups["solutions/00_pytorch.ipynb::Cell 5"] \
        == "solutions/00_pytorch.ipynb"  # one kernel runs the cells in order
    assert groups["solutions/1_pca.ipynb::Cell 0"] == "None"  # the shared execution: any worker reads it
    assert groups["tests/test_grading.py::test_solutions_get_full_marks_and_the_stray_is_reported"] \
        == groups["tests/test_grading.py::test_grading_twice_gives_the_same_bytes"] == "tests/test_grading.py"
    assert groups["tests/test_grading.py::test_student_ids_from_lms_names"] == "None"
    names = [name for name, _ in shown]
    assert names.index("tests/test_grading.py::test_solutions_get_full_marks_and_the_stray_is_reported") \
        < names.index("tests/test_grading.py::test_student_ids_from_lms_names")  # slow first under xdist
    assert names[-1].startswith("solutions/1_pca.ipynb::")  # what waits for the execution, last


def test_a_lock_of_the_run_is_held_by_one_process_and_freed_when_it_dies(tmp_path):
    from helpers import workers

    path = tmp_path / "x.lock"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(60)\n")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        assert not workers.Lock(path).take() and not workers.Lock(path).free()
    finally:
        holder.kill()
        holder.wait()
    lock = workers.Lock(path)
    assert lock.take()
    assert not workers.Lock(path).free()  # flock: another descriptor, even of this process, waits
    lock.release()
    assert workers.Lock(path).free()


def test_two_workers_execute_each_notebook_once_and_both_read_it(tmp_path, monkeypatch):
    """Two sessions' Executions on one folder of the run (as two xdist workers have): each notebook
    is executed by one of them, and both read its executed cells and values."""
    import types

    import nbformat

    from helpers import executed

    calls = tmp_path / "calls"
    calls.mkdir()

    def execute(name, seed, allow_errors):  # in a pool process: one file per execution
        (calls / f"{name}-{os.getpid()}").touch()
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"print({name!r})")])
        return nb, {f"{name}_value": 1.5}

    fake = types.SimpleNamespace(execute=execute)
    monkeypatch.setattr(executed, "script", lambda name: fake)
    folder = tmp_path / "run"
    folder.mkdir()
    runs = [executed.Executions(folder, parallel=1) for _ in range(2)]
    for run in runs:
        run.start(set(executed.NOTEBOOKS))
    try:
        for run in runs:
            for name in executed.NOTEBOOKS:
                nb, values = run.result(name)
                assert nb.cells[0].source == f"print({name!r})" and values == {f"{name}_value": 1.5}
    finally:
        for run in runs:
            run.stop(interrupted=False)
    assert sorted(p.name.rsplit("-", 1)[0] for p in calls.iterdir()) == sorted(executed.NOTEBOOKS)


def _kernels_of(pid: int) -> list[int]:
    """The ipykernel processes whose parent is ``pid`` (zombies aside)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z" and b"ipykernel" in command:
            found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_an_execution_of_the_answer_key_leaves_no_kernel_running(tmp_path, monkeypatch):
    """scripts/seed_ranges.py's execute shuts its kernel down (it outlived every execution before,
    as long as the process that asked for it)."""
    import nbformat

    from helpers import executed

    seed_ranges = executed.script("seed_ranges")
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 2.5")]), tmp_path / "tiny.ipynb")
    monkeypatch.setattr(seed_ranges, "SOLUTIONS", tmp_path)
    monkeypatch.setitem(seed_ranges.MEASURES, "tiny", "_values = {'x': x}")
    before = set(_kernels_of(os.getpid()))
    nb, values = seed_ranges.execute("tiny", 0)
    assert values == {"x": 2.5} and nb.cells[0].source == "x = 2.5"
    assert set(_kernels_of(os.getpid())) - before == set()
