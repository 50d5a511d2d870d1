"""Grading from an instructor's own account, not root.

CI and the test suite run as root, and root ignores file permissions: a file that its own owner
cannot write (nbgrader makes what it autogrades read-only) goes unnoticed there and breaks the
class course of every instructor who grades as themselves. So:

- ``make test-as-user`` (``.ci/run`` calls it) runs the grading tests (autograde, layouts, publish,
  adversarial) once more as an ordinary user, through ``tests/run_as_user.py``;
- here, one honest Canvas class is graded by the command line as root and as an ordinary user:
  ``grades.csv``, ``summary.csv``, both import files and every feedback page are the same bytes,
  every file the user's run leaves is the user's own and readable and writable by them, and the
  kept course takes a hand grade through nbgrader's gradebook API (what the formgrader calls) and
  gives it back through ``--from-course``.

Started as root, the ordinary user is ``$LABKIT_TEST_USER`` (created when missing), or under
``CI=true`` ``labkit-grader``; without either, the root half skips and says how to run it. Started
as an ordinary user, the whole module runs as that user and only the comparison with root skips.
"""
from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from helpers.course import CANVAS_ROSTER, SOLUTIONS, Submissions, changed, read

ROOT = Path(__file__).resolve().parent.parent
RUN_AS_USER = ROOT / "tests" / "run_as_user.py"
IS_ROOT = os.geteuid() == 0
USER = os.environ.get("LABKIT_TEST_USER") or ("labkit-grader" if os.environ.get("CI") == "true" else None)
# every test here runs `labkit autograde` in a subprocess, and compares root's run with an ordinary user's
pytestmark = [pytest.mark.slow, pytest.mark.as_user]
NEEDS_USER = pytest.mark.skipif(IS_ROOT and USER is None, reason=(
    "started as root without an ordinary user to grade as: set LABKIT_TEST_USER=NAME "
    "(created when missing) or run the suite as an ordinary user"))

# the Canvas classes' roster, of the students here: Jane, Al, and Sam, who hands in nothing
ROSTER = "".join(line for line in CANVAS_ROSTER.splitlines(keepends=True) if not re.search(r",100[24],", line))
ARGS = ["--layout", "canvas", "--lms", "canvas", "--lms", "moodle", "--lms-column", "Lab (777)",
        "--solutions", str(SOLUTIONS), "--timeout", "6", "--memory", "1024", "--cpu-limit", "60"]
COMPARED = ("grades.csv", "summary.csv", "canvas-import.csv", "moodle-import.csv")


def honest_class(folder: Path) -> Path:
    """Canvas's flat download of two honest students (one solved everything, one left
    2_lists untouched) and a roster with a third who handed in nothing. Jane's written answer
    has a ``<``, which the class course's cleaning escapes: labkit rewrites her autograded
    notebook, which nbgrader leaves read-only by default."""
    subs = Submissions(folder / "download")
    answer = "Squares are never negative: 0 <= x**2 for every x."
    subs.zip("smithjane_1001_5001_lab.zip", {"lab/1_squares.ipynb": changed(read("solution", "1_squares"), {"why": answer}),
                                             "lab/2_lists.ipynb": read("solution", "2_lists")})
    subs.add("leeal_1003_5002_1_squares.ipynb", read("solution", "1_squares"))
    subs.add("leeal_1003_5003_2_lists.ipynb", read("student", "2_lists"))
    (folder / "roster.csv").write_text(ROSTER, encoding="utf-8")
    return subs.folder


def labkit_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "labkit", *args]


def run(command: list[str], user: str | None) -> subprocess.CompletedProcess:
    """``command`` as ``user`` (from root, through run_as_user.py), or as this process's user."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if user is not None:
        command = [sys.executable, str(RUN_AS_USER), user, "--", *command]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, f"{command} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def the_user() -> str | None:
    """Whom to grade as: USER when started as root, else this process's own (ordinary) user."""
    return USER if IS_ROOT else None


@pytest.fixture(scope="module")
def user_class():
    """The honest class graded by ``the_user()`` with ``--keep``: (folder, out, course, uid)."""
    user = the_user()
    if IS_ROOT and user is None:
        pytest.skip(NEEDS_USER.kwargs["reason"])
    if user is not None:
        run(["true"], user)  # creates the user when missing
    uid = pwd.getpwnam(user).pw_uid if user else os.geteuid()
    folder = Path(tempfile.mkdtemp(prefix="labkit-as-user-"))  # in /tmp: reachable by the user
    subs = honest_class(folder)
    if user is not None:
        shutil.chown(folder, user)
        for path in folder.rglob("*"):
            shutil.chown(path, user)
    out, course = folder / "out", folder / "course"
    run(labkit_command("autograde", str(subs), "--roster", str(folder / "roster.csv"), "--out", str(out),
                       "--keep", str(course), *ARGS), user)
    yield folder, out, course, uid
    shutil.rmtree(folder, ignore_errors=True)


def feedback_pages(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted((out / "feedback").rglob("*.html"))}


@NEEDS_USER
def test_the_ordinary_users_run_writes_feedback_and_keeps_its_own_files(user_class):
    folder, out, course, uid = user_class
    pages = feedback_pages(out)
    assert sorted(pages) == [f"feedback/{student}/{page}.html" for student in ("leeal_1003", "smithjane_1001")
                             for page in ("1_squares", "2_lists", "index")]
    for name in COMPARED:
        assert (out / name).is_file(), name
    assert (course / "autograded" / "smithjane_1001" / "lab" / "1_squares.ipynb").is_file()
    for path in [out, course, *out.rglob("*"), *course.rglob("*")]:
        if path.is_symlink():
            continue
        st = path.stat()
        assert st.st_uid == uid, f"{path} belongs to uid {st.st_uid}, not the grading user's {uid}"
        need = 0o700 if path.is_dir() else 0o600
        assert st.st_mode & 0o777 & need == need, f"{path}: mode {oct(st.st_mode & 0o777)}, its owner needs {oct(need)}"
        assert not st.st_mode & 0o077, f"{path}: mode {oct(st.st_mode & 0o777)} lets others in"


@NEEDS_USER
@pytest.mark.skipif(not IS_ROOT, reason="the comparison with a run as root needs root")
def test_an_honest_class_graded_as_an_ordinary_user_gives_roots_bytes(user_class, tmp_path):
    folder, out, _, _ = user_class
    subs = honest_class(tmp_path / "root")
    root_out = tmp_path / "root" / "out"
    run(labkit_command("autograde", str(subs), "--roster", str(tmp_path / "root" / "roster.csv"),
                       "--out", str(root_out), *ARGS), None)
    for name in COMPARED:
        assert (out / name).read_bytes() == (root_out / name).read_bytes(), name
    assert feedback_pages(out) == feedback_pages(root_out)


HAND_GRADE = """
import sys
from nbgrader.api import Gradebook
with Gradebook("sqlite:///" + sys.argv[1], course_id="labkit") as gb:
    grade = gb.find_grade("why", "1_squares", "lab", "smithjane_1001")
    grade.manual_score = 0.5
    comment = gb.find_comment("why", "1_squares", "lab", "smithjane_1001")
    comment.manual_comment = "half: the reason, not the example"
    gb.db.commit()
"""


@NEEDS_USER
def test_the_kept_course_takes_a_hand_grade_and_gives_it_back(user_class):
    folder, out, course, _ = user_class
    user = the_user()
    script = folder / "hand_grade.py"
    script.write_text(HAND_GRADE, encoding="utf-8")
    if user is not None:
        shutil.chown(script, user)
    run([sys.executable, str(script), str(course / "gradebook.db")], user)
    again = folder / "again"
    run(labkit_command("autograde", "--from-course", str(course), "--out", str(again)), user)
    before = (out / "grades.csv").read_text().splitlines()
    after = (again / "grades.csv").read_text().splitlines()
    header = before[0].split(",")
    changed = [(b, a) for b, a in zip(before, after) if b != a]
    assert len(before) == len(after) and len(changed) == 1, changed
    old, new = (dict(zip(header, line.split(","))) for line in changed[0])
    assert (old["student"], old["notebook"]) == ("smithjane_1001", "1_squares")
    assert old["why"] == "" and new["why"] == "0.5"
    assert float(new["total"]) == float(old["total"]) + 0.5
    assert "half: the reason" in (again / "feedback" / "smithjane_1001" / "1_squares.html").read_text()
