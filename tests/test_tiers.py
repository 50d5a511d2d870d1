"""The test tiers: `make check` (-m "not slow and not browser and not cluster") leaves out every
test that executes a notebook, runs nbgrader or autograde, drives a browser or starts a cluster,
from the markers tests/conftest.py applies (tests/helpers/markers.py); `make test` runs them all."""
from __future__ import annotations

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
