"""`labkit autograde` against hostile submissions: what comes in (zips, special files, tags,
metadata) and what goes out (grades, output, logs, feedback pages, permissions).

Fast tests attack the pieces (reading submissions, repairing notebooks). Then one class of
attackers of the tiny fixture assignment is graded once per sandbox mode (bwrap when it works,
and basic), and every attack's row, grade and leak is checked. The kernel-side attacks on the
sandbox itself live in tests/test_adversarial_sandbox.py.
"""
from __future__ import annotations

import copy
import io
import json
import os
import re
import stat
import struct
import threading
import tracemalloc
import zipfile
from pathlib import Path

import nbformat
import pytest

from helpers.course import AUTO, NOTEBOOKS, SOLUTIONS, Submissions, assert_scores, cell, load_csv, no_bwrap, read, write
from labkit.course.grading.autograde import autograde
from labkit.course.grading.records import Options
from labkit.course.intake import submissions
from labkit.course.intake.repair import repair_notebook
from labkit.course.intake.submissions import find_submissions

pytestmark = pytest.mark.adversarial

CAP = 1 << 20  # the class runs with 1 MB notebooks, 3 MB submissions and 1 MB of output per notebook


def lying_zip(path: Path, members: dict[str, bytes], liar: str, declared: int = 1000,
              method=zipfile.ZIP_BZIP2) -> Path:
    """A zip whose member ``liar`` declares ``declared`` bytes (in both headers) but holds more."""
    with zipfile.ZipFile(path, "w", compression=method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    data = bytearray(path.read_bytes())
    for sig, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (at := data.find(sig, start)) >= 0:
            name_at = at + (30 if sig == b"PK\x03\x04" else 46)
            if data[name_at:name_at + len(liar)] == liar.encode():
                data[at + size_at:at + size_at + 4] = struct.pack("<I", declared)
            start = at + 4
    path.write_bytes(bytes(data))
    return path


def tagged(nb, tags: list[str], *grade_ids: str):
    nb = copy.deepcopy(nb)
    for gid in grade_ids:
        cell(nb, gid).metadata["tags"] = list(tags)
    return nb


# --------------------------------------------------------------------------- fast: reading and repairing


def test_skip_execution_and_raises_exception_tags_on_tests_are_removed():
    release = read("student", "1_squares")
    nb = tagged(release, ["skip-execution", "raises-exception"], "test_square", "test_add")
    cell(nb, "test_add").metadata["execution"] = {"iopub.status.busy": "2026-01-01T00:00:00Z"}
    extra = nbformat.v4.new_code_cell("pass", metadata={"tags": ["skip-execution"]})  # the student's own cell
    nb.cells.insert(3, extra)
    repaired, notes, problem = repair_notebook(nbformat.writes(nb).encode(), release)
    assert problem is None
    for gid in ("test_square", "test_add"):
        assert cell(repaired, gid).metadata == cell(release, gid).metadata
    assert "changed tags of graded cells test_square, test_add (the released ones were used)" in notes


def test_a_lying_entry_is_cut_at_the_cap_in_bytes_actually_decompressed(tmp_path, monkeypatch):
    """An entry that declares 1 KB and inflates to 40 MB (bzip2, deflate): reading stops at the
    cap, and this process never holds much more than the cap."""
    monkeypatch.setattr(submissions, "MAX_NOTEBOOK_BYTES", CAP)
    subs = tmp_path / "subs"
    subs.mkdir()
    honest = nbformat.writes(read("solution", "1_squares")).encode()
    for method, name in ((zipfile.ZIP_BZIP2, "bz"), (zipfile.ZIP_DEFLATED, "fl")):
        lying_zip(subs / f"{name}.zip", {"1_squares.ipynb": honest, "2_lists.ipynb": b" " * (40 << 20)},
                  "2_lists.ipynb", method=method)
    tracemalloc.start()
    try:
        found = {s.student: s for s in find_submissions(subs)}
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * CAP, f"reading held {peak >> 20} MB"
    for sub in found.values():
        assert sub.problem is None and list(sub.files) == ["1_squares.ipynb"], (sub.problem, sub.notes)
        assert sub.notes == ["2_lists.ipynb is larger than 1 MB (not graded)"]


def test_item6_an_entry_past_the_notebook_cap_is_refused_without_holding_what_was_read(tmp_path, monkeypatch):
    """Issue #31 item 6: an entry that declares 1 KB and inflates past the notebook cap (16 MB
    here) is refused while this process holds a small fraction of the cap, not the cap itself."""
    cap = 16 << 20
    monkeypatch.setattr(submissions, "MAX_NOTEBOOK_BYTES", cap)
    (tmp_path / "subs").mkdir()
    for method, name in ((zipfile.ZIP_BZIP2, "bz"), (zipfile.ZIP_DEFLATED, "fl")):
        lying_zip(tmp_path / "subs" / f"{name}.zip", {"1_squares.ipynb": b" " * (cap + (1 << 20))}, "1_squares.ipynb",
                  method=method)
    tracemalloc.start()
    try:
        found = find_submissions(tmp_path / "subs")
        for sub in found:
            submissions.read_submission(sub)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    for sub in found:
        assert sub.files == {} and sub.notes == ["1_squares.ipynb is larger than 16 MB (not graded)"], sub.notes
    assert peak < cap // 8, f"reading held {peak >> 20} MB for a 16 MB cap"


def test_an_honest_nested_zip_bomb_is_never_held_in_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(submissions, "MAX_SUBMISSION_BYTES", 30 << 20)
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", compression=zipfile.ZIP_STORED) as zf:  # 20 MB, stored as it is
        zf.writestr("padding.bin", b"\0" * (20 << 20))
        zf.writestr("1_squares.ipynb", b"{}")
    (tmp_path / "subs").mkdir()
    with zipfile.ZipFile(tmp_path / "subs" / "nina.zip", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("inner.zip", inner.getvalue())
    del inner
    tracemalloc.start()
    try:
        (sub,) = find_submissions(tmp_path / "subs")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert list(sub.files) == ["inner.zip/1_squares.ipynb"] and sub.problem is None
    assert peak < 4 << 20, f"reading held {peak >> 20} MB"


def test_duplicate_zip_entries_are_read_once_and_reported(tmp_path):
    (tmp_path / "subs").mkdir()
    with zipfile.ZipFile(tmp_path / "subs" / "olga.zip", "w") as zf:
        zf.writestr("1_squares.ipynb", "A" * 1000)
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr("1_squares.ipynb", "B" * 10)
        zf.writestr("./1_squares.ipynb", "C" * 10)  # the same file once normalised
    (sub,) = find_submissions(tmp_path / "subs")
    assert sub.files == {"1_squares.ipynb": b"C" * 10} and sub.nbytes == 10
    assert sub.notes == ["1_squares.ipynb: 3 entries of that name in the zip (the last was read)"]


def test_special_files_are_refused_and_never_waited_on(tmp_path):
    subs = tmp_path / "subs"
    (subs / "quinn").mkdir(parents=True)
    os.mkfifo(subs / "pipe.zip")
    os.mkfifo(subs / "pipe")
    os.mkfifo(subs / "quinn" / "1_squares.ipynb")
    os.mkfifo(subs / "quinn" / "lab.zip")
    result = {}
    reader = threading.Thread(target=lambda: result.update(subs=find_submissions(subs)), daemon=True)
    reader.start()
    reader.join(30)
    if reader.is_alive():  # let the stuck reader go
        for fifo in ("pipe.zip", "pipe", "quinn/1_squares.ipynb", "quinn/lab.zip"):
            try:
                os.close(os.open(subs / fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
        pytest.fail("reading SUBMISSIONS waited on a FIFO")
    found = {s.source: s for s in result["subs"]}
    for name in ("pipe.zip", "pipe"):
        assert found[name].ignored and found[name].problem == "refused: a FIFO, not a folder or .zip"
    assert found["quinn"].files == {} and found["quinn"].notes == [
        "1_squares.ipynb: a FIFO, not a regular file (refused)", "lab.zip: a FIFO, not a regular file (refused)"]


def test_captured_output_is_capped_keeps_nbgrader_lines_and_replaces_bad_bytes():
    """What nbgrader prints (with the kernel's raw stdout and stderr in it) is kept within its cap."""
    import subprocess
    import sys

    from labkit.course.caps.stream import Capture

    script = ("import sys; w = sys.stdout.buffer.write\n"
              "w(b'[AutogradeApp | INFO] Sanitizing /c/1_squares.ipynb\\n')\n"
              "w((b'x' * 1000 + b'\\n') * 3000)\n"          # 3 MB of lines
              "w(b'y' * 2_000_000)\n"                        # one 2 MB line
              "w(b'\\n[AutogradeApp | INFO] Autograding /c/2_lists.ipynb\\n')\n"
              "w((b'z' * 1000 + b'\\n') * 3000)\n"
              "w(b'\\xff\\xfe bad \\xc3\\x28 end\\n')\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    capture = Capture(proc.stdout, 100_000)
    proc.wait()
    capture.join()
    text = capture.text()
    assert len(text.encode()) < 110_000 and capture.cut > 7_800_000
    assert "Sanitizing /c/1_squares.ipynb" in text and "Autograding /c/2_lists.ipynb" in text
    assert text.rstrip().endswith("\ufffd\ufffd bad \ufffd( end")
    assert "bytes of output left out]" in text


# --------------------------------------------------------------------------- a class of attackers, graded once per mode

XSS = "<script>window.pwned = 1</script><img src=x onerror=\"window.pwned = 2\">"
LOUD = '''\
import os, subprocess, sys
print("o" * 3_000_000)                       # the notebook's stdout
os.write(2, b"e" * 3_000_000)                # the kernel's fd 2
subprocess.run([sys.executable, "-c", "import os; os.write(2, b'r' * 3_000_000)"])  # a child's stderr

def square(x):
    return x * x
'''
BAD_BYTES = '''\
import os, subprocess, sys
os.write(1, b"\\xff\\xfe bad \\xc3\\x28 bytes\\n")
os.write(2, b"\\xff\\xfe bad \\xc3\\x28 bytes\\n")
subprocess.run([sys.executable, "-c", "import os; os.write(2, b'\\\\xff\\\\xc3\\\\x28 raw\\\\n')"])

def square(x):
    return x * x
'''


def make_attackers(root: Path) -> tuple[Path, list[Path]]:
    """One student per attack; returns (SUBMISSIONS, its FIFOs)."""
    subs = root / "submissions"
    add = Submissions(subs).add
    sol = {n: read("solution", n) for n in NOTEBOOKS}
    stu = {n: read("student", n) for n in NOTEBOOKS}
    # item 1: unsolved, every test tagged skip-execution (or raises-exception), a student cell
    # tagged skip-execution, execution metadata, hidden source
    add("tagger/1_squares.ipynb", tagged(stu["1_squares"], ["skip-execution"], "test_square", "test_add"))
    nb = tagged(stu["2_lists"], ["raises-exception", "skip-execution"], "test_mean", "mean")
    cell(nb, "test_largest").metadata.update(execution={"iopub.status.idle": "2026-01-01T00:00:00Z"},
                                             jupyter={"source_hidden": True})
    nb.cells.insert(2, nbformat.v4.new_code_cell("def mean(xs):\n    return 0", metadata={"tags": ["skip-execution"]}))
    add("tagger/2_lists.ipynb", nb)
    # item 5: a right first notebook, and a second that declares 1 KB and inflates to 8 MB (bzip2)
    lying_zip(subs / "bomb.zip", {"1_squares.ipynb": nbformat.writes(sol["1_squares"]).encode(),
                                  "2_lists.ipynb": b" " * (8 << 20)}, "2_lists.ipynb")
    # item 6: 9 MB of output, and add() wrong: its test must still fail
    nb = copy.deepcopy(sol["1_squares"])
    cell(nb, "square").source = LOUD
    cell(nb, "add").source = "def add(a, b):\n    print('x' * 2_000_000)\n    return a - b"
    add("loud/1_squares.ipynb", nb)
    add("loud/2_lists.ipynb", sol["2_lists"])
    # item 7: invalid UTF-8 on the kernel's stdout, stderr and a child's stderr
    nb = copy.deepcopy(sol["1_squares"])
    cell(nb, "square").source = BAD_BYTES
    add("badbytes/1_squares.ipynb", nb)
    add("badbytes/2_lists.ipynb", sol["2_lists"])
    # item 8: HTML and JavaScript in an output and in a written answer
    nb = copy.deepcopy(sol["1_squares"])
    cell(nb, "square").source = ("from IPython.display import HTML, Javascript, display\n"
                                 f"display(HTML({XSS!r}))\ndisplay(Javascript('window.pwned = 3'))\n"
                                 "def square(x):\n    return x * x")
    cell(nb, "why").source = "Because. " + XSS
    add("xss/1_squares.ipynb", nb)
    # item 11: FIFOs in SUBMISSIONS and in a student's folder; duplicate zip entries
    fifos = [subs / "pipe.zip", subs / "quinn" / "2_lists.ipynb"]
    add("quinn/1_squares.ipynb", sol["1_squares"])
    for fifo in fifos:
        os.mkfifo(fifo)
    with zipfile.ZipFile(subs / "dup.zip", "w") as zf:
        zf.writestr("1_squares.ipynb", nbformat.writes(sol["1_squares"]))
        zf.writestr("2_lists.ipynb", nbformat.writes(sol["2_lists"]))
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr("1_squares.ipynb", nbformat.writes(stu["1_squares"]))  # what unzip leaves: graded
    # contained today: zip slip and absolute names, links, kernelspec, edited, retyped and copied
    # tests, deep and huge notebooks
    with zipfile.ZipFile(subs / "slip.zip", "w") as zf:
        zf.writestr("../../escaped/1_squares.ipynb", nbformat.writes(sol["1_squares"]))
        zf.writestr("/escaped-abs/2_lists.ipynb", nbformat.writes(sol["2_lists"]))
    (subs / "linker").mkdir()
    (subs / "linker" / "1_squares.ipynb").symlink_to(SOLUTIONS / "1_squares.ipynb")
    (subs / "linked").symlink_to(SOLUTIONS, target_is_directory=True)
    nb = copy.deepcopy(stu["1_squares"])
    nb.metadata.kernelspec = {"name": "python3-evil", "display_name": "mine", "language": "python"}
    cell(nb, "test_square").source = "pass"
    test_add = cell(nb, "test_add")
    test_add.cell_type, test_add.source = "markdown", "not a test any more"
    del test_add["outputs"], test_add["execution_count"]
    copied = copy.deepcopy(cell(nb, "test_square"))
    copied.id = "copied"
    nb.cells.append(copied)
    add("retyper/1_squares.ipynb", nb)
    (subs / "deep").mkdir()
    (subs / "deep" / "1_squares.ipynb").write_text('{"cells": ' + "[" * 100_000 + "]" * 100_000 + "}")
    nb = copy.deepcopy(sol["2_lists"])
    nb.cells.append(nbformat.v4.new_markdown_cell("x" * (CAP + 1000)))
    add("deep/2_lists.ipynb", nb)
    return subs, fifos


@pytest.fixture(scope="module", params=["basic", "bwrap"])
def attacked(request, tmp_path_factory):
    """(root, rows, log lines, mode, FIFOs the run waited on): the attackers graded with sandbox ``mode``, umask 022, into an
    output folder that was world-readable before."""
    mode = request.param
    if mode == "bwrap" and no_bwrap():
        pytest.skip(f"bubblewrap does not work here: {no_bwrap()}")
    root = tmp_path_factory.mktemp(f"attacked-{mode}")
    subs, fifos = make_attackers(root)
    (root / "out").mkdir(mode=0o755)
    (root / "out" / "grades.csv").write_text("last week's grades\n")
    os.chmod(root / "out" / "grades.csv", 0o644)
    lines, failure, waited = [], [], []
    patch = pytest.MonkeyPatch()
    patch.setattr(submissions, "MAX_NOTEBOOK_BYTES", CAP)
    patch.setattr(submissions, "MAX_SUBMISSION_BYTES", 3 * CAP)
    old_umask = os.umask(0o022)

    def grade():
        try:
            autograde(subs, solutions=SOLUTIONS, out=root / "out", keep=root / "course", log=lines.append,
                      options=Options(timeout=20, memory_mb=1024, cpu_seconds=60, jobs=2, sandbox=mode, output_mb=1))
        except BaseException as e:  # noqa: BLE001 - raised below
            failure.append(e)

    try:
        run = threading.Thread(target=grade, daemon=True)
        run.start()
        while run.is_alive():  # a reader stuck opening a FIFO is let go (and remembered)
            run.join(5)
            for fifo in fifos:
                try:
                    os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # succeeds only if someone waits
                    waited.append(fifo.name)
                except OSError:
                    pass
    finally:
        os.umask(old_umask)
        patch.undo()
    if failure:
        raise failure[0]
    return root, load_csv(root / "out" / "grades.csv"), lines, mode, waited


def status(rows, student, notebook):
    return rows[student, notebook]["status"]


@pytest.mark.as_user
def test_item1_tags_cannot_forge_a_full_mark(attacked):
    _, rows, _, _, _ = attacked
    for n in NOTEBOOKS:
        assert_scores(rows["tagger", n], {gid: 0 for gid in AUTO[n]})
        assert status(rows, "tagger", n).startswith("graded; changed tags of graded cells"), status(rows, "tagger", n)


@pytest.mark.as_user
def test_item5_a_lying_zip_entry_is_cut_and_the_rest_graded(attacked):
    _, rows, _, _, _ = attacked
    assert_scores(rows["bomb", "1_squares"], AUTO["1_squares"])
    assert status(rows, "bomb", "1_squares").startswith("graded")
    assert status(rows, "bomb", "2_lists").startswith("missing; 2_lists.ipynb is larger than 1 MB (not graded)")


@pytest.mark.as_user
def test_item6_output_is_capped_in_bytes_everywhere_and_failing_tests_still_fail(attacked):
    root, rows, _, _, _ = attacked
    assert_scores(rows["loud", "1_squares"], {"test_square": 1, "test_add": 0})
    assert "output over 1 MB left out" in status(rows, "loud", "1_squares"), status(rows, "loud", "1_squares")
    assert_scores(rows["loud", "2_lists"], AUTO["2_lists"])
    autograded = root / "course" / "autograded" / "loud" / "lab" / "1_squares.ipynb"
    assert autograded.stat().st_size < 2 * CAP
    assert (root / "out" / "feedback" / "loud" / "1_squares.html").stat().st_size < 3 * CAP
    assert (root / "out" / "logs" / "loud.txt").stat().st_size < 5 * CAP
    nb = nbformat.read(autograded, as_version=4)
    errors = [o for o in cell(nb, "test_add").outputs if o.output_type == "error"]
    assert errors and errors[0].ename == "AssertionError"


@pytest.mark.as_user
def test_item7_invalid_utf8_from_the_kernel_is_decoded_with_replacement(attacked):
    root, rows, _, _, _ = attacked
    for n in NOTEBOOKS:
        assert_scores(rows["badbytes", n], AUTO[n])
        assert status(rows, "badbytes", n).startswith("graded"), status(rows, "badbytes", n)
    (root / "out" / "logs" / "badbytes.txt").read_text(encoding="utf-8")  # valid UTF-8


@pytest.mark.as_user
def test_item8_feedback_pages_run_no_student_script(attacked):
    root, rows, _, _, _ = attacked
    assert_scores(rows["xss", "1_squares"], AUTO["1_squares"])
    for page in (root / "out" / "feedback").rglob("*.html"):
        html = page.read_text()
        head = html[: html.lower().index("<head>") + 400]
        assert "Content-Security-Policy" in head and "default-src 'none'" in head, page
    html = (root / "out" / "feedback" / "xss" / "1_squares.html").read_text()
    assert "Because." in html  # the answer is shown, its HTML as text
    assert "<script>window.pwned" not in html and not re.search(r"<[^<>]*\bonerror=", html)
    assert not re.search(r"<script[^>]*>[^<]*pwned", html)  # the Javascript output is gone
    kept = root / "course" / "autograded" / "xss" / "lab" / "1_squares.ipynb"  # what the formgrader shows
    nb = nbformat.read(kept, as_version=4)
    shown = [c.source for c in nb.cells if c.cell_type == "markdown"]
    shown += [json.dumps(o.get("data", {})) for c in nb.cells for o in c.get("outputs", [])]
    assert shown and not any("<script" in text or "javascript" in text for text in shown)


@pytest.mark.as_user
def test_item9_outputs_are_private_whatever_the_umask(attacked):
    root, _, _, _, _ = attacked
    for top in (root / "out", root / "course"):
        assert stat.S_IMODE(top.stat().st_mode) == 0o700, top
        for path in top.rglob("*"):
            if path.is_symlink():
                continue
            want = 0o700 if path.is_dir() else 0o600
            assert stat.S_IMODE(path.stat().st_mode) == want, path


@pytest.mark.as_user
def test_item11_special_files_and_duplicate_entries(attacked):
    _, rows, _, _, waited = attacked
    assert not waited, f"the run waited on the FIFOs {waited}"
    assert status(rows, "pipe", "pipe.zip") == "refused: a FIFO, not a folder or .zip"
    assert_scores(rows["quinn", "1_squares"], AUTO["1_squares"])
    assert status(rows, "quinn", "2_lists").startswith("missing; 2_lists.ipynb: a FIFO, not a regular file (refused)")
    assert_scores(rows["dup", "1_squares"], {gid: 0 for gid in AUTO["1_squares"]})  # the last entry, once
    assert "1_squares.ipynb: 2 entries of that name in the zip (the last was read)" in status(rows, "dup", "1_squares")
    assert_scores(rows["dup", "2_lists"], AUTO["2_lists"])


@pytest.mark.as_user
def test_contained_zip_slip_links_kernelspec_edited_tests_deep_and_huge(attacked):
    root, rows, _, _, _ = attacked
    for n in NOTEBOOKS:  # names are made relative: graded, written nowhere else
        assert_scores(rows["slip", n], AUTO[n])
    assert not list(root.parent.rglob("escaped*")) and not Path("/escaped-abs").exists()
    assert status(rows, "linker", "1_squares").startswith("missing")  # the link was not followed
    assert rows["linker", "1_squares"]["total"] == "0"
    assert status(rows, "linked", "linked").startswith("ignored: a symbolic link")
    assert_scores(rows["retyper", "1_squares"], {gid: 0 for gid in AUTO["1_squares"]})
    assert re.search(r"edited locked cells (test_add, test_square|test_square, test_add) ", status(rows, "retyper", "1_squares"))
    assert "duplicate grade_id test_square (the last copy was graded)" in status(rows, "retyper", "1_squares")
    html = (root / "out" / "feedback" / "retyper" / "1_squares.html").read_text()
    assert "grading mode: 1" in html  # the labkit kernel ran it, not the student's kernelspec
    assert status(rows, "deep", "1_squares").startswith("invalid notebook"), status(rows, "deep", "1_squares")
    assert status(rows, "deep", "2_lists").startswith("missing; 2_lists.ipynb is larger than 1 MB")


@pytest.mark.as_user
def test_every_attacker_has_its_rows_and_the_run_says_its_mode(attacked):
    _, rows, lines, mode, _ = attacked
    students = {s for s, _ in rows}
    assert students == {"tagger", "bomb", "loud", "badbytes", "xss", "pipe", "quinn", "dup", "slip",
                        "linker", "linked", "retyper", "deep"}
    assert any(line.startswith("isolation: ") for line in lines)
    if mode == "bwrap":
        assert not no_bwrap()


# --------------------------------------------------------------------------- outputs that weigh more than they say (issue #31, item 4)

DISPLAY_FLOOD = '''\
from IPython.display import display, update_display
for _ in range(400):                          # 400 outputs sharing one display id ...
    display({"text/plain": "."}, raw=True, display_id="same")
update_display({"text/plain": "u" * 100_000}, raw=True, display_id="same")  # ... each filled with 100 KB

def square(x):
    return x * x
'''
METADATA_FLOOD = '''\
from IPython.display import display
display({"text/plain": "m"}, raw=True, metadata={"text/plain": {"pad": "m" * (8 << 20)}})

def square(x):
    return x * x
'''
WIDGET_FLOOD = '''\
import comm
state = {"_model_name": "DOMWidgetModel", "_model_module": "@jupyter-widgets/base", "_model_module_version": "2.0.0"}
c = comm.create_comm(target_name="jupyter.widget", data={"state": state, "buffer_paths": []})
for i in range(8):                            # binary buffers, kept base64 in metadata.widgets
    c.send({"method": "update", "state": {f"b{i}": None}, "buffer_paths": [[f"b{i}"]]}, buffers=[b"w" * (1 << 20)])

def square(x):
    return x * x
'''
MANY_OUTPUTS = '''\
from IPython.display import display
for _ in range(120_000):
    display({"text/plain": "."}, raw=True)

def square(x):
    return x * x
'''
FLOODS = {"displayer": DISPLAY_FLOOD, "metadata": METADATA_FLOOD, "widgets": WIDGET_FLOOD, "many": MANY_OUTPUTS}


@pytest.fixture(scope="module", params=["basic", "bwrap"])
def flooded(request, tmp_path_factory):
    """(root, rows): one student per flood (with a right 1_squares otherwise and the 2_lists
    solution), graded with 1 MB of output per notebook."""
    if request.param == "bwrap" and no_bwrap():
        pytest.skip(f"bubblewrap does not work here: {no_bwrap()}")
    root = tmp_path_factory.mktemp(f"flooded-{request.param}")
    for student, source in FLOODS.items():
        nb = read("solution", "1_squares")
        cell(nb, "square").source = source
        write(nb, root / "subs" / student / "1_squares.ipynb")
        write(read("solution", "2_lists"), root / "subs" / student / "2_lists.ipynb")
    autograde(root / "subs", solutions=SOLUTIONS, out=root / "out", keep=root / "course", log=lambda line: None,
              options=Options(timeout=20, memory_mb=1024, cpu_seconds=60, jobs=2, sandbox=request.param, output_mb=1))
    return root, load_csv(root / "out" / "grades.csv")


@pytest.mark.as_user
@pytest.mark.parametrize("student", sorted(FLOODS))
def test_item4_every_kept_byte_is_weighed_and_a_flood_keeps_a_cut_notebook(flooded, student):
    """Display-id updates count once per output they fill, metadata and widget buffers count,
    and so does the number of outputs: the notebook is cut to the cap, graded, and says so."""
    root, rows = flooded
    row = status(rows, student, "1_squares")
    assert row.startswith("graded") and "output over 1 MB left out" in row, row
    # the flood of outputs is interrupted (square, defined after it, never is); the others run on
    assert_scores(rows[student, "1_squares"], {"test_square": 0, "test_add": 2} if student == "many" else AUTO["1_squares"])
    assert_scores(rows[student, "2_lists"], AUTO["2_lists"])
    kept = root / "course" / "autograded" / student / "lab" / "1_squares.ipynb"
    assert kept.stat().st_size < 2 * CAP, kept.stat().st_size
    notes = [o.get("text", "") for o in cell(nbformat.read(kept, as_version=4), "square").outputs]
    assert any(n.startswith("[labkit: output past 1 MB per notebook left out]") for n in notes), notes[-5:]
    if student == "many":
        assert "[labkit: more than 2000 outputs per notebook: the cell was interrupted]\n" in notes
