"""Grading on a Dask cluster: ``labkit autograde SUBMISSIONS --scheduler ADDRESS``.

Owns: :class:`Dask` (the client side, an
:class:`~labkit.course.grading.executors.Executor`: each student one Dask task,
at most a window of them read and in flight at once, results kept once per
student) and :func:`grade_task` (the worker side). A task carries everything
the worker needs: the submission's bytes (read on the instructor's machine),
the template course (a tar, scattered once to every worker) and the
:class:`~labkit.course.grading.records.Options`; it returns data only
(:mod:`labkit.course.grading.wire`): the student's result as JSON text and their course
folder (gradebook and autograded notebooks) as the bytes of a tar, both checked here before
use. A worker never sees the instructor's checkout or the submissions folder. It
needs the same Python environment (labkit with its ``grading`` extra, torch)
and, for the real lab, MNIST in its own ``LABKIT_DATA``.

Security (issue #31): the scheduler must be ``tls://`` and ``--tls DIR`` holds the run's
certificates (:mod:`labkit.course.grading.certs`): the client connects with them and the
scheduler and workers, started with theirs, accept no one else. The client takes no pickle
from the cluster (``deserializers=["msgpack"]``, :func:`~labkit.course.grading.wire.refusing_pickles`,
no "warn" events), talks to the scheduler only, and before grading asks every worker how
its kernels are confined (:func:`worker_report`): a worker whose kernels would keep the
network (the basic sandbox without a network namespace) refuses to grade, and the run stops.

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
import json
import os
import shutil
import tempfile
import threading
import uuid
from pathlib import Path
from urllib.parse import urlparse

from labkit.course.grading import certs, wire
from labkit.course.grading.assignment import Template
from labkit.course.grading.progress import Progress
from labkit.course.grading.records import Options, Row, Run, StudentResult
from labkit.course.grading.runsetup import hidden_paths, prepare_run, start_mnist, warm_mnist
from labkit.course.grading.student import grade_student
from labkit.course.grading.wire import BadResult, pack, unpack
from labkit.course.intake.repair import short
from labkit.course.intake.submissions import Submission, read_submission
from labkit.course.sandbox import prepare as sandbox
from labkit.errors import GradingError, OptionError

WINDOW_PER_THREAD = 2  # submissions read and in flight per worker thread (the bytes wait on the workers)
CONNECT_TIMEOUT = "30s"


# --------------------------------------------------------------------------- worker side

_RUNS: dict[str, tuple[Run, threading.Semaphore, str]] = {}
_RUNS_LOCK = threading.Lock()


def _cleanup(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def _cert_folders(worker) -> list[str]:
    """The folders of the worker's own TLS files (hidden from kernels in bwrap; 0700 as root)."""
    sec = getattr(worker, "security", None)
    files = [getattr(sec, name, None) for name in ("tls_ca_file", "tls_worker_cert", "tls_worker_key")]
    return sorted({str(Path(f).resolve().parent) for f in files if isinstance(f, str) and f})


def _refusal(mode: str, config: dict, address: str) -> str | None:
    """Why this worker must not grade (its kernels would reach the network: the scheduler, the
    other workers), or None."""
    if sandbox.network_cut(config):
        return None
    return (f"worker {address} refuses to grade: its kernels would reach the network ({mode} sandbox, no network "
            "namespace), and so the scheduler and the other workers; install bubblewrap on the workers "
            "(or run them as root where network namespaces can be made): docs/instructors.md, 'On a cluster'")


def worker_report(options_json: str, dask_worker=None) -> dict:
    """On every worker, before grading (``Client.run`` passes ``dask_worker``): how its kernels are
    confined, as data: ``{"mode", "network_cut", "refusal"}``."""
    from labkit.course.sandbox import uids

    try:
        mode, _ = sandbox.choose_mode(json.loads(options_json)["sandbox"])
        with tempfile.TemporaryDirectory(prefix="lkp") as tmp:
            for name in ("scratch", "ipc"):
                os.mkdir(Path(tmp) / name)
            config = sandbox.make_config(mode=mode, scratch=Path(tmp) / "scratch", ipc_dir=Path(tmp) / "ipc",
                                         record=Path(tmp) / "probe.jsonl", memory_mb=1024, cpu_seconds=60,
                                         wall_seconds=120, threads=1, env={}, readable=sandbox.python_dirs(),
                                         hidden=_cert_folders(dask_worker), user=uids.reserved_range())
            refusal = _refusal(mode, config, dask_worker.address)
    except Exception as e:  # said as data: an exception would travel as a pickle
        mode, refusal = "?", f"worker {dask_worker.address} cannot set up its sandbox: {type(e).__name__}: {e}"
    return {"mode": mode, "network_cut": refusal is None, "refusal": refusal}


def _worker_run(key: str, template_tar: bytes, template: Template, options: Options,
                host_slots: dict[str, int]) -> tuple[Run, threading.Semaphore, str]:
    """This worker's run for one class (set up on its first student): as ``labkit autograde`` does locally.
    ``host_slots``: host -> the threads of all the workers there when the run began; the kernels of a
    host share its processors (a worker that joined later counts its own threads only). GradingError
    when its kernels would keep the network (:func:`_refusal`)."""
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
        hidden = hidden_paths(run_dir, worker.local_directory, *_cert_folders(worker))
        host = urlparse(worker.address).hostname
        slots = max(options.jobs, host_slots.get(host, 0))
        run, config = prepare_run(run_dir, options, mode, hidden, notes.append, host_slots=slots)
        refusal = _refusal(mode, config, worker.address)
        if refusal:
            raise GradingError(refusal)
        unpack(template_tar, run_dir / "template")
        run = dataclasses.replace(run, template=dataclasses.replace(template, course=run_dir / "template"))
        run = warm_mnist(run, start_mnist(run, [json.dumps(nb) for nb in template.source.values()]), notes.append)
        notes.append(f"worker {worker.address}: isolation: {sandbox.describe(config, why_not)}; network cut")
        _RUNS[key] = (run, threading.Semaphore(run.options.jobs), "\n".join(notes))
        return _RUNS[key]


def grade_task(index: int, sub: Submission, shared: tuple[str, bytes, Template, Options, dict[str, int]]) \
        -> tuple[str, bytes | None]:
    """On a worker: grade one student. Returns data only: the result as JSON text
    (:func:`~labkit.course.grading.wire.encode_result`) and the student's course as a tar (None when
    nothing was graded); an error becomes the student's rows, never a raised (pickled) exception."""
    key, template_tar, template, options, host_slots = shared
    try:
        run, slots, notes = _worker_run(key, template_tar, template, options, host_slots)
    except Exception as e:
        return wire.encode_result(_failed(sub, template, e)), None
    course, ipc = run.dir / "courses" / str(index), run.dir / "ipc" / str(index)
    with slots:  # the basic sandbox not as root: one student at a time, whatever the worker's threads
        for folder in (course, ipc):  # a retried task on this worker starts afresh
            shutil.rmtree(folder, ignore_errors=True)
        try:
            result = grade_student(sub, index, run)
            return (wire.encode_result(StudentResult(result.rows, None, f"{notes}\n{result.log}".strip())),
                    pack(result.course) if result.course is not None else None)
        except Exception as e:
            return wire.encode_result(_failed(sub, template, e)), None
        finally:
            for folder in (course, ipc):
                shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------- client side


def _failed(sub: Submission, template: Template, error: BaseException) -> StudentResult:
    name = type(error).__name__
    if name == "KilledWorker" or "KilledWorker" in short(repr(error), 4000):  # the scheduler's, as refused bytes
        reason = "error: every Dask worker that took this student died (graded nowhere: grade it again)"
    elif isinstance(error, BadResult):
        reason = f"error: the worker's result was refused: {short(str(error), 100)}"
    elif isinstance(error, GradingError):
        reason = f"error: {short(str(error), 300)}"
    else:
        reason = f"error: grading on the cluster failed: {name}: {short(str(error), 100)}"
    return StudentResult([Row(sub.student, nb, reason) for nb in template.notebooks], None,
                         f"labkit: {reason}\n{short(repr(error), 2000)}")


def _gone(address: str, error: BaseException) -> GradingError:
    return GradingError(f"the Dask scheduler at {address} went away while grading ({type(error).__name__}: "
                        f"{short(str(error), 200)}); nothing was written: start the scheduler again and rerun")


def check_scheduler(address: str, tls: str | os.PathLike | None) -> None:
    """OptionError unless ``address`` is a ``tls://`` scheduler and ``tls`` a folder of the run's
    certificates (a plain ``tcp://`` cluster accepts any client, a student's kernel included)."""
    scheme = urlparse(address).scheme if "://" in address else "tcp"
    if scheme != "tls":
        raise OptionError(f"--scheduler {address}: labkit grades only on a TLS cluster (tls://HOST:PORT, started "
                          "with the certificates of `labkit cluster-certs DIR`) and --tls DIR; a plain "
                          f"{scheme}:// scheduler accepts any client, students' code included")
    if tls is None:
        raise OptionError(f"--scheduler {address} needs --tls DIR, the folder of the run's certificates "
                          "(`labkit cluster-certs DIR`)")
    certs.paths(tls, "client")


class Dask:
    """Every student graded as a task on the Dask cluster whose scheduler is at ``address``
    (an :class:`~labkit.course.grading.executors.Executor`), connecting with the client certificate
    in ``tls`` (:func:`check_scheduler`; ``require_tls=False`` only for benchmarks/grading.py's
    baseline, a plain cluster)."""

    local = False

    def __init__(self, address: str, tls: str | os.PathLike | None = None, *, require_tls: bool = True):
        if require_tls:
            check_scheduler(address, tls)
        self.address, self.tls = address, tls

    def grade(self, subs: list[Submission], run: Run, log=print, done=None) -> dict[int, StudentResult]:
        """{index: result}, each student's course unpacked under ``run.dir/courses``; ``done(index, result)``
        as each arrives. GradingError, before anything more is written, when the scheduler goes away or a
        worker refuses to grade."""
        with wire.refusing_pickles():
            client = self._connect()
            tasks = _Tasks(client, self.address, subs, run, log)
            tasks.done = done
            try:
                ask_workers(client, run.options)
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
        security = certs.security(self.tls) if self.tls is not None else None
        try:  # values come back as msgpack only; the client never connects to a worker itself
            client = Client(self.address, timeout=CONNECT_TIMEOUT, set_as_default=False, security=security,
                            deserializers=["msgpack"], direct_to_workers=False)
        except (OSError, TimeoutError) as e:
            raise OptionError(f"--scheduler {self.address}: cannot reach a Dask scheduler there with the "
                              f"certificates of --tls {self.tls} ({short(str(e), 200)})") from e
        client.unsubscribe_topic("warn")  # Dask's handler unpickles what a worker warns
        return client


def ask_workers(client, options: Options) -> dict[str, dict]:
    """Every worker's :func:`worker_report`, checked: GradingError, before any student is sent, when
    one refuses to grade or answers with anything but the report."""
    try:
        reports = client.run(worker_report, json.dumps(dataclasses.asdict(options)))
    except Exception as e:  # a pickle refused, a worker gone
        raise GradingError(f"the Dask workers could not say how they confine kernels ({type(e).__name__}: "
                           f"{short(str(e), 200)}); nothing was graded") from None
    for address, report in reports.items():
        if not (isinstance(report, dict) and isinstance(report.get("network_cut"), bool)):
            raise GradingError(f"worker {address} answered {short(repr(report), 100)} instead of its sandbox "
                               "report; nothing was graded")
        if not report["network_cut"]:
            raise GradingError(f"{report.get('refusal') or f'worker {address} refuses to grade'}; nothing was graded")
    return reports


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
        sub = self.subs[i]
        folder = self.run.dir / "courses" / str(i)
        try:
            if f.status == "error":  # what the task raised is not read: it would come as a pickle
                raise GradingError("the task failed on its worker (labkit reads no error a worker sends: "
                                   "see the worker's log)")
            result, course = wire.decode_task(f.result(), sub.student)
            if course is not None:
                unpack(course, folder)
            result = StudentResult(result.rows, folder if course is not None else None, result.log)
        except Exception as e:
            lost = type(e).__name__ in ("CancelledError", "FutureCancelledError", "CommClosedError")
            if lost or self.client.status not in ("running", "connecting"):
                raise _gone(self.address, e) from e
            shutil.rmtree(folder, ignore_errors=True)
            result = _failed(sub, self.run.template, e)
        self.results[i] = result
        if self.done is not None:
            self.done(i, result)
        f.release()
        self.progress.finish()
        self.progress.write(f"  {sub.student}: {result.outcome()}", self.log)
        self._submit_next()
