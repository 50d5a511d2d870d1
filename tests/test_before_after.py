"""What `labkit autograde` writes, byte for byte the same as before labkit/course/ was restructured (issue #23).

Three of the test classes are graded with the command line (real nbgrader, the real sandbox):
the broken class of tests/test_grading.py, one folder (or zip) per student, without the two
students whose rows depend on the machine's speed (hank's memory hog, frank's endless loop);
the Canvas class of tests/test_layouts.py with its roster and ``--lms canvas --lms moodle``,
then ``--from-course`` on the course it kept; and the Moodle class with its grading worksheet and
``--lms moodle``. Every file they write that tests/fixtures/before/ holds (grades.csv,
summary.csv, canvas-import.csv, moodle-import.csv) must be the same bytes as there. Those files
were written by the code before the change:

    .venv/bin/python tests/test_before_after.py tests/fixtures/before
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # run as a script: the test modules it builds the classes with

from helpers.course import SOLUTIONS, TIMEOUT, sandbox_mode  # noqa: E402
from test_grading import make_class  # noqa: E402
from test_layouts import CANVAS_ROSTER, MOODLE_WORKSHEET, canvas_download, moodle_download  # noqa: E402

BEFORE = Path(__file__).parent / "fixtures" / "before"
OUTPUTS = ("grades.csv", "summary.csv", "canvas-import.csv", "moodle-import.csv")
def limits() -> list[str]:
    return ["--timeout", str(TIMEOUT), "--memory", "1024", "--cpu-limit", "60", "--jobs", "2", "--sandbox", sandbox_mode()]


def folders_class(root: Path) -> Path:
    """tests/test_grading.py's class without hank and frank's endless loop (their rows depend on timing)."""
    subs = make_class(root)
    shutil.rmtree(subs / "hank")
    (subs / "frank" / "1_squares.ipynb").unlink()
    return subs


def autograde(*args: str) -> None:
    from labkit.cli import main

    assert main(["autograde", *args]) == 0, args


def grade_classes(work: Path, dest: Path) -> None:
    """Grade the three classes in ``work`` and copy what they wrote into ``dest``/<class>/."""
    subs = folders_class(work / "folders")
    autograde(str(subs), "--solutions", str(SOLUTIONS), "--out", str(work / "folders" / "out"), *limits())
    subs = canvas_download(work / "canvas" / "download")
    roster = work / "canvas" / "gradebook-export.csv"
    roster.write_text(CANVAS_ROSTER, encoding="utf-8")
    autograde(str(subs), "--solutions", str(SOLUTIONS), "--out", str(work / "canvas" / "out"), "--roster", str(roster),
              "--lms", "canvas", "--lms", "moodle", "--lms-column", "Lab (777)", "--keep", str(work / "canvas" / "course"),
              *limits())
    autograde("--from-course", str(work / "canvas" / "course"), "--out", str(work / "from-course" / "out"))
    subs = moodle_download(work / "moodle" / "download")
    roster = work / "moodle" / "worksheet.csv"
    roster.write_text(MOODLE_WORKSHEET, encoding="utf-8")
    autograde(str(subs), "--solutions", str(SOLUTIONS), "--out", str(work / "moodle" / "out"), "--roster", str(roster),
              "--lms", "moodle", *limits())
    for name in ("folders", "canvas", "from-course", "moodle"):
        (dest / name).mkdir(parents=True, exist_ok=True)
        for output in OUTPUTS:
            if (work / name / "out" / output).is_file():
                shutil.copyfile(work / name / "out" / output, dest / name / output)


def differences(now: Path, before: Path = BEFORE) -> list[str]:
    """The files of ``before`` that ``now`` lacks or holds other bytes of, and those it has in addition."""
    expected = {p.relative_to(before) for p in before.rglob("*.csv")}
    written = {p.relative_to(now) for p in now.rglob("*.csv")}
    return sorted([f"{p}: not written" for p in expected - written] + [f"{p}: not expected" for p in written - expected]
                  + [f"{p}: other bytes" for p in expected & written if (now / p).read_bytes() != (before / p).read_bytes()])


@pytest.mark.slow
def test_outputs_are_the_bytes_written_before_the_restructuring(tmp_path):
    assert len(list(BEFORE.rglob("*.csv"))) == 13
    grade_classes(tmp_path / "work", tmp_path / "now")
    assert differences(tmp_path / "now") == []


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        grade_classes(Path(work), Path(sys.argv[1]))
