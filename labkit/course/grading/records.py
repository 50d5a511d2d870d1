"""The records of a grading run, which its stages share.

Owns: :class:`Options` (the limits an instructor sets) and :class:`Settings`
(what a run grades and where it writes), both checked once, where they are
built, and frozen; :class:`Run` (what every student's job shares, set up by
:mod:`labkit.course.grading.runsetup`); :class:`Row` (one line of grades.csv
before the scores are looked up), :class:`StudentResult` (what grading one
student gives) and :class:`GradeLine` (one line of grades.csv with its points).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from labkit.course.grading.assignment import Template
from labkit.course.nbgrader import ASSIGNMENT
from labkit.course.paths import require_project_root
from labkit.errors import OptionError


@dataclass(frozen=True)
class Options:
    """The limits an instructor sets (``labkit autograde --timeout --memory ...``), checked when built."""

    assignment: str = ASSIGNMENT
    timeout: int = 120         # seconds per cell (nbgrader's Execute.timeout)
    memory_mb: int = 8192      # address space of a kernel (torch alone reserves about 3.5 GB)
    cpu_seconds: int = 600     # processor time of a kernel (one notebook)
    jobs: int = 1
    sandbox: str = "auto"
    output_mb: int = 10        # output a notebook's cells may keep, all together (caps.outputs.CappedExecute)

    def __post_init__(self):
        if self.timeout < 1 or self.jobs < 1 or self.memory_mb < 256 or self.cpu_seconds < 1 or self.output_mb < 1:
            raise OptionError("--timeout, --jobs, --cpu-limit and --max-output must be positive "
                              "and --memory at least 256 (MB)")

    @property
    def wall_seconds(self) -> int:  # a kernel that ignores interrupts is killed after this
        return max(10 * self.timeout, self.cpu_seconds) + 60


@dataclass(frozen=True)
class Settings:
    """What one ``labkit autograde`` run grades and where it writes, every path absolute.

    Built by :meth:`build`, which checks the paths (the options check themselves)."""

    submissions: Path
    solutions: Path
    out: Path
    keep: Path | None = None
    options: Options = field(default_factory=Options)
    layout: str = "auto"
    roster: Path | None = None
    roster_columns: dict[str, str | None] = field(default_factory=dict)
    lms: tuple[str, ...] = ()
    lms_column: str | None = None
    scheduler: str | None = None
    tls: Path | None = None  # the folder of the cluster's certificates (labkit cluster-certs)
    course: Path | None = None       # the term's class course (--course), graded across runs
    regrade: tuple[str, ...] = ()    # notebooks or grade ids graded again for every student (--regrade)

    @classmethod
    def build(cls, submissions: str | os.PathLike, *, solutions: str | os.PathLike | None = None,
              out: str | os.PathLike = "grades", keep: str | os.PathLike | None = None, options: Options | None = None,
              layout: str = "auto", roster: str | os.PathLike | None = None,
              roster_columns: dict[str, str | None] | None = None, lms: tuple[str, ...] = (),
              lms_column: str | None = None, scheduler: str | None = None,
              tls: str | os.PathLike | None = None, course: str | os.PathLike | None = None,
              regrade: tuple[str, ...] = ()) -> Settings:
        """The settings of :func:`labkit.course.grading.autograde.autograde`'s parameters, checked:
        OptionError when the solutions folder is missing or --keep, --course or --out cannot be used."""
        solutions = Path(solutions if solutions is not None else require_project_root() / "solutions").resolve()
        if not solutions.is_dir():
            raise OptionError(f"no solutions folder {solutions}")
        submissions, out = Path(submissions).resolve(), Path(out).resolve()
        keep = Path(keep).resolve() if keep else None
        if keep is not None and keep.exists() and any(keep.iterdir()):
            raise OptionError(f"--keep {keep}: the folder exists and is not empty")
        course = _term_course(course, keep, regrade)
        for path, what in ((out, "--out"), (keep, "--keep"), (course, "--course")):
            if path is not None and (path == submissions or submissions in path.parents):
                raise OptionError(f"{what} {path} lies inside the submissions folder {submissions}")
        return cls(submissions, solutions, out, keep, options or Options(), layout,
                   Path(roster) if roster is not None else None, dict(roster_columns or {}), tuple(lms), lms_column,
                   scheduler, Path(tls).resolve() if tls is not None else None, course, tuple(regrade))


def _term_course(course: str | os.PathLike | None, keep: Path | None, regrade: tuple[str, ...]) -> Path | None:
    """--course resolved and checked: a new or empty folder, or a course an earlier --course run made."""
    if course is None:
        if regrade:
            raise OptionError("--regrade needs --course DIR: the term's course that holds the earlier grades")
        return None
    if keep is not None:
        raise OptionError("give either --keep (one batch) or --course (the term's course), not both")
    course = Path(course).resolve()
    known = {"labkit-template", "labkit-template.old", "labkit-term.lock"}  # a term course, or the lock of a first run that died
    if course.exists() and any(course.iterdir()) and not any((course / name).exists() for name in known):
        raise OptionError(f"--course {course}: the folder is not empty and is not a term's course made by "
                          "--course (a course kept with --keep is one batch: start the term in a new folder)")
    return course


@dataclass(frozen=True)
class Run:
    """What every student's job needs: the run folder, the template course, the sandbox's settings."""

    dir: Path
    template: Template | None     # None until the template is built (runsetup.prepare_run comes first)
    options: Options
    mode: str
    user: tuple[int, int] | None  # (first uid, count): each kernel's own uid comes from there (as root)
    readable: list[str]
    hidden: list[str]
    env: dict[str, str]
    threads: int


@dataclass
class Row:
    """One line of grades.csv before the scores are looked up."""

    student: str
    notebook: str
    status: str
    scored: bool = True  # False: a file that is none of the assignment's notebooks


@dataclass
class StudentResult:
    """What grading one student gives: grades.csv's rows for them, their course (gradebook and
    autograded notebooks; None when nbgrader graded nothing) and their log."""

    rows: list[Row]
    course: Path | None
    log: str

    def outcome(self) -> str:
        """Each notebook's outcome, the first part of its status (``1_pca: graded, 2_ppca: missing``),
        as the progress lines print it."""
        return ", ".join(f"{r.notebook}: {r.status.split(';')[0]}" for r in self.rows)


@dataclass(frozen=True)
class GradeLine:
    """One line of grades.csv: a student's notebook (or a file that is none), the points of its
    graded cells as written, total, max and status."""

    student: str
    notebook: str
    points: dict[str, str]       # grade id -> points ("" while waiting for the formgrader); {} when not scored
    pending: tuple[str, ...]     # grade ids waiting for the formgrader
    total: str                   # "" when not scored
    max: str
    status: str

    def cells(self, columns: list[tuple[str, str]]) -> list[str]:
        """The points in grades.csv's ``columns`` ((notebook, grade id) of every graded cell)."""
        return [self.points.get(gid, "") if name == self.notebook else "" for name, gid in columns]
