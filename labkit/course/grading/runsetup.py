"""The set-up a grading run needs before any student is graded, on the instructor's machine or on a worker.

Owns: :func:`prepare_run` (the run folder's scratch/ipc/courses/jupyter
folders, the environment and readable folders the kernels get, the uid range
as root, and a probe that a kernel starts in the sandbox) and
:func:`warm_mnist` (MNIST decoded once into a cache the kernels read).
``labkit autograde`` calls both locally; :mod:`labkit.course.grading.cluster` calls the
same two on each Dask worker, so a student is graded the same way everywhere.
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

from labkit.course.grading.records import Options, Run
from labkit.course.paths import project_root
from labkit.course.sandbox import prepare as sandbox
from labkit.course.sandbox import uids
from labkit.errors import GradingError

RUN_FOLDERS = ("scratch", "ipc", "courses", "jupyter-config", "jupyter-data")


def hidden_paths(*paths) -> list[str]:
    """Folders the bwrap sandbox hides from kernels: ``paths``, the checkout and the home folder."""
    out = [str(Path(p).resolve()) for p in paths if p]
    root = project_root()
    if root is not None:
        out.append(str(root))
    home = Path.home()
    if str(home) != "/":
        out.append(str(home))
    return out


def _mnist_folders() -> list[str]:
    out = []
    if os.environ.get("LABKIT_DATA"):
        out.append(str(Path(os.environ["LABKIT_DATA"]).resolve()))
    root = project_root()
    if root is not None and (root / "data").is_dir():
        out.append(str(root / "data"))
    return out


def usable_cpus() -> int:
    """The processors this process may run on (a Slurm job's share, not the whole node's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def prepare_run(run_dir: Path, options: Options, mode: str, hidden: list[str], log=print,
                probe: bool = True, host_slots: int | None = None) -> tuple[Run, dict]:
    """A :class:`Run` in the empty folder ``run_dir`` (template still None) and its sandbox config,
    after checking that a kernel starts in the sandbox (GradingError saying why not; ``probe=False``:
    no kernel runs here, as on the instructor's machine when a cluster grades). ``host_slots``: the
    students graded at once on this machine by every process grading here (Dask workers sharing
    a host), ``options.jobs`` by default; each kernel gets an equal share of the processors.

    ``LABKIT_DATA`` is this machine's own (on a worker: the worker's environment)."""
    if len(str(run_dir)) > 60:  # the kernels' socket paths must stay under 107 bytes
        raise GradingError(f"temporary folder {run_dir} too long for Unix sockets: set TMPDIR=/tmp")
    for name in RUN_FOLDERS:
        (run_dir / name).mkdir()
    env, readable = {}, sandbox.python_dirs() + _mnist_folders()
    if os.environ.get("LABKIT_DATA"):
        env["LABKIT_DATA"] = str(Path(os.environ["LABKIT_DATA"]).resolve())
    # as root, in both modes, each kernel takes its own unprivileged uid from a reserved range;
    # else kernels run as us
    user = uids.reserved_range()
    threads = max(1, usable_cpus() // (host_slots or options.jobs))
    if mode == "basic" and user is None and options.jobs > 1:  # kernels of one uid reach each other
        log(f"labkit autograde: --jobs {options.jobs} ignored: the basic sandbox, not as root, runs every "
            "kernel as you, so students are graded one at a time")
        options = dataclasses.replace(options, jobs=1)
    run = Run(dir=run_dir, template=None, options=options, mode=mode, user=user, readable=readable,
              hidden=hidden, env=env, threads=threads)
    # then make sure a kernel can start in the sandbox, as whom it will
    config = sandbox.make_config(mode=mode, scratch=run_dir / "scratch", ipc_dir=run_dir / "ipc",
                                 record=run_dir / "check.jsonl", memory_mb=options.memory_mb,
                                 cpu_seconds=options.cpu_seconds, wall_seconds=options.wall_seconds,
                                 threads=1, env=env, readable=readable, hidden=run.hidden, user=run.user)
    problem = sandbox.check(config) if probe else None
    if problem and run.user and mode == "basic":
        raise GradingError(
            f"a kernel cannot start in the basic sandbox as an unprivileged uid, which is how labkit runs "
            f"students' code as root ({problem.splitlines()[-1][:200]}): where no mount namespace can be made, "
            f"the Python environment ({sys.prefix}, {os.path.realpath(sys.executable)}) must be readable by "
            "every user (not under /root), or install bubblewrap (docs/instructors.md, 'What is isolated')")
    if problem:
        raise GradingError(f"a kernel cannot start in the grading sandbox ({mode}): {problem}")
    return run, config


def start_mnist(run: Run, solutions_text: list[str]) -> subprocess.Popen | None:
    """Start loading MNIST into ``run.dir/cache`` when a notebook calls ``load_mnist`` (else None)."""
    if not any("load_mnist" in text for text in solutions_text):
        return None
    cache = run.dir / "cache"
    cache.mkdir()
    code = "from labkit.data import load_mnist\nfor s in ('train', 'test'):\n    load_mnist(s)\n"
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=run.dir, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def warm_mnist(run: Run, prewarm: subprocess.Popen | None, log=print) -> Run:
    """Wait for :func:`start_mnist`; on success, ``run`` with the kernels reading the cache (read-only)."""
    if prewarm is None:
        return run
    output, _ = prewarm.communicate()
    if prewarm.returncode != 0:
        log("labkit autograde: warning: MNIST could not be loaded; notebooks that need it will fail:\n  "
            + (output.strip().splitlines() or ["?"])[-1])
        return run
    cache = run.dir / "cache"
    for dirpath, _, filenames in os.walk(cache):
        os.chmod(dirpath, 0o755)
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), 0o644)
    return dataclasses.replace(run, env={**run.env, "XDG_CACHE_HOME": str(cache)},
                               readable=[*run.readable, str(cache)])
