"""Confine the Jupyter kernel that runs a student's notebook while labkit autogrades.

Owns: choosing the mode (:func:`choose_mode`), the per-student configuration
and kernelspec (:func:`make_config`, :func:`write_config`), and the wrapper
that starts, limits and ends each kernel (:func:`launch`).

Each student's throwaway grading course gets its own kernelspec,
``labkit-sandbox`` (nbgrader selects it with ``c.Execute.kernel_name``), whose
command is this module::

    python -m labkit.course.sandbox kernel SANDBOX.json -f CONNECTION_FILE [kernel arguments]

This wrapper runs *outside* the sandbox, as the instructor. It

1. makes a fresh folder ``<scratch>/k-XXXX/`` for the kernel: ``work/`` is
   its working folder and home, the only place it may write (with its socket
   folder, below);
2. starts ``python -m labkit.course.kernel`` (IPython's kernel, :mod:`labkit.course.kernel`)
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
           and the throwaway folder. It can read whatever its user can read
           on this machine and reach the network.

As root, in both modes, each kernel runs as a fresh unprivileged uid of its
own (:mod:`labkit.course.uids`), never as uid 0 on the host: bubblewrap is
started *as* that uid (unprivileged user namespaces), and the folders it
binds are handed to it as open file descriptors, so a Python environment in
a folder only root can enter (``/root``) still works. When the kernel ends,
every process of its uid is killed and its files in ``/tmp``, ``/var/tmp``
and ``/dev/shm`` removed. Not as root, the kernel runs as the instructor;
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

from labkit.course import uids
from labkit.course.bwrap import bwrap_argv, probe_bwrap

KERNEL_NAME = "labkit-sandbox"
MODES = ("bwrap", "basic")
MAX_PROCESSES = 256  # RLIMIT_NPROC of a kernel's own uid (as root): processes and threads together


# --------------------------------------------------------------------------- what this machine offers


def choose_mode(requested: str = "auto") -> tuple[str, str | None]:
    """(mode, why bwrap is not used or None) for ``requested`` in auto, bwrap, basic.

    ``auto`` takes ``bwrap`` when it works here, else ``basic``; asking for
    ``bwrap`` where it does not work is an error (ValueError).
    """
    if requested not in ("auto", *MODES):
        raise ValueError(f"unknown sandbox {requested!r}: choose auto, bwrap or basic")
    if requested == "basic":
        return "basic", "--sandbox basic"
    problem = probe_bwrap()
    if problem is None:
        return "bwrap", None
    if requested == "bwrap":
        raise ValueError(f"--sandbox bwrap: {problem}")
    return "basic", problem


def describe(config: dict, why_not_bwrap: str | None = None) -> str:
    """One line saying what the kernels' sandbox isolates."""
    if config["mode"] == "bwrap":
        return ("bubblewrap sandbox: no network; system, Python and labkit read-only; solutions, gradebooks, "
                "submissions and other students invisible; only the kernel's own folder writable")
    because = f" ({why_not_bwrap})" if why_not_bwrap else ""  # why bwrap is not used
    if config.get("user"):
        return (f"basic{because}: limits, every kernel runs as a fresh unprivileged uid (grading folders and other "
                "kernels unreachable to it, its processes killed when it ends); it can read whatever is "
                "world-readable here, the checkout's solutions/ included, and reach the network")
    return (f"basic{because}: limits only, one student at a time; student code runs as you and can read your "
            "files, the solutions and the gradebooks: install bubblewrap (see docs/instructors.md)")


# --------------------------------------------------------------------------- set-up (grading side)


def python_dirs() -> list[str]:
    """Folders the kernel's Python needs, read-only: its prefixes, its import path and labkit's
    package (never the checkout around it, which holds solutions/ and .git)."""
    import labkit

    proc = subprocess.run([sys.executable, "-s", "-c", "import json, sys; print(json.dumps(sys.path[1:]))"],
                          capture_output=True, text=True, cwd="/", timeout=120)
    entries = json.loads(proc.stdout) if proc.returncode == 0 else list(sys.path)
    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    dirs.update(os.path.abspath(e) for e in entries if e and os.path.isdir(e))
    package = Path(labkit.__file__).resolve().parent
    dirs.add(str(package))
    dirs.discard(str(package.parent))
    return sorted(dirs)


def make_config(*, mode: str, scratch: str | os.PathLike, ipc_dir: str | os.PathLike, record: str | os.PathLike,
                memory_mb: int, cpu_seconds: int, wall_seconds: int, threads: int, env: dict[str, str],
                readable: list[str], hidden: list[str], user: tuple[int, int] | None) -> dict:
    """The wrapper's configuration for the kernels of one student (see :func:`launch`).

    ``scratch``: where per-kernel folders go; ``ipc_dir``: the folder for the
    kernel's sockets; ``record``: the file that gets one JSON line per kernel
    on how it ended; ``readable``: folders the kernel reads besides the
    system's (bwrap); ``hidden``: paths to cover should they lie inside
    something readable (bwrap); ``user``: (first uid, count), the range each
    kernel takes a fresh uid from (labkit as root: :func:`uids.reserved_range`),
    else None (the kernel runs as labkit's user).
    """
    return {
        "mode": mode,
        "scratch": str(scratch),
        "ipc_dir": str(ipc_dir),
        "record": str(record),
        "memory_bytes": int(memory_mb) << 20,
        "cpu_seconds": int(cpu_seconds),
        "wall_seconds": int(wall_seconds),
        "file_bytes": max(int(memory_mb), 256) << 20,
        "threads": int(threads),
        "env": dict(env),
        "readable": sorted(set(readable)),
        "hidden": sorted(set(hidden)),
        "user": list(user) if user else None,
    }


def write_config(course_dir: str | os.PathLike, config: dict) -> Path:
    """``<course>/sandbox.json`` and the kernelspec ``<course>/jupyter/kernels/labkit-sandbox``
    (run nbgrader with ``JUPYTER_PATH=<course>/jupyter``). Returns the config file."""
    course = Path(course_dir)
    path = course / "sandbox.json"
    path.write_text(json.dumps(config, indent=1, sort_keys=True) + "\n")
    spec_dir = course / "jupyter" / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "labkit.course.sandbox", "kernel", str(path.resolve()), "-f", "{connection_file}"],
        "display_name": "Python 3 (labkit grading sandbox)",
        "language": "python",
        # interrupts travel as messages on the control channel: no signal has to cross the sandbox
        "interrupt_mode": "message",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n")
    return path


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


def _limits(config: dict, uid: int | None, view: uids.View | None):
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def preexec():  # in the child, before exec: drop privileges, then set limits
        if uid is not None:
            view.apply(libc)  # still root: the folders the kernel's uid must reach
            uids.drop_to(uid, uid)
            resource.setrlimit(resource.RLIMIT_NPROC, (MAX_PROCESSES,) * 2)  # counts this uid only
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: dies with the wrapper (after setuid)
        cpu = config["cpu_seconds"]
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))  # SIGXCPU, then SIGKILL 5 s later
        resource.setrlimit(resource.RLIMIT_AS, (config["memory_bytes"],) * 2)
        resource.setrlimit(resource.RLIMIT_FSIZE, (config["file_bytes"],) * 2)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return preexec


def _kernel_folder(config: dict, uid: int | None) -> tuple[Path, Path]:
    kdir = Path(tempfile.mkdtemp(prefix="k-", dir=config["scratch"]))
    work = kdir / "work"
    (work / ".tmp").mkdir(parents=True)
    for path in (work, work / ".tmp"):
        hand_over(path, uid)
    if uid is not None:  # ours, entered through the kernel's own group: it cannot open it to others
        os.chown(kdir, -1, uid)
        os.chmod(kdir, 0o710)
    return kdir, work


def _kernel_user(config: dict):
    """The context that holds the kernel's own uid (as root), or yields None."""
    import contextlib

    return uids.KernelUser(config["user"]) if config.get("user") else contextlib.nullcontext(None)


def _start(config: dict, uid: int | None, kdir: Path, work: Path, cmd: list[str], writable: list[Path], run, **kw):
    """``run(argv, ...)`` (Popen or subprocess.run) for ``cmd`` in the sandbox, as ``uid``."""
    env = _kernel_env(config, work)
    view = uids.View([*config["readable"], kdir, *writable]) if uid is not None else None
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
    uids.become_subreaper()
    with _kernel_user(config) as uid:
        kdir, work = _kernel_folder(config, uid)
        try:
            conn = kdir / "connection.json"
            conn.write_text(json.dumps(info))
            hand_over(conn, uid, 0o400)
            hand_over(config["ipc_dir"], uid)  # this kernel's sockets go there; the last kernel's uid is gone
            line = _run_kernel(config, uid, kdir, work,
                               [sys.executable, "-m", "labkit.course.kernel", "-f", str(conn), *extra])
        finally:
            uids.end_descendants()  # what the kernel left (as root, uids.KernelUser ends its whole uid too)
            shutil.rmtree(kdir, ignore_errors=True)
    with open(config["record"], "a") as f:
        f.write(json.dumps(line) + "\n")
    returncode = line["returncode"]
    return returncode if returncode >= 0 else 128 - returncode


def _run_kernel(config: dict, uid: int | None, kdir: Path, work: Path, cmd: list[str]) -> dict:
    """Start the kernel, wait for it (wall-clock limit) and say how it ended: the record's line.
    ``stopped``: the kernel was ended by nbgrader (SIGTERM to this wrapper), not by itself."""
    start, started_at = time.monotonic(), time.time()
    proc = _start(config, uid, kdir, work, cmd, [Path(config["ipc_dir"])], subprocess.Popen)
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


def check(config: dict, timeout: float = 180) -> str | None:
    """Start Python the way a kernel starts (same sandbox, user and limits) and import
    ipykernel and labkit. None when that works, else the error output."""
    try:
        with _kernel_user(config) as uid:
            kdir, work = _kernel_folder(config, uid)
            try:
                proc = _start(config, uid, kdir, work, [sys.executable, "-c", "import ipykernel.kernelapp, labkit"],
                              [], subprocess.run, capture_output=True, text=True, timeout=timeout)
            finally:
                shutil.rmtree(kdir, ignore_errors=True)
    except (OSError, subprocess.SubprocessError, RuntimeError) as e:
        return str(e)
    if proc.returncode != 0:
        return (proc.stderr or proc.stdout).strip()[-1500:] or f"exit status {proc.returncode}"
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) >= 4 and argv[0] == "kernel" and argv[2] == "-f":
        return launch(argv[1], argv[3], argv[4:])
    print("usage: python -m labkit.course.sandbox kernel SANDBOX.json -f CONNECTION_FILE [kernel arguments]",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
