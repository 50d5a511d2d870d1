"""Confine the Jupyter kernel that runs a student's notebook while labkit autogrades.

Owns: the wrapper that starts, limits and ends each kernel (:func:`launch`), and
how a process is started in the sandbox (:func:`start_confined`, which the grading side's
probe, :func:`labkit.course.sandbox.prepare.check`, uses too). The mode, the
per-student configuration and the kernelspec are :mod:`labkit.course.sandbox.prepare`'s.

Each student's throwaway grading course gets its own kernelspec,
``labkit-sandbox`` (nbgrader selects it with ``c.Execute.kernel_name``), whose
command is this module::

    python -m labkit.course.sandbox.wrapper kernel SANDBOX.json -f CONNECTION_FILE [kernel arguments]

This wrapper runs *outside* the sandbox, as the instructor. It

1. makes a fresh folder ``<scratch>/k-XXXX/`` for the kernel: ``work/`` is
   its working folder and home, the only place it may write (with its socket
   folder, below);
2. starts ``python -m labkit.course.sandbox.kernel`` (IPython's kernel, :mod:`labkit.course.sandbox.kernel`)
   in a clean environment
   (``LABKIT_GRADING=1``, ``MPLBACKEND=Agg``, one BLAS thread, no CUDA, none of
   the instructor's variables) under resource limits: ``RLIMIT_AS`` (address
   space: memory), ``RLIMIT_CPU`` (processor seconds, SIGXCPU then SIGKILL),
   ``RLIMIT_FSIZE`` (largest file), no core files;
3. kills the kernel after a wall-clock limit, waits for it, appends one
   JSON line on how it ended to the student's kernel record (labkit reads it
   to say *why* a notebook could not be graded), removes the folder and
   exits with the kernel's status.

The kernel talks to nbgrader over Unix sockets (ZMQ's ``ipc`` transport) in
a per-student folder, never over the network. Two modes (:func:`choose_mode`):

``bwrap``  the kernel runs in a bubblewrap sandbox (``bwrap``: user, PID, IPC,
           UTS and network namespaces; shown as user ``nobody``, with no
           capabilities, unable to create namespaces of its own). Its file
           system holds only the system folders (``/usr``, ``/etc``, ...), the
           Python environment, the ``labkit`` package and the MNIST folders,
           all read-only, a small private ``/tmp``, and its own folders,
           writable (every bind ``nosuid``, ``nodev``). The solutions, the
           checkout around ``labkit/``, the gradebooks, the course folders,
           the submissions, the other students and the output folder do not
           exist in there. No network.
``basic``  where bubblewrap is missing or cannot create namespaces: the limits
           and the throwaway folder (as root, a ``/proc`` that shows the kernel its own
           uid's processes only, where a mount namespace can be made: :mod:`.mounts`, and an
           empty network namespace, where one can be made: no network). It can read whatever its
           user can read on this machine and, not as root, reach the network.

As root, in both modes, each kernel runs as a fresh unprivileged uid of its
own (:mod:`labkit.course.sandbox.uids`), never as uid 0 on the host: bubblewrap is
started *as* that uid (unprivileged user namespaces), and the folders it
binds are handed to it as open file descriptors, so a Python environment in
a folder only root can enter (``/root``) still works. When the kernel ends,
every process of its uid is killed and its files in ``/tmp``, ``/var/tmp``
and ``/dev/shm`` removed, by the wrapper or, when jupyter_client SIGKILLs the
wrapper's process group first (a kernel that ignores the shutdown request and
SIGTERM), by its guardian (:class:`labkit.course.sandbox.reaping.Guardian`). Not as root, the kernel runs as the instructor;
the wrapper is a subreaper and kills every process the kernel left.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from labkit.course.sandbox import mounts, reaping, uids
from labkit.course.sandbox.bwrap import bwrap_argv

MAX_PROCESSES = 256  # RLIMIT_NPROC of a kernel's own uid (as root): processes and threads together
_CLONE_NEWNET = 0x40000000


def hand_over(path: str | os.PathLike, uid: int | None, mode: int = 0o700) -> None:
    """Make ``path`` belong to the kernel's own ``uid`` (as root), else leave it ours; private."""
    if uid is not None:
        os.chown(path, uid, uid)
    os.chmod(path, mode)


# --------------------------------------------------------------------------- the wrapper (kernel side)


def _kernel_env(config: dict, work: Path) -> dict[str, str]:
    env = {
        "PATH": os.pathsep.join([os.path.dirname(os.path.abspath(sys.executable)), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(work),
        "TMPDIR": "/tmp" if config["mode"] == "bwrap" else str(work / ".tmp"),
        "LANG": "C.UTF-8",
        "LABKIT_GRADING": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(work / ".matplotlib"),
        "IPYTHONDIR": str(work / ".ipython"),
        "CUDA_VISIBLE_DEVICES": "",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "MALLOC_ARENA_MAX": "2",
    }
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(config["threads"])
    env.update(config["env"])
    return env


def _limits(config: dict, uid: int | None, view: mounts.View | None):
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def preexec():  # in the child, before exec: drop privileges, then set limits
        if uid is not None:
            view.apply(libc)  # still root: the folders the kernel's uid must reach
            if config["mode"] == "basic":  # a network namespace of its own: no network (where allowed)
                libc.unshare(_CLONE_NEWNET)
            uids.drop_to(uid, uid)
            resource.setrlimit(resource.RLIMIT_NPROC, (MAX_PROCESSES,) * 2)  # counts this uid only
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: dies with the wrapper (after setuid)
        cpu = config["cpu_seconds"]
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))  # SIGXCPU, then SIGKILL 5 s later
        resource.setrlimit(resource.RLIMIT_AS, (config["memory_bytes"],) * 2)
        resource.setrlimit(resource.RLIMIT_FSIZE, (config["file_bytes"],) * 2)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return preexec


def kernel_folder(config: dict, uid: int | None) -> tuple[Path, Path]:
    kdir = Path(tempfile.mkdtemp(prefix="k-", dir=config["scratch"]))
    work = kdir / "work"
    (work / ".tmp").mkdir(parents=True)
    for path in (work, work / ".tmp"):
        hand_over(path, uid)
    if uid is not None:  # ours, entered through the kernel's own group: it cannot open it to others
        os.chown(kdir, -1, uid)
        os.chmod(kdir, 0o710)
    return kdir, work


def kernel_user(config: dict):
    """The context that holds the kernel's own uid (as root), or yields None."""
    import contextlib

    return uids.KernelUser(config["user"]) if config.get("user") else contextlib.nullcontext(None)


def start_confined(config: dict, uid: int | None, kdir: Path, work: Path, cmd: list[str], writable: list[Path],
                   run, **kw):
    """``run(argv, ...)`` (Popen or subprocess.run) for ``cmd`` in the sandbox, as ``uid``."""
    env = _kernel_env(config, work)
    view = mounts.View([*config["readable"], kdir, *writable], hide_processes=config["mode"] == "basic") \
        if uid is not None else None
    if config["mode"] == "bwrap":
        cmd = bwrap_argv(config, [kdir, *writable], work, cmd, env)
    return run(cmd, env=env, cwd="/" if config["mode"] == "bwrap" else work, preexec_fn=_limits(config, uid, view),
               **kw)


def describe_exit(returncode: int, cpu_seconds: float, config: dict, wall_killed: bool) -> str:
    """Why a kernel ended, in words, from its exit status (bwrap reports 128 + signal)."""
    if wall_killed:
        return f"wall-clock limit ({config['wall_seconds']} s per notebook)"
    signum = -returncode if returncode < 0 else (returncode - 128 if returncode > 128 else 0)
    if signum == signal.SIGXCPU or (signum == signal.SIGKILL and cpu_seconds >= config["cpu_seconds"] - 1):
        return f"CPU time limit ({config['cpu_seconds']} s per notebook)"
    if signum:
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        if signum in (signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS):
            return f"crashed ({name})"
        return f"killed by {name}"
    return f"exit status {returncode}"


def launch(config_path: str, connection_file: str, extra: list[str]) -> int:
    """Run one kernel as described in the module docstring; returns its exit status."""
    config = json.loads(Path(config_path).read_text())
    info = json.loads(Path(connection_file).read_text())
    if info.get("transport") != "ipc" or Path(info["ip"]).parent != Path(config["ipc_dir"]):
        print(f"labkit.course.sandbox: the kernel must use ipc sockets in {config['ipc_dir']}", file=sys.stderr)
        return 2
    # Interrupts reach the kernel as messages; the wrapper ignores SIGINT and passes SIGTERM on.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    reaping.become_subreaper()
    user = kernel_user(config)
    with user as uid:
        kdir, work = kernel_folder(config, uid)
        # if this wrapper is SIGKILLed (with its process group), the guardian ends the uid instead
        guardian = reaping.Guardian(lambda: (user.__exit__(None, None, None), shutil.rmtree(kdir, ignore_errors=True)))
        try:
            conn = kdir / "connection.json"
            conn.write_text(json.dumps(info))
            hand_over(conn, uid, 0o400)
            hand_over(config["ipc_dir"], uid)  # this kernel's sockets go there; the last kernel's uid is gone
            line = _run_kernel(config, uid, kdir, work,
                               [sys.executable, "-m", "labkit.course.sandbox.kernel", "-f", str(conn), *extra])
        finally:
            reaping.end_descendants(spare=(guardian.pid,))  # what the kernel left (as root, uids.KernelUser ends its whole uid too)
            shutil.rmtree(kdir, ignore_errors=True)
    guardian.done()
    with open(config["record"], "a") as f:
        f.write(json.dumps(line) + "\n")
    returncode = line["returncode"]
    return returncode if returncode >= 0 else 128 - returncode


def _run_kernel(config: dict, uid: int | None, kdir: Path, work: Path, cmd: list[str]) -> dict:
    """Start the kernel, wait for it (wall-clock limit) and say how it ended: the record's line.
    ``stopped``: the kernel was ended by nbgrader (SIGTERM to this wrapper), not by itself."""
    start, started_at = time.monotonic(), time.time()
    proc = start_confined(config, uid, kdir, work, cmd, [Path(config["ipc_dir"])], subprocess.Popen)
    stopped = []
    signal.signal(signal.SIGTERM, lambda *_: (stopped.append(True), proc.terminate()))
    wall_killed = False
    try:
        returncode = proc.wait(timeout=config["wall_seconds"])
    except subprocess.TimeoutExpired:
        wall_killed = True
        proc.kill()
        returncode = proc.wait()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime
    line = {"returncode": returncode, "seconds": round(time.monotonic() - start, 1), "cpu_seconds": round(cpu, 1),
            "ended": describe_exit(returncode, cpu, config, wall_killed),
            "started_at": round(started_at, 3), "ended_at": round(time.time(), 3)}  # Unix time (benchmarks)
    if stopped and not wall_killed:
        line.update(stopped=True, ended="stopped by nbgrader (SIGTERM)")
    return line


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) >= 4 and argv[0] == "kernel" and argv[2] == "-f":
        return launch(argv[1], argv[3], argv[4:])
    print("usage: python -m labkit.course.sandbox.wrapper kernel SANDBOX.json -f CONNECTION_FILE [kernel arguments]",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
