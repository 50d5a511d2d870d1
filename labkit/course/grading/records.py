"""The records of a grading run, which the run's stages share.

Owns: :class:`Options` (the limits an instructor sets), :class:`Row` (one line
of grades.csv before the scores are looked up) and :class:`Run` (what every
student's job shares).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from labkit.course.grading.assignment import Template
from labkit.course.nbgrader import ASSIGNMENT


@dataclass
class Row:
    """One line of grades.csv before the scores are looked up."""

    student: str
    notebook: str
    status: str
    scored: bool = True  # False: a file that is none of the assignment's notebooks


@dataclass
class Options:
    assignment: str = ASSIGNMENT
    timeout: int = 120         # seconds per cell (nbgrader's Execute.timeout)
    memory_mb: int = 8192      # address space of a kernel (torch alone reserves about 3.5 GB)
    cpu_seconds: int = 600     # processor time of a kernel (one notebook)
    jobs: int = 1
    sandbox: str = "auto"
    output_mb: int = 10        # output a notebook's cells may keep, all together (caps.outputs.CappedExecute)

    @property
    def wall_seconds(self) -> int:  # a kernel that ignores interrupts is killed after this
        return max(10 * self.timeout, self.cpu_seconds) + 60


@dataclass
class Run:
    """What every student's job needs."""

    dir: Path
    template: Template | None
    options: Options
    mode: str
    user: tuple[int, int] | None  # (first uid, count): each kernel's own uid comes from there (as root)
    readable: list[str]
    hidden: list[str]
    env: dict[str, str]
    threads: int
