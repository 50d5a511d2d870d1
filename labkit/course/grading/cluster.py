"""Grading on a Dask cluster: ``labkit autograde SUBMISSIONS --scheduler ADDRESS``.

Owns: :class:`Dask` (the client side, an
:class:`~labkit.course.grading.executors.Executor`: each student one Dask task,
at most a window of them read and in flight at once, results kept once per
student) and :func:`grade_task` (the worker side). A task carries everything
the worker needs: the submission's bytes (read on the instructor's machine),
the template course (a tar, scattered once to every worker) and the
:class:`~labkit.course.grading.records.Options`; it returns a :class:`Packed`:
the student's result and course folder (gradebook and autograded notebooks, as a tar). A
worker never sees the instructor's checkout or the submissions folder. It
needs the same Python environment (labkit with its ``grading`` extra, torch)
and, for the real lab, MNIST in its own ``LABKIT_DATA``.

On each worker the run is set up once (:mod:`labkit.course.grading.runsetup`, the same
code as a local run: run folder, sandbox probe, uid range as root, MNIST cache)
and every student is graded by :func:`labkit.course.grading.student.grade_student`,
the same function as locally, in the same sandbox.

Faults: a worker that dies while grading a student makes the scheduler run
that task on another worker (Dask's ``distributed.scheduler.allowed-failures``,
3 by default); a task that still fails becomes that student's rows with the
reason. The scheduler going away raises GradingError before anything is written.
"""
from __future__ import annotations

import atexit
import dataclasses
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from labkit.course.grading.assignment import Template
from labkit.course.grading.progress import Progress
from labkit.course.grading.records import Options, Row, Run, StudentResult
from labkit.course.grading.runsetup import hidden_paths, prepare_run, start_mnist, warm_mnist
from labkit.course.grading.student import grade_student
from labkit.course.intake.repair import short
from labkit.course.intake.submissions import Submission, read_submission
from labkit.course.sandbox import prepare as sandbox
from labkit.errors import GradingError, OptionError

WINDOW_PER_THREAD = 2  # submissions read and in flight per worker thread (the bytes wait on the workers)
CONNECT_TIMEOUT = "30s"


# --------------------------------------------------------------------------- a course folder as bytes


def pack(folder: Path) -> bytes:
    """``folder``'s contents as an uncompressed tar (sorted, so the same folder gives the same bytes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return buf.getvalue()


def unpack(data: bytes, dest: Path) -> None:
    """Extract :func:`pack`'s bytes into ``dest`` (no links, nothing outside ``dest``)."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        tar.extractall(dest, filter="data")


# --------------------------------------------------------------------------- worker side

_RUNS: dict[str, tuple[Run, threading.Semaphore, str]] = {}
_RUNS_LOCK = threading.Lock()


def _cleanup(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def _worker_run(key: str, template_tar: bytes, template: Template, options: Options,
                host_slots: dict[str, int]) -> tuple[Run, threading.Semaphore, str]:
    """This worker's run for one class (set up on its first student): as ``labkit autograde`` does locally.
    ``host_slots``: host -> the threads of all the workers there when the run began; the kernels of a
    host share its processors (a worker that joined later counts its own threads only)."""
    with _RUNS_LOCK:
        if key in _RUNS:
            return _RUNS[key]
        from distributed import get_worker

        worker = get_worker()
        os.umask(0o077)  # the grading worker's files are private to it, like a local run's
        run_dir = Path(tempfile.mkdtemp(prefix="labkit-worker-"))  # in the worker's TMPDIR
        atexit.register(_cleanup, run_dir)
        mode, why_not = sandbox.choose_mode(options.sandbox)
        options = dataclasses.replace(options, jobs=max(1, worker.state.nthreads))
        notes: list[str] = []
        hidden = hidden_paths(run_dir, worker.local_directory)
        host = urlparse(worker.address).hostname
        slots = max(options.jobs, host_slots.get(host, 0))
        run, config = prepare_run(run_dir, options, mode, hidden, notes.append, host_slots=slots)
        unpack(template_tar, run_dir / "template")
        run = dataclasses.replace(run, template=dataclasses.replace(template, course=run_dir / "template"))
        run = warm_mnist(run, start_mnist(run, [json.dumps(nb) for nb in template.source.values()]), notes.append)
        notes.append(f"worker {worker.address}: isolation: {sandbox.describe(config, why_not)}")
        _RUNS[key] = (run, threading.Semaphore(run.options.jobs), "\n".join(notes))
        return _RUNS[key]


@dataclass
class Packed:
    """What a worker sends back for one student: the result (its ``course`` None: the folder is the
    worker's) and the student's course folder as a tar (:func:`pack`), None when nothing was graded."""

    result: StudentResult
    course: bytes | None


def grade_task(index: int, sub: Submission, shared: tuple[str, bytes, Template, Options, dict[str, int]]) -> Packed:
    """On a worker: grade one student."""
    key, template_tar, template, options, host_slots = shared
    run, slots, notes = _worker_run(key, template_tar, template, options, host_slots)
    course, ipc = run.dir / "courses" / str(index), run.dir / "ipc" / str(index)
    with slots:  # the basic sandbox not as root: one student at a time, whatever the worker's threads
        for folder in (course, ipc):  # a retried task on this worker starts afresh
            shutil.rmtree(folder, ignore_errors=True)
        try:
            result = grade_student(sub, index, run)
            return Packed(StudentResult(result.rows, None, f"{notes}\n{result.log}".strip()),
                          pack(result.course) if result.course is not None else None)
        finally:
            for folder in (course, ipc):
                shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------- client side


def _failed(sub: Submission, template: Template, error: BaseException) -> StudentResult:
    name = type(error).__name__
    if name == "KilledWorker":
        reason = "error: every Dask worker that took this student died (graded nowhere: grade it again)"
    else:
        reason = f"error: grading on the cluster failed: {name}: {short(str(error), 100)}"
    return StudentResult([Row(sub.student, nb, reason) for nb in template.notebooks], None,
                         f"labkit: {reason}\n{error!r}")


def _gone(address: str, error: BaseException) -> GradingError:
    return GradingError(f"the Dask scheduler at {address} went away while grading ({type(error).__name__}: "
                        f"{short(str(error), 200)}); nothing was written: start the scheduler again and rerun")


class Dask:
    """Every student graded as a task on the Dask cluster whose scheduler is at ``address``
    (an :class:`~labkit.course.grading.executors.Executor`)."""

    local = False

    def __init__(self, address: str, client_options: dict | None = None):
        self.address, self.client_options = address, client_options or {}

    def grade(self, subs: list[Submission], run: Run, log=print, done=None) -> dict[int, StudentResult]:
        """{index: result}, each student's course unpacked under ``run.dir/courses``; ``done(index, result)``
        as each arrives. GradingError, before anything more is written, when the scheduler goes away."""
        client = self._connect()
        tasks = _Tasks(client, self.address, subs, run, log)
        tasks.done = done
        try:
            tasks.submit_and_collect()
        finally:
            tasks.progress.close()
            try:
                client.close(timeout=5)
            except Exception:  # the scheduler may be gone already
                pass
        missing = [subs[i].student for i in range(len(subs)) if i not in tasks.results]
        if missing:  # as_completed ended without them: only when the scheduler went away
            raise GradingError(f"the Dask scheduler at {self.address} stopped answering; {len(missing)} students "
                               f"ungraded ({', '.join(missing[:5])}...); nothing was written")
        return tasks.results

    def _connect(self):
        try:
            from distributed import Client
        except ImportError as e:
            raise OptionError("--scheduler needs Dask: pip install 'labkit[cluster]' (dask and distributed)") from e
        try:
            return Client(self.address, timeout=CONNECT_TIMEOUT, set_as_default=False, **self.client_options)
        except (OSError, TimeoutError) as e:
            raise OptionError(f"--scheduler {self.address}: cannot reach a Dask scheduler there ({e})") from e


class _Tasks:
    """One class's tasks on a cluster: a window of submissions read and in flight, each result kept once."""

    def __init__(self, client, address: str, subs: list[Submission], run: Run, log):
        self.client, self.address, self.subs, self.run, self.log = client, address, subs, run, log
        self.results: dict[int, StudentResult] = {}
        self.progress = Progress(len(subs), where=f"Dask {address}")
        self.owner: dict[str, int] = {}
        self.todo = iter(enumerate(subs))
        self.batch = uuid.uuid4().hex[:8]
        self.done = None  # called with each result as it is kept (executors.Done)

    def submit_and_collect(self) -> None:
        from distributed import as_completed

        self.shared = self._share()
        self.futures = as_completed(loop=self.client.loop, with_results=False)
        threads = sum(w.get("nthreads", 1) for w in self.client.scheduler_info()["workers"].values())
        for _ in range(max(2, WINDOW_PER_THREAD * threads)):
            if not self._submit_next():
                break
        for f in self.futures:
            self._collect(f)

    def _share(self):
        """The template course and the options, scattered once to every worker."""
        info = self.client.scheduler_info()
        board = f"dashboard {self.client.dashboard_link}" if "dashboard" in info.get("services", {}) else "no dashboard"
        self.log(f"labkit autograde: Dask cluster {self.address}: {len(info['workers'])} workers now; {board}")
        template_tar = pack(self.run.template.course)
        key = hashlib.sha256(template_tar + repr(self.run.options).encode()).hexdigest()[:16]
        host_slots: dict[str, int] = {}  # the kernels of workers that share a host share its processors
        for w in info["workers"].values():
            host_slots[w["host"]] = host_slots.get(w["host"], 0) + w.get("nthreads", 1)
        return self.client.scatter((key, template_tar, self.run.template, self.run.options, host_slots),
                                   broadcast=True, hash=False)

    def _submit_next(self) -> bool:
        for i, sub in self.todo:
            read_submission(sub)  # the bytes go with the task; the worker never sees SUBMISSIONS
            f = self.client.submit(grade_task, i, dataclasses.replace(sub), self.shared,
                                   key=f"labkit-grade-{self.batch}-{i}", pure=False, retries=1)
            sub.files = {}  # the task holds them until they are on their way
            self.owner[f.key] = i
            self.futures.add(f)
            self.progress.start()
            return True
        return False

    def _collect(self, f) -> None:
        i = self.owner[f.key]
        if i in self.results:  # never merged twice
            return
        try:
            packed = f.result()
        except Exception as e:
            lost = type(e).__name__ in ("CancelledError", "FutureCancelledError", "CommClosedError")
            if lost or self.client.status not in ("running", "connecting"):
                raise _gone(self.address, e) from e
            packed = Packed(_failed(self.subs[i], self.run.template, e), None)
        folder = None
        if packed.course is not None:
            folder = self.run.dir / "courses" / str(i)
            unpack(packed.course, folder)
        self.results[i] = StudentResult(packed.result.rows, folder, packed.result.log)
        if self.done is not None:
            self.done(i, self.results[i])
        f.release()
        self.progress.finish()
        self.progress.write(f"  {self.subs[i].student}: {packed.result.outcome()}", self.log)
        self._submit_next()
