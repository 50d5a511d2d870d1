"""The grading tests' shared pieces: the fixture assignment, the sandbox mode, one submissions builder.

The tiny fixture assignment lives in tests/fixtures/grading: ``solutions/`` (two notebooks with
nbgrader markup) and ``student/`` (the versions nbgrader made of them). This is the one test
module that imports ``labkit.course`` for the others' shared needs.
"""
from __future__ import annotations

import copy
import csv
import functools
import io
import zipfile
from pathlib import Path

import nbformat

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "grading"
SOLUTIONS = FIXTURE / "solutions"
STUDENT = FIXTURE / "student"
NOTEBOOKS = ["1_squares", "2_lists"]
AUTO = {"1_squares": {"test_square": 1, "test_add": 2}, "2_lists": {"test_mean": 2, "test_largest": 1}}
TIMEOUT = 6  # seconds per cell in the fixture class (its cells take milliseconds)
# Canvas's gradebook export of the Canvas classes (its "Points Possible" row included)
CANVAS_ROSTER = """\
Student,ID,SIS User ID,SIS Login ID,Section,Lab (777)
    Points Possible,,,,,7
"Smith, Jane",1001,S1001,jsmith,Lab A,
"Smith, Jane",1002,S1002,jsmith2,Lab B,
"Lee, Al",1003,S1003,alee,Lab A,
"Nguyen, Bo",1004,S1004,bnguyen,Lab B,
"Park, Sam",1006,S1006,spark,Lab A,
"""


@functools.cache
def no_bwrap() -> str | None:
    """Why bubblewrap does not work here (None when it does); probed once, when first asked."""
    from labkit.course.sandbox.bwrap import probe_bwrap

    return probe_bwrap()


def sandbox_mode() -> str:
    """The mode the fixture classes are graded in: bwrap where it works, else the basic sandbox."""
    return "basic" if no_bwrap() else "bwrap"


def slow_entry_points() -> tuple:
    """labkit's functions that run nbgrader or autograde (helpers.markers marks their users slow)."""
    from labkit.course.grading.autograde import autograde
    from labkit.course.release import notebooks as release
    from labkit.course.release import publish

    return autograde, release.generate, release.release, release.validate_student_versions, publish.publish


def options(**kwargs):
    """autograde's Options for the fixture classes: TIMEOUT, 1 GB, 60 s of CPU, two at a time, sandbox_mode()."""
    from labkit.course.grading.records import Options

    return Options(**{"timeout": TIMEOUT, "memory_mb": 1024, "cpu_seconds": 60, "jobs": 2,
                      "sandbox": sandbox_mode(), **kwargs})


# --------------------------------------------------------------------------- notebooks


def read(kind: str, name: str):
    """The fixture's ``solution`` or ``student`` version of notebook ``name``."""
    return nbformat.read((SOLUTIONS if kind == "solution" else STUDENT) / f"{name}.ipynb", as_version=4)


def cell(nb, grade_id: str):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def changed(nb, sources: dict[str, str]):
    """A copy of ``nb`` with the cells of ``sources``' grade ids holding their new source."""
    nb = copy.deepcopy(nb)
    for grade_id, source in sources.items():
        cell(nb, grade_id).source = source
    return nb


def write(nb, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def load_csv(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    """grades.csv as {(student, notebook): row}."""
    return {(r["student"], r["notebook"]): r for r in csv.DictReader(io.StringIO(path.read_text()))}


def assert_scores(row, expected: dict[str, float]):
    for gid, points in expected.items():
        assert float(row[gid]) == points, (gid, row)
    assert float(row["total"]) == sum(expected.values()), row


# --------------------------------------------------------------------------- submissions


def _data(content) -> bytes:
    """A notebook node as nbformat writes it to a file; text and bytes as they are."""
    if isinstance(content, bytes):
        return content
    if isinstance(content, str):
        return content.encode()
    return (nbformat.writes(content) + "\n").encode()


class Submissions:
    """A folder of made-up submissions, as an LMS download or a course's folder holds them.

    ``add("bob/lab/1_squares.ipynb", nb)`` writes a notebook (an nbformat node; or text or bytes,
    written as they are) at a path inside the folder; ``zip("bob.zip", {member: content})`` a zip
    of such contents; ``empty("zed")`` an empty student folder. Each returns the path it made.
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def add(self, relpath: str, content) -> Path:
        path = self.folder / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_data(content))
        return path

    def zip(self, relpath: str, members: dict[str, object]) -> Path:
        path = self.folder / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(zip_bytes(members))
        return path

    def empty(self, relpath: str) -> Path:
        path = self.folder / relpath
        path.mkdir(parents=True)
        return path


def zip_bytes(members: dict[str, object]) -> bytes:
    """A zip (stored, not compressed) of ``{member name: content}``, contents as :meth:`Submissions.add` takes them."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, _data(content))
    return buffer.getvalue()


# --------------------------------------------------------------------------- the template course


class Templates:
    """The template course of each solutions folder (``nbgrader generate_assignment``), built once
    per run and copied into every autograde run that asks for it.

    autograde builds it afresh in every run (labkit.course.grading.assignment.build_template); with no
    way yet to hand it a prebuilt one, :meth:`patch` replaces the name autograde calls by
    :meth:`build` for the session. Runs of the command line in a subprocess still build their own.
    ``folder`` is seen by every xdist worker of the run (``helpers.workers.run_folder``): the first
    worker that needs a template builds it there, under a lock, and the others copy it.
    """

    def __init__(self, folder: Path):
        self.root = Path(folder)

    def build(self, run: Path, solutions: Path, assignment: str):
        """What ``build_template(run, solutions, assignment)`` makes, copied from the one built first."""
        import hashlib
        import shutil

        from helpers.workers import Lock
        from labkit.course.grading import assignment as course_assignment
        from labkit.course.nbgrader import write_course_config

        sources = sorted(Path(solutions).glob("*.ipynb"))
        key = hashlib.sha256("\0".join([str(Path(solutions).resolve()), assignment]).encode()
                             + b"".join(p.name.encode() + p.read_bytes() for p in sources)).hexdigest()[:16]
        place = self.root / key
        with Lock(self.root / f"{key}.lock"):
            if not (place / "built").exists():
                shutil.rmtree(place, ignore_errors=True)  # what a build that failed left
                place.mkdir()
                course_assignment.build_template(place, solutions, assignment)
                (place / "built").touch()
        course = run / "template"
        shutil.copytree(place / "template", course)
        write_course_config(course, course / "gradebook.db")  # its own root and gradebook
        return course_assignment._read_course(course, assignment, [p.stem for p in sources], with_source=True)

    def patch(self, monkeypatch) -> None:
        from labkit.course.grading import autograde

        monkeypatch.setattr(autograde, "build_template", self.build)
