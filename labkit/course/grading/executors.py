"""Where a run's students are graded: here, ``--jobs`` at a time, or on a Dask cluster.

Owns: :class:`Executor`, what a run asks of either (grade every submission; one
:class:`~labkit.course.grading.records.StudentResult` per submission's index),
:class:`Local` (threads on this machine) and :func:`executor_for` (the one a
run's ``scheduler`` asks for: :class:`labkit.course.grading.cluster.Dask` with
``--scheduler``). Both grade a student with the same
:func:`~labkit.course.grading.student.grade_student`.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Protocol

from labkit.course.grading.progress import Progress
from labkit.course.grading.records import Run, StudentResult
from labkit.course.grading.student import grade_student
from labkit.course.intake.submissions import Submission


Done = Callable[[int, StudentResult], None]


class Executor(Protocol):
    """Grades a class's submissions; ``local``: on this machine (whose sandbox the run probes
    and whose MNIST cache it warms), else on workers that set up their own."""

    local: bool

    def grade(self, subs: list[Submission], run: Run, log, done: Done | None = None) -> dict[int, StudentResult]:
        """{index in ``subs``: that student's result}, every student graded; ``done(index, result)``
        as each one's result arrives (the term's course commits it there)."""
        ...


class Local:
    """Every student graded here, ``run.options.jobs`` at a time."""

    local = True

    def grade(self, subs: list[Submission], run: Run, log, done: Done | None = None) -> dict[int, StudentResult]:
        results: dict[int, StudentResult] = {}
        lock = threading.Lock()
        progress = Progress(len(subs))

        def job(i: int, sub: Submission):
            t0 = time.perf_counter()
            progress.start()
            result = grade_student(sub, i, run)
            with lock:
                if done is not None:
                    done(i, result)
                results[i] = result
                progress.finish()
                progress.write(f"  {sub.student}: {result.outcome()} ({time.perf_counter() - t0:.0f} s)", log)

        try:
            with ThreadPoolExecutor(max_workers=run.options.jobs) as pool:
                for f in [pool.submit(job, i, sub) for i, sub in enumerate(subs)]:
                    f.result()
        finally:
            progress.close()
        return results


def executor_for(scheduler: str | None, tls=None) -> Executor:
    """:class:`Local`, or with a Dask scheduler's address the cluster behind it (TLS, with the
    certificates in the folder ``tls``: OptionError for a plain one)."""
    if scheduler is None:
        return Local()
    from labkit.course.grading.cluster import Dask

    return Dask(scheduler, tls)
