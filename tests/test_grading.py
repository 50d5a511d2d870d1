"""`labkit autograde` (labkit/course/: submissions, repair, student, gradebook, autograde, sandbox).

Fast tests check the pieces without nbgrader. Then one class of made-up,
broken submissions of the tiny fixture assignment (tests/fixtures/grading:
solutions/ and the student versions nbgrader made of them, student/) is graded
once, and every row of its grades.csv is checked; a second, smaller run checks
that grading is repeatable byte for byte. The last test grades the real lab
(solutions/ and notebooks/) for two students, in grading mode.
"""
from __future__ import annotations

import copy
import io
import json
import re
import shutil
import sqlite3
import zipfile
from pathlib import Path

import nbformat
import pytest

from helpers.course import (AUTO, NOTEBOOKS, SOLUTIONS, TIMEOUT, Submissions, assert_scores, cell, changed,
                            load_csv, no_bwrap, options, read, sandbox_mode)
from labkit.course.grading import gradebook
from labkit.course.grading.autograde import autograde
from labkit.course.grading.kept import export
from labkit.course.grading.records import Options
from labkit.course.intake import submissions
from labkit.course.intake.repair import repair_notebook
from labkit.course.intake.submissions import find_submissions, match_notebooks, safe_student_id
from labkit.course.sandbox import prepare as sandbox


# --------------------------------------------------------------------------- fast: no nbgrader


def test_student_ids_from_lms_names():
    assert safe_student_id("alice") == "alice"
    assert safe_student_id("Alice Smith_12345_assignsubmission_file_") == "Alice-Smith_12345"
    assert safe_student_id("bob.zip") == "bob"
    assert safe_student_id("Zoë O'Neil (2)") == "Zoe-O-Neil-2"
    assert safe_student_id("../..") == "student"


def test_misnamed_notebooks_are_matched_when_unambiguous():
    expected = ["1_pca", "2_ppca"]
    chosen, notes, unknown = match_notebooks(["lab/1_PCA (1).ipynb", "2_ppca-Copy1.ipynb", "notes.ipynb"], expected)
    assert chosen == {"1_pca": "lab/1_PCA (1).ipynb", "2_ppca": "2_ppca-Copy1.ipynb"}
    assert "graded 'lab/1_PCA (1).ipynb' as 1_pca.ipynb" in notes["1_pca"]
    assert unknown == ["notes.ipynb"]
    # an exact name wins, the least nested one; the others are noted
    chosen, notes, _ = match_notebooks(["a/b/1_pca.ipynb", "1_pca.ipynb", "Copy of 1_pca.ipynb"], expected)
    assert chosen == {"1_pca": "1_pca.ipynb"}
    assert notes["1_pca"] == ["also found a/b/1_pca.ipynb (not graded)", "also found Copy of 1_pca.ipynb (not graded)"]
    # two copies and no original: ambiguous, none graded
    chosen, notes, _ = match_notebooks(["1_pca (1).ipynb", "1_pca (2).ipynb"], expected)
    assert chosen == {} and notes["1_pca"][0].startswith("ambiguous")


def test_submissions_folder_zip_nesting_and_strays(tmp_path):
    subs = tmp_path / "subs"
    (subs / "bob" / "lab" / ".ipynb_checkpoints").mkdir(parents=True)
    (subs / "bob" / "lab" / "1_squares.ipynb").write_text("{}")
    (subs / "bob" / "lab" / ".ipynb_checkpoints" / "1_squares-checkpoint.ipynb").write_text("{}")
    (subs / "bob" / "secret.ipynb").symlink_to(SOLUTIONS / "1_squares.ipynb")  # never followed
    with zipfile.ZipFile(subs / "Carol Li_7_assignsubmission_file_.zip", "w") as zf:
        zf.writestr("carol-lab/2_lists.ipynb", "{}")
        zf.writestr("__MACOSX/carol-lab/._2_lists.ipynb", "x")
        zf.writestr("../../evil.ipynb", "{}")
    (subs / "broken.zip").write_bytes(b"not a zip")
    (subs / "readme.txt").write_text("hello")
    (subs / "bob.zip").write_bytes((subs / "Carol Li_7_assignsubmission_file_.zip").read_bytes())
    found = {s.student: s for s in find_submissions(subs)}
    assert sorted(found) == ["Carol-Li_7", "bob", "bob-2", "broken", "readme.txt"]
    assert found["bob-2"].source == "bob.zip" and "student id bob-2" in found["bob-2"].notes[0]
    assert list(found["bob"].files) == ["lab/1_squares.ipynb"]
    assert sorted(found["Carol-Li_7"].files) == ["carol-lab/2_lists.ipynb", "evil.ipynb"]
    assert found["broken"].problem.startswith("invalid zip") and not found["broken"].ignored
    assert found["readme.txt"].ignored


def _damaged_zip(path, how):
    """A zip that opens but whose member cannot be read: corrupt data, encrypted, or an unknown method."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("lab/1_squares.ipynb", "{}" + " " * 4000)
    data = bytearray(path.read_bytes())
    header = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    if how == "corrupt":  # garble the compressed bytes (after the 30-byte header and the name)
        start = header + 30 + len("lab/1_squares.ipynb")
        data[start : start + 8] = b"\xff" * 8
    elif how == "encrypted":  # set the "encrypted" flag bit in both headers
        data[header + 6] |= 1
        data[central + 8] |= 1
    elif how == "method":  # compression method 99 (AES), which zipfile does not implement
        data[header + 8 : header + 10] = (99).to_bytes(2, "little")
        data[central + 10 : central + 12] = (99).to_bytes(2, "little")
    path.write_bytes(bytes(data))


def test_a_damaged_zip_is_reported_and_never_stops_the_class(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    for how in ("corrupt", "encrypted", "method"):
        _damaged_zip(subs / f"{how}.zip", how)
    (subs / "dave").mkdir()  # a damaged zip inside a student's folder
    _damaged_zip(subs / "dave" / "lab.zip", "corrupt")
    (subs / "dave" / "1_squares.ipynb").write_text("{}")
    found = {s.student: s for s in find_submissions(subs)}
    assert sorted(found) == ["corrupt", "dave", "encrypted", "method"]
    for how in ("corrupt", "encrypted", "method"):
        assert found[how].problem.startswith("invalid zip: "), (how, found[how].problem)
        assert not found[how].ignored
    assert list(found["dave"].files) == ["1_squares.ipynb"]
    assert found["dave"].notes and found["dave"].notes[0].startswith("lab.zip: not a valid zip")


def test_a_submission_over_the_size_budget_is_cut_short_with_a_note(tmp_path, monkeypatch):
    """A zip bomb (highly compressible notebooks, a nested zip of them) never fills the grader's memory."""
    monkeypatch.setattr(submissions, "MAX_SUBMISSION_BYTES", 50_000)
    subs = tmp_path / "subs"
    subs.mkdir()
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for i in range(5):
            zf.writestr(f"copy{i}.ipynb", "{}" + " " * 20_000)  # 100 kB of notebooks in about 1 kB
    with zipfile.ZipFile(subs / "erin.zip", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("1_squares.ipynb", "{}" + " " * 20_000)
        zf.writestr("more.zip", inner.getvalue())
    (subs / "fred").mkdir()  # the same from a folder
    for i in range(4):
        (subs / "fred" / f"n{i}.ipynb").write_text("{}" + " " * 20_000)
    found = {s.student: s for s in find_submissions(subs)}
    erin, fred = found["erin"], found["fred"]
    for sub in (erin, fred):
        assert 0 < sum(map(len, sub.files.values())) <= 50_000
        assert sub.problem is None and any("would exceed" in note for note in sub.notes), sub.notes
    assert list(erin.files) == ["1_squares.ipynb", "more.zip/copy0.ipynb"]  # then the budget ran out
    assert any(note.startswith("more.zip/copy1.ipynb was not read: the submission would exceed") for note in erin.notes)
    assert sorted(fred.files) == ["n0.ipynb", "n1.ipynb"]


@pytest.mark.filterwarnings("ignore:Non-unique cell id")
def test_repair_restores_deduplicates_and_notes_edits():
    release = read("student", "1_squares")
    nb = read("solution", "1_squares")
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") not in ("test_square", "why")]
    fix = nbformat.v4.new_code_cell("def square(x):\n    return x ** 2")  # the student's own extra cell
    nb.cells.insert(3, fix)
    cell(nb, "test_add").source = "pass"
    nb.cells.insert(1, copy.deepcopy(cell(nb, "setup")))
    repaired, notes, problem = repair_notebook(nbformat.writes(nb).encode(), release)
    assert problem is None
    assert "duplicate grade_id setup (the last copy was graded)" in notes
    assert "edited locked cells test_add (the originals were run)" in notes
    assert "restored deleted cells test_square, why" in notes
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in repaired.cells]
    assert ids.count("setup") == 1 and ids.count("test_square") == 1
    # the restored test runs after the student's own cell, before the next graded cell
    assert ids.index("test_square") == [c.source for c in repaired.cells].index(fix.source) + 1
    assert ids.index("test_square") < ids.index("add")
    assert len({c.id for c in repaired.cells}) == len(repaired.cells)
    nbformat.validate(repaired)


@pytest.mark.parametrize("raw, reason", [
    (b"", "empty file"),
    (b"\xff\xfe\x00", "not UTF-8"),
    (b'{"cells": [', "not JSON"),
    (b'{"cells": []}', "not a notebook"),
    (b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}}', "no list of cells"),
])
def test_invalid_notebooks_say_why(raw, reason):
    nb, _, problem = repair_notebook(raw, read("student", "1_squares"))
    assert nb is None and problem.startswith("invalid notebook") and reason in problem


def test_empty_notebook_gets_every_graded_cell_back():
    raw = json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}).encode()
    nb, notes, problem = repair_notebook(raw, read("student", "2_lists"))
    assert problem is None and notes == ["restored deleted cells intro, mean, test_mean, largest, test_largest"]


@pytest.mark.as_user
def test_sandbox_limits_apply(tmp_path):
    """The kernel's Python starts under the sandbox; with too little memory it cannot."""
    mode = sandbox_mode()
    (tmp_path / "scratch").mkdir()
    config = sandbox.make_config(
        mode=mode, scratch=tmp_path / "scratch", ipc_dir=tmp_path, record=tmp_path / "r.jsonl", memory_mb=4096,
        cpu_seconds=60, wall_seconds=120, threads=1, env={}, readable=sandbox.python_dirs(),
        hidden=[str(tmp_path)], user=None)
    assert sandbox.check(config) is None
    config["memory_bytes"] = 20 << 20
    assert sandbox.check(config) is not None


# --------------------------------------------------------------------------- a broken class, graded once

SNOOP = '''\
import os
found = []
for top in ("/tmp", "/var/tmp", "/root", "/home", "/work", "/srv", "/opt", "/mnt", {roots}):
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if d != "site-packages"]  # nbgrader ships test gradebooks
        found += [os.path.join(dirpath, f) for f in filenames
                  if f in ("gradebook.db", "nbgrader_config.py", "sandbox.json", "kernels.jsonl", "grades.csv")
                  or f.endswith(".ipynb") and ("squares" in f or "lists" in f)]
d = os.getcwd()
while d != "/":  # search upward for the course
    found += [os.path.join(d, f) for f in ("gradebook.db", "source", "submitted", "autograded") if os.path.exists(os.path.join(d, f))]
    d = os.path.dirname(d)
for path in ({solution!r}, {other!r}):
    try:
        open(path).read(10)
        found.append("read " + path)
    except OSError:
        pass
for path in ({out!r}, {mine!r}):
    try:
        open(path, "w").write("x")
        found.append("wrote " + path)
    except OSError:
        pass
print(f"SNOOP-RESULT: {{len(found)}} secrets {{found}}")

def square(x):
    return x * x
'''


def make_class(root: Path) -> Path:
    """The made-up class: one student per way a submission can go wrong."""
    subs = Submissions(root / "submissions")
    sol = {n: read("solution", n) for n in NOTEBOOKS}
    stu = {n: read("student", n) for n in NOTEBOOKS}

    # Alice (a Moodle zip with a top folder): the solutions, one misnamed, plus a stray notebook
    subs.zip("Alice Smith_1001_assignsubmission_file_.zip", {
        "lab-alice/1_squares.ipynb": sol["1_squares"], "lab-alice/2_lists (1).ipynb": sol["2_lists"],
        "lab-alice/notes.ipynb": stu["2_lists"]})
    # bob (nested folder): the student versions, untouched
    for n in NOTEBOOKS:
        subs.add(f"bob/lab/{n}.ipynb", stu[n])
    # carol: add() wrong, a test cell and the written answer deleted;
    # a solution cell duplicated, largest() wrong and its test cell edited to pass
    nb = changed(sol["1_squares"], {"add": "def add(a, b):\n    return a - b"})
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") not in ("test_square", "why")]
    subs.add("carol/1_squares.ipynb", nb)
    nb = changed(sol["2_lists"], {"largest": "def largest(xs):\n    return min(xs)", "test_largest": "pass"})
    data = json.loads(nbformat.writes(nb))
    data["cells"].insert(2, copy.deepcopy(data["cells"][1]))  # same grade id, same cell id
    subs.add("carol/2_lists.ipynb", json.dumps(data))
    # frank: an endless loop after defining add(); a truncated file
    subs.add("frank/1_squares.ipynb", changed(sol["1_squares"], {"add": "def add(a, b):\n    return a + b\n\nwhile True:\n    pass"}))
    subs.add("frank/2_lists.ipynb", nbformat.writes(sol["2_lists"]).encode()[:200])
    # hank: looks for the gradebook, the solutions and the others; hogs memory
    folder = subs.folder
    subs.add("hank/1_squares.ipynb", changed(sol["1_squares"], {"square": SNOOP.format(
        roots=", ".join(repr(str(p)) for p in (root, SOLUTIONS.parent.parent.parent, folder)),
        solution=str(SOLUTIONS / "1_squares.ipynb"), other=str(folder / "bob" / "lab" / "1_squares.ipynb"),
        out=str(root / "out" / "grades.csv"),
        # the basic sandbox would let this write go through: only try it where it must fail
        mine=str(folder / "hank" / ("1_squares.ipynb" if not no_bwrap() else "nothing-here/x")))}))
    subs.add("hank/2_lists.ipynb", changed(sol["2_lists"], {"mean": (
        "def mean(xs):\n    return sum(xs) / len(xs)\n\nhog = []\nwhile True:\n    hog.append(bytearray(50 << 20))")}))
    # judy: the first notebook is right; the second kills its kernel
    subs.add("judy/1_squares.ipynb", sol["1_squares"])
    subs.add("judy/2_lists.ipynb", changed(sol["2_lists"], {"mean": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"}))
    # zed: an empty folder; and a stray file
    subs.empty("zed")
    subs.add("readme.txt", "not a submission")
    return folder


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    subs = make_class(root)
    before = {p: p.read_bytes() for p in subs.rglob("*") if p.is_file()}
    # last week's grades already lie in the output folder: hank tries to overwrite them
    (root / "out").mkdir()
    (root / "out" / "grades.csv").write_text("last week's grades\n")
    lines = []
    autograde(subs, solutions=SOLUTIONS, out=root / "out", keep=root / "course",
              options=options(), log=lines.append)
    after = {p: p.read_bytes() for p in subs.rglob("*") if p.is_file()}
    return root, load_csv(root / "out" / "grades.csv"), before == after, lines


@pytest.mark.as_user
def test_every_submission_has_rows_and_originals_are_untouched(graded_class):
    root, rows, untouched, _ = graded_class
    assert untouched
    students = {s for s, _ in rows}
    assert students == {"Alice-Smith_1001", "bob", "carol", "frank", "hank", "judy", "zed", "readme.txt"}
    assert list(rows) == sorted(rows)  # sorted rows
    for student in students - {"readme.txt"}:
        assert {(student, n) for n in NOTEBOOKS} <= set(rows)


@pytest.mark.as_user
def test_solutions_get_full_marks_and_the_stray_is_reported(graded_class):
    _, rows, _, _ = graded_class
    alice = "Alice-Smith_1001"
    for n in NOTEBOOKS:
        assert_scores(rows[alice, n], AUTO[n])
        assert rows[alice, n]["status"].startswith("graded")
    assert rows[alice, "1_squares"]["max"] == "4" and "to grade by hand: why" in rows[alice, "1_squares"]["status"]
    assert rows[alice, "1_squares"]["why"] == ""
    assert "graded 'lab-alice/2_lists (1).ipynb' as 2_lists.ipynb" in rows[alice, "2_lists"]["status"]
    stray = rows[alice, "lab-alice/notes.ipynb"]
    assert stray["status"].startswith("unrecognised notebook") and stray["total"] == ""


@pytest.mark.as_user
def test_untouched_student_versions_get_zero(graded_class):
    _, rows, _, _ = graded_class
    for n in NOTEBOOKS:
        assert_scores(rows["bob", n], {gid: 0 for gid in AUTO[n]})
        assert rows["bob", n]["status"] == "graded"
    assert rows["bob", "1_squares"]["why"] == "0"  # an untouched written answer scores zero


@pytest.mark.as_user
def test_one_wrong_function_loses_that_cell_and_edited_tests_are_replaced(graded_class):
    _, rows, _, _ = graded_class
    assert_scores(rows["carol", "1_squares"], {"test_square": 1, "test_add": 0})
    assert_scores(rows["carol", "2_lists"], {"test_mean": 2, "test_largest": 0})
    assert "edited locked cells test_largest (the originals were run)" in rows["carol", "2_lists"]["status"]


@pytest.mark.as_user
def test_deleted_cells_are_restored_and_duplicates_noted(graded_class):
    _, rows, _, _ = graded_class
    assert float(rows["carol", "1_squares"]["test_square"]) == 1  # restored, and run
    assert rows["carol", "1_squares"]["why"] == "0"  # restored as the unanswered stub
    assert "restored deleted cells test_square, why" in rows["carol", "1_squares"]["status"]
    assert "duplicate grade_id mean (the last copy was graded)" in rows["carol", "2_lists"]["status"]


@pytest.mark.as_user
def test_endless_loop_times_out_and_invalid_file_says_why(graded_class):
    _, rows, _, _ = graded_class
    row = rows["frank", "1_squares"]
    assert row["status"].startswith("timeout")
    assert_scores(row, AUTO["1_squares"])  # add() was defined before the loop; the rest ran
    row = rows["frank", "2_lists"]
    assert row["status"].startswith("invalid notebook: not JSON") and row["total"] == "0"


@pytest.mark.as_user
def test_student_code_sees_no_secrets_and_memory_hog_hits_the_limit(graded_class):
    root, rows, _, _ = graded_class
    assert_scores(rows["hank", "1_squares"], AUTO["1_squares"])
    assert rows["hank", "2_lists"]["status"].startswith("memory limit")
    assert float(rows["hank", "2_lists"]["test_largest"]) == 1  # the cells after the hog were graded
    if no_bwrap():
        pytest.skip(f"isolation needs bubblewrap: {no_bwrap()}")
    html = (root / "out" / "feedback" / "hank" / "1_squares.html").read_text()
    result = re.search(r"SNOOP-RESULT: (\d+) secrets (.*)", html)
    assert result, "the snooping cell did not run"
    assert result.group(1) == "0", result.group(2)


@pytest.mark.as_user
def test_killed_kernel_costs_only_its_notebook(graded_class):
    _, rows, _, _ = graded_class
    assert rows["judy", "2_lists"]["status"].startswith("kernel died")
    assert rows["judy", "2_lists"]["total"] == "0"
    assert_scores(rows["judy", "1_squares"], AUTO["1_squares"])


@pytest.mark.as_user
def test_empty_and_stray_submissions_have_rows(graded_class):
    _, rows, _, _ = graded_class
    assert rows["zed", "1_squares"]["status"] == "missing (no notebook in the submission)"
    assert rows["zed", "1_squares"]["total"] == "0" and rows["zed", "1_squares"]["max"] == "4"
    assert rows["readme.txt", "readme.txt"]["status"].startswith("ignored")


@pytest.mark.as_user
def test_grading_mode_feedback_and_logs(graded_class):
    root, _, _, lines = graded_class
    html = (root / "out" / "feedback" / "bob" / "1_squares.html").read_text()
    assert "grading mode: 1" in html
    assert sorted(p.name for p in (root / "out" / "feedback").iterdir()) == [
        "Alice-Smith_1001", "bob", "carol", "frank", "hank", "judy"]
    assert (root / "out" / "logs" / "judy.txt").read_text().count("set aside") == 1
    assert any(line.startswith("isolation: ") for line in lines)


@pytest.mark.as_user
def test_kept_course_exports_the_same_grades(graded_class, tmp_path):
    root, _, _, _ = graded_class
    course = root / "course"
    assert (course / "gradebook.db").is_file() and (course / "autograded" / "bob" / "lab" / "1_squares.ipynb").is_file()
    export(course, tmp_path / "again", log=lambda *_: None)
    assert (tmp_path / "again" / "grades.csv").read_bytes() == (root / "out" / "grades.csv").read_bytes()


def part_of_class(graded_class, dest: Path, names: tuple[str, ...]) -> tuple[Path, str]:
    """A copy of some of the class's submissions, and the rows the whole class's grades.csv has for them."""
    root = graded_class[0]
    subs = dest / "subs"
    subs.mkdir()
    for name in names:
        src = root / "submissions" / name
        shutil.copytree(src, subs / name) if src.is_dir() else shutil.copyfile(src, subs / name)
    keep = ("student,", *(f"{safe_student_id(name)}," for name in names))
    lines = (root / "out" / "grades.csv").read_text().splitlines(keepends=True)
    return subs, "".join(line for line in lines if line.startswith(keep))


@pytest.mark.as_user
def test_grading_twice_gives_the_same_bytes(graded_class, tmp_path):
    """The command line, on part of the class: same header and same rows, byte for byte."""
    from labkit.cli import main

    subs, expected = part_of_class(graded_class, tmp_path,
                                   ("Alice Smith_1001_assignsubmission_file_.zip", "frank", "readme.txt"))
    assert main(["autograde", str(subs), "--solutions", str(SOLUTIONS), "--out", str(tmp_path / "out"),
                 "--timeout", str(TIMEOUT), "--memory", "1024", "--jobs", "2", "--sandbox", sandbox_mode()]) == 0
    assert (tmp_path / "out" / "grades.csv").read_text() == expected


@pytest.mark.as_user
def test_a_failed_class_gradebook_still_gives_every_grade(graded_class, tmp_path, monkeypatch):
    """If the merge into one class gradebook fails at the very end, grades.csv comes from each
    student's own gradebook: the same bytes, and a warning that says what is missing."""
    subs, expected = part_of_class(graded_class, tmp_path, ("Alice Smith_1001_assignsubmission_file_.zip", "frank"))

    def broken_merge(target, sources):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(gradebook, "merge_gradebooks", broken_merge)
    messages = []
    autograde(subs, solutions=SOLUTIONS, out=tmp_path / "out",
              options=options(cpu_seconds=Options().cpu_seconds), log=messages.append)
    warning = [m for m in messages if "could not be built" in m]
    assert warning and "OperationalError: database is locked" in warning[0] and "no feedback" in warning[0]
    assert (tmp_path / "out" / "grades.csv").read_text() == expected
    assert (tmp_path / "out" / "logs" / "frank.txt").is_file()


# --------------------------------------------------------------------------- the real lab


@pytest.mark.as_user
@pytest.mark.slow
@pytest.mark.mnist
def test_real_lab_solutions_full_marks_student_versions_zero(mnist_root, tmp_path):
    from labkit.course.paths import project_root

    root = project_root()
    if root is None or not list((root / "notebooks").glob("*.ipynb")):
        pytest.skip("needs the checkout's solutions/ and notebooks/")
    subs = tmp_path / "subs"
    shutil.copytree(root / "solutions", subs / "teacher")
    shutil.copytree(root / "notebooks", subs / "untouched")
    autograde(subs, out=tmp_path / "out", options=Options(jobs=2, sandbox=sandbox_mode()), log=lambda *_: None)
    rows = load_csv(tmp_path / "out" / "grades.csv")
    names = sorted(p.stem for p in (root / "solutions").glob("*.ipynb"))
    assert set(rows) == {(s, n) for s in ("teacher", "untouched") for n in names}
    for n in names:
        teacher, untouched = rows["teacher", n], rows["untouched", n]
        assert teacher["status"].startswith("graded") and untouched["status"].startswith("graded"), (teacher, untouched)
        auto = [k for k in teacher if k not in ("student", "notebook", "total", "max", "status") and teacher[k] != ""]
        assert float(teacher["total"]) > 0
        for k in auto:  # every autograded cell of the solutions scores; none of the untouched notebook
            assert float(untouched[k]) == 0, (n, k)
        assert float(untouched["total"]) == 0
    # the solutions lose nothing but the written answers, which wait for the formgrader
    max_auto = {}
    for n in names:
        release = nbformat.read(root / "notebooks" / f"{n}.ipynb", as_version=4)
        for c in release.cells:
            meta = c.metadata.get("nbgrader", {})
            if meta.get("grade") and not meta.get("solution"):
                max_auto[n, meta["grade_id"]] = float(meta["points"])
    for (n, gid), points in max_auto.items():
        assert float(rows["teacher", n][gid]) == points, (n, gid)


@pytest.mark.as_user
def test_cpu_time_limit_and_the_command_from_anywhere_without_an_activated_venv(tmp_path):
    """`.venv/bin/labkit autograde`, run from another folder with the venv's bin/ off PATH (nbgrader
    must still find alembic): a notebook that burns processor time is stopped by --cpu-limit, the
    other notebook of the same student is graded in full."""
    import os
    import subprocess
    import sys

    subs = Submissions(tmp_path / "subs")
    subs.add("ivan/1_squares.ipynb", changed(read("solution", "1_squares"), {
        "add": "def add(a, b):\n    return a + b\n\nwhile True:\n    sum(range(10**6))"}))
    subs.add("ivan/2_lists.ipynb", read("solution", "2_lists"))
    elsewhere = tmp_path / "somewhere-else"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = "/usr/bin:/bin"
    labkit = Path(sys.executable).parent / "labkit"
    proc = subprocess.run(
        [str(labkit), "autograde", str(subs.folder), "--solutions", str(SOLUTIONS), "--out", "grades",
         "--timeout", "60", "--cpu-limit", "3", "--memory", "1024", "--sandbox", sandbox_mode()],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = load_csv(elsewhere / "grades" / "grades.csv")
    assert "CPU time limit (3 s per notebook)" in rows["ivan", "1_squares"]["status"], rows["ivan", "1_squares"]
    assert float(rows["ivan", "1_squares"]["total"]) < sum(AUTO["1_squares"].values())
    assert rows["ivan", "2_lists"]["status"].startswith("graded")
    assert_scores(rows["ivan", "2_lists"], AUTO["2_lists"])
