"""Grading on a Dask cluster: ``labkit autograde SUBMISSIONS --scheduler ADDRESS``.

Owns: :func:`grade_on_cluster` (the client side: each student one Dask task,
at most a window of them read and in flight at once, results kept once per
student) and :func:`grade_task` (the worker side). A task carries everything
the worker needs: the submission's bytes (read on the instructor's machine),
the template course (a tar, scattered once to every worker) and the
:class:`~labkit.course.grading.records.Options`; it returns the rows, the student's
course folder (gradebook and autograded notebooks, as a tar) and the log. A
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
from pathlib import Path
from urllib.parse import urlparse

from labkit.course.grading.assignment import Template
from labkit.course.grading.progress import Progress
from labkit.course.grading.records import Options, Row, Run
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
        run.template = dataclasses.replace(template, course=run_dir / "template")
        warm_mnist(run, start_mnist(run, [json.dumps(nb) for nb in template.source.values()]), notes.append)
        notes.append(f"worker {worker.address}: isolation: {sandbox.describe(config, why_not)}")
        _RUNS[key] = (run, threading.Semaphore(run.options.jobs), "\n".join(notes))
        return _RUNS[key]


def grade_task(index: int, sub: Submission, shared: tuple[str, bytes, Template, Options, dict[str, int]]):
    """On a worker: grade one student. Returns (rows, the student's course as a tar or None, log)."""
    key, template_tar, template, options, host_slots = shared
    run, slots, notes = _worker_run(key, template_tar, template, options, host_slots)
    course, ipc = run.dir / "courses" / str(index), run.dir / "ipc" / str(index)
    with slots:  # the basic sandbox not as root: one student at a time, whatever the worker's threads
        for folder in (course, ipc):  # a retried task on this worker starts afresh
            shutil.rmtree(folder, ignore_errors=True)
        try:
            rows, graded, log = grade_student(sub, index, run)
            return rows, (pack(graded) if graded is not None else None), f"{notes}\n{log}".strip()
        finally:
            for folder in (course, ipc):
                shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------- client side


def _failed(sub: Submission, template: Template, error: BaseException) -> tuple[list[Row], None, str]:
    name = type(error).__name__
    if name == "KilledWorker":
        reason = "error: every Dask worker that took this student died (graded nowhere: grade it again)"
    else:
        reason = f"error: grading on the cluster failed: {name}: {short(str(error), 100)}"
    return [Row(sub.student, nb, reason) for nb in template.notebooks], None, f"labkit: {reason}\n{error!r}"


def _gone(address: str, error: BaseException) -> GradingError:
    return GradingError(f"the Dask scheduler at {address} went away while grading ({type(error).__name__}: "
                      f"{short(str(error), 200)}); nothing was written: start the scheduler again and rerun")


def grade_on_cluster(address: str, subs: list[Submission], run: Run, log=print, client_options: dict | None = None):
    """Grade ``subs`` on the Dask cluster whose scheduler is at ``address``; returns
    {index: (rows, the student's course folder under ``run.dir/courses`` or None, log)}."""
    try:
        from distributed import Client, as_completed
    except ImportError as e:
        raise OptionError("--scheduler needs Dask: pip install 'labkit[cluster]' (dask and distributed)") from e
    template = run.template
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False, **(client_options or {}))
    except (OSError, TimeoutError) as e:
        raise OptionError(f"--scheduler {address}: cannot reach a Dask scheduler there ({e})") from e
    results: dict[int, tuple[list[Row], Path | None, str]] = {}
    progress = Progress(len(subs), where=f"Dask {address}")
    try:
        info = client.scheduler_info()
        board = f"dashboard {client.dashboard_link}" if "dashboard" in info.get("services", {}) else "no dashboard"
        log(f"labkit autograde: Dask cluster {address}: {len(info['workers'])} workers now; {board}")
        template_tar = pack(template.course)
        key = hashlib.sha256(template_tar + repr(run.options).encode()).hexdigest()[:16]
        host_slots: dict[str, int] = {}  # the kernels of workers that share a host share its processors
        for w in info["workers"].values():
            host_slots[w["host"]] = host_slots.get(w["host"], 0) + w.get("nthreads", 1)
        shared = client.scatter((key, template_tar, template, run.options, host_slots), broadcast=True, hash=False)
        batch = uuid.uuid4().hex[:8]
        todo = iter(enumerate(subs))
        futures = as_completed(loop=client.loop, with_results=False)
        owner: dict[str, int] = {}

        def submit_next() -> bool:
            for i, sub in todo:
                read_submission(sub)  # the bytes go with the task; the worker never sees SUBMISSIONS
                f = client.submit(grade_task, i, dataclasses.replace(sub), shared, key=f"labkit-grade-{batch}-{i}",
                                  pure=False, retries=1)
                sub.files = {}  # the task holds them until they are on their way
                owner[f.key] = i
                futures.add(f)
                progress.start()
                return True
            return False

        threads = sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())
        window = max(2, WINDOW_PER_THREAD * threads)
        for _ in range(window):
            if not submit_next():
                break
        for f in futures:
            i = owner[f.key]
            if i in results:  # never merged twice
                continue
            try:
                rows, tar, text = f.result()
            except Exception as e:
                lost = type(e).__name__ in ("CancelledError", "FutureCancelledError", "CommClosedError")
                if lost or client.status not in ("running", "connecting"):
                    raise _gone(address, e) from e
                rows, tar, text = _failed(subs[i], template, e)
            folder = None
            if tar is not None:
                folder = run.dir / "courses" / str(i)
                unpack(tar, folder)
            results[i] = (rows, folder, text)
            f.release()
            progress.finish()
            outcome = ", ".join(f"{r.notebook}: {r.status.split(';')[0]}" for r in rows)
            progress.write(f"  {subs[i].student}: {outcome}", log)
            submit_next()
    finally:
        progress.close()
        try:
            client.close(timeout=5)
        except Exception:  # the scheduler may be gone already
            pass
    missing = [subs[i].student for i in range(len(subs)) if i not in results]
    if missing:  # as_completed ended without them: only when the scheduler went away
        raise GradingError(f"the Dask scheduler at {address} stopped answering; {len(missing)} students "
                         f"ungraded ({', '.join(missing[:5])}...); nothing was written")
    return results
