"""The term's class course (``labkit autograde --course DIR``): later runs grade only what is new or
changed, a killed run resumes, hand grades survive, one run at a time.

Real nbgrader and the real sandbox on the fixture assignment; the classes are small and each graded
course is shared by the module's tests (copied where a test changes it), never graded twice.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.course import SOLUTIONS, Submissions, changed, load_csv, options, read

slow = pytest.mark.slow  # the tests that grade (through _run, which markers.py cannot see into)

NOTEBOOKS = ["1_squares", "2_lists"]
GRADED = re.compile(r"^  (\S+): 1_squares: ")  # the line each executor writes when a student is graded


def _sol(name):
    return read("solution", name)


def _write_first(folder: Path) -> Submissions:
    """The deadline batch: alice right, bob the untouched student version, carol a square that fails
    for negative numbers."""
    subs = Submissions(folder)
    for n in NOTEBOOKS:
        subs.add(f"alice/{n}.ipynb", _sol(n))
        subs.add(f"bob/{n}.ipynb", read("student", n))
    subs.add("carol/1_squares.ipynb", changed(_sol("1_squares"), {"square": "def square(x):\n    return x * abs(x)"}))
    subs.add("carol/2_lists.ipynb", _sol("2_lists"))
    return subs


def _write_final(folder: Path) -> Submissions:
    """After the deadline: bob resubmits (functions right, a new written answer), dave is late."""
    subs = _write_first(folder)
    subs.add("bob/1_squares.ipynb", changed(_sol("1_squares"), {"why": "Minus times minus is plus."}))
    subs.add("bob/2_lists.ipynb", _sol("2_lists"))
    for n in NOTEBOOKS:
        subs.add(f"dave/{n}.ipynb", _sol(n))
    return subs


def _graded(lines: list[str]) -> list[str]:
    return sorted(m.group(1) for m in map(GRADED.match, lines) if m)


def _run(submissions, out, course=None, solutions=SOLUTIONS, **kwargs) -> list[str]:
    from labkit.course.grading.autograde import autograde

    lines: list[str] = []
    autograde(submissions, solutions=solutions, out=out, course=course, options=options(jobs=1),
              log=lines.append, **kwargs)
    return lines


def _hand_grade(course: Path, student: str, score: float, comment: str) -> None:
    """A hand grade and comment on ``student``'s written answer ``why``, through nbgrader's API."""
    from nbgrader.api import Gradebook

    from labkit.course.nbgrader import COURSE_ID

    with Gradebook("sqlite:///" + str(course / "gradebook.db"), COURSE_ID) as gb:
        gb.find_grade("why", "1_squares", "lab", student).manual_score = score
        gb.find_comment("why", "1_squares", "lab", student).manual_comment = comment
        gb.db.commit()


def _csv_rows(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """One batch over the final submissions, the plain way (no course): what a term must equal."""
    root = tmp_path_factory.mktemp("fresh")
    _write_final(root / "subs")
    _run(root / "subs", root / "out")
    return (root / "out" / "grades.csv").read_bytes()


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    """The deadline batch graded into a new term course."""
    root = tmp_path_factory.mktemp("term")
    _write_first(root / "subs")
    lines = _run(root / "subs", root / "out1", root / "course")
    return root, lines


@pytest.fixture(scope="module")
def late(first, tmp_path_factory):
    """A copy of the first course after the late student and the resubmission (no hand grades)."""
    root = tmp_path_factory.mktemp("late")
    shutil.copytree(first[0] / "course", root / "course")
    _write_final(root / "subs")
    return root, _run(root / "subs", root / "out", root / "course")


@slow
def test_a_later_run_grades_exactly_the_late_student_and_the_resubmission(first, late, fresh):
    assert _graded(first[1]) == ["alice", "bob", "carol"]
    root, lines = late
    assert _graded(lines) == ["bob", "dave"]
    assert (root / "out" / "grades.csv").read_bytes() == fresh
    changes = {(r["student"], r["cell"]): r for r in _csv_rows(root / "out" / "changes.csv")}
    assert changes["bob", "test_square"] == {"student": "bob", "notebook": "1_squares", "cell": "test_square",
                                             "old_points": "0", "new_points": "1", "reason": "resubmission"}
    assert changes["dave", "test_mean"]["reason"] == "new submission" and changes["dave", "test_mean"]["old_points"] == ""
    assert not {s for s, _ in changes} & {"alice", "carol"}
    assert sorted(p.name for p in (root / "out" / "logs").iterdir()) == [f"{s}.txt" for s in ("alice", "bob", "carol", "dave")]
    assert {s for s, _ in load_csv(root / "out" / "grades.csv")} == {"alice", "bob", "carol", "dave"}


@slow
def test_a_run_with_nothing_new_grades_no_one_and_writes_the_same_grades(late, tmp_path):
    root, _ = late
    course = tmp_path / "course"
    shutil.copytree(root / "course", course)
    lines = _run(root / "subs", tmp_path / "out", course)
    assert _graded(lines) == []
    assert (tmp_path / "out" / "grades.csv").read_bytes() == (root / "out" / "grades.csv").read_bytes()
    assert _csv_rows(tmp_path / "out" / "changes.csv") == []
    # --from-course reads the same course (after the formgrader)
    from labkit.course.grading import kept

    kept.export(course, tmp_path / "again", log=lambda _: None)
    assert (tmp_path / "again" / "grades.csv").read_bytes() == (root / "out" / "grades.csv").read_bytes()


@pytest.fixture(scope="module")
def hand(first, tmp_path_factory):
    """A copy of the first course with hand grades on alice's, bob's and carol's written answers, then
    the final submissions (bob's answer changes; carol resubmits with the same answer), then a regrade of 1_squares after
    a test was made fairer (carol's square passes it now)."""
    root = tmp_path_factory.mktemp("hand")
    course = root / "course"
    shutil.copytree(first[0] / "course", course)
    _hand_grade(course, "alice", 1, "clear and right")
    _hand_grade(course, "bob", 0, "no answer")
    _hand_grade(course, "carol", 1, "fine")
    (course / "labkit-marks.json").write_text(json.dumps({"format": 1, "answers": {
        f"{s}/1_squares/why": {"items": [], "adjustment": 0.0, "score": p, "comment": c, "revision": 1,
                               "answer_sha256": "", "to_remark": False}
        for s, p, c in (("alice", 1, "clear and right"), ("bob", 0, "no answer"))}}))
    subs = _write_final(root / "subs")  # carol resubmits too: another comment in 2_lists, the same written answer
    subs.add("carol/2_lists.ipynb", changed(_sol("2_lists"), {"mean": "def mean(xs):\n    # the average\n"
                                                                      "    return sum(xs) / len(xs)"}))
    rerun = _run(root / "subs", root / "out2", course)
    fixed = root / "solutions"
    shutil.copytree(SOLUTIONS, fixed)
    nb = changed(_sol("1_squares"), {"test_square": "assert square(3) == 9"})
    import nbformat

    nbformat.write(nb, fixed / "1_squares.ipynb")
    regrade = _run(root / "subs", root / "out3", course, solutions=fixed, regrade=("test_square",))
    return root, rerun, regrade


@slow
def test_hand_grades_survive_a_rerun_and_a_changed_answer_waits_to_be_re_marked(hand):
    root, rerun, _ = hand
    assert _graded(rerun) == ["bob", "carol", "dave"]
    grades = load_csv(root / "out2" / "grades.csv")
    assert grades["alice", "1_squares"]["why"] == "1" and grades["alice", "1_squares"]["total"] == "4"
    assert grades["carol", "1_squares"]["why"] == "1"  # resubmitted, the written answer unchanged: kept
    assert "carol" not in {r["student"] for r in _csv_rows(root / "out2" / "changes.csv")}
    assert grades["bob", "1_squares"]["why"] == "" and "to grade by hand: why" in grades["bob", "1_squares"]["status"]
    summary = {r["student"]: r for r in _csv_rows(root / "out2" / "summary.csv")}
    assert "to re-mark: 1_squares/why (hand grade 0 set aside)" in summary["bob"]["status"]
    assert "re-mark" not in summary["alice"]["status"] and "re-mark" not in summary["carol"]["status"]
    marks = json.loads((root / "course" / "labkit-marks.json").read_text())["answers"]
    assert marks["bob/1_squares/why"]["to_remark"] is True and marks["alice/1_squares/why"]["to_remark"] is False


@slow
def test_a_regrade_reruns_every_student_keeps_hand_grades_and_lists_the_changes(hand):
    from nbgrader.api import Gradebook

    from labkit.course.nbgrader import COURSE_ID

    root, _, regrade = hand
    assert _graded(regrade) == ["alice", "bob", "carol", "dave"]
    changes = _csv_rows(root / "out3" / "changes.csv")
    assert changes == [{"student": "carol", "notebook": "1_squares", "cell": "test_square", "old_points": "0",
                        "new_points": "1", "reason": "regrade"}]
    grades = load_csv(root / "out3" / "grades.csv")
    assert grades["alice", "1_squares"]["why"] == "1" and grades["carol", "1_squares"]["test_square"] == "1"
    summary = {r["student"]: r for r in _csv_rows(root / "out3" / "summary.csv")}
    assert "to re-mark: 1_squares/why" in summary["bob"]["status"]
    with Gradebook("sqlite:///" + str(root / "course" / "gradebook.db"), COURSE_ID) as gb:
        assert gb.find_comment("why", "1_squares", "lab", "alice").manual_comment == "clear and right"
        assert gb.find_grade("why", "1_squares", "lab", "bob").manual_score is None
        # the class's test is the fixed one (the formgrader shows what was run)
        assert gb.find_source_cell("test_square", "1_squares", "lab").source == "assert square(3) == 9"


@slow
def test_a_second_run_on_the_course_refuses_naming_the_first(first, tmp_path):
    from labkit.course.grading.autograde import autograde
    from labkit.errors import GradingError

    course = tmp_path / "course"
    shutil.copytree(first[0] / "course", course)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (course / "labkit-term.lock").write_text(json.dumps(
            {"pid": holder.pid, "started": "2026-12-04T01:00:00+00:00", "host": socket.gethostname()}))
        with pytest.raises(GradingError, match=f"process {holder.pid} on .*started 2026-12-04T01:00:00"):
            autograde(first[0] / "subs", solutions=SOLUTIONS, out=tmp_path / "out", course=course, options=options())
        assert not (tmp_path / "out").exists()
    finally:
        holder.kill()
        holder.wait()


def _manifest(course: Path) -> dict:
    from labkit.course.grading.termbook import entries

    db = course / "gradebook.db"
    return entries(db) if (course / "labkit-template").is_dir() and db.is_file() else {}


@slow
def test_a_killed_run_resumes_grading_only_what_is_left_byte_identical(fresh, tmp_path):
    """SIGKILL of the whole process group once the first student is in the course; the stale lock
    is taken over, no student is graded twice, grades.csv equals a run never interrupted."""
    _write_final(tmp_path / "subs")
    course = tmp_path / "course"
    command = [sys.executable, "-m", "labkit", "autograde", str(tmp_path / "subs"), "--solutions", str(SOLUTIONS),
               "--out", str(tmp_path / "out1"), "--course", str(course), "--timeout", "6", "--memory", "1024",
               "--cpu-limit", "60", "--jobs", "1", "--sandbox", options().sandbox]
    with open(tmp_path / "killed.log", "wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 600
        while not _manifest(course) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done = set(_manifest(course))
    assert 1 <= len(done) < 4, (tmp_path / "killed.log").read_text()
    lines = _run(tmp_path / "subs", tmp_path / "out2", course)
    assert any("took over the lock of a run that is gone" in line for line in lines)
    assert _graded(lines) == sorted({"alice", "bob", "carol", "dave"} - done)
    assert (tmp_path / "out2" / "grades.csv").read_bytes() == fresh


@slow
def test_the_late_student_through_a_dask_cluster_with_two_workers(first, fresh, tmp_path):
    pytest.importorskip("distributed", reason="the Dask test needs labkit[cluster] (dask, distributed)")
    from dask_cluster import Cluster

    course = tmp_path / "course"
    shutil.copytree(first[0] / "course", course)
    _write_final(tmp_path / "subs")
    cluster = Cluster(tmp_path / "cluster", workers=2)
    try:
        lines = _run(tmp_path / "subs", tmp_path / "out", course, scheduler=cluster.address, tls=cluster.tls)
    finally:
        cluster.close()
    assert _graded(lines) == ["bob", "dave"]
    assert (tmp_path / "out" / "grades.csv").read_bytes() == fresh


def test_the_lock_names_a_live_holder_and_takes_over_a_dead_ones(tmp_path):
    from labkit.course.grading.term import LOCK, locked
    from labkit.errors import GradingError

    notes: list[str] = []
    with locked(tmp_path, notes.append):
        mine = json.loads((tmp_path / LOCK).read_text())
        assert mine["pid"] == os.getpid() and mine["host"] == socket.gethostname()
        with pytest.raises(GradingError, match=f"process {os.getpid()} on {re.escape(socket.gethostname())}, started "
                                               f"{re.escape(mine['started'])}"):
            with locked(tmp_path, notes.append):
                pass
    assert not (tmp_path / LOCK).exists() and notes == []
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (tmp_path / LOCK).write_text(json.dumps({"pid": gone.pid, "started": "then", "host": socket.gethostname()}))
    with locked(tmp_path, notes.append):
        assert json.loads((tmp_path / LOCK).read_text())["pid"] == os.getpid()
    assert notes == [f"labkit autograde: took over the lock of a run that is gone (process {gone.pid}, started then); "
                     "grading what it left"]
    (tmp_path / LOCK).write_text('{"pid": ')  # a run killed while it wrote its lock
    with locked(tmp_path, notes.append):
        pass
    assert len(notes) == 2 and not (tmp_path / LOCK).exists()
