"""The sandbox's grading side: what runs in ``labkit autograde`` (or a Dask worker), never in the wrapper.

Owns: choosing the mode (:func:`choose_mode`), saying what it isolates
(:func:`describe`), the per-student configuration and kernelspec
(:func:`make_config`, :func:`write_config`) and the probe that a kernel starts
(:func:`check`). The kernelspec's command is the wrapper,
:mod:`labkit.course.sandbox.wrapper`, a process of its own; its docstring says
what the two modes confine.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from labkit.course.sandbox.bwrap import probe_bwrap
from labkit.course.sandbox.wrapper import kernel_folder, kernel_user, start_confined
from labkit.errors import GradingError, OptionError

KERNEL_NAME = "labkit-sandbox"
MODES = ("bwrap", "basic")


# --------------------------------------------------------------------------- what this machine offers


def choose_mode(requested: str = "auto") -> tuple[str, str | None]:
    """(mode, why bwrap is not used or None) for ``requested`` in auto, bwrap, basic.

    ``auto`` takes ``bwrap`` when it works here, else ``basic``; asking for
    ``bwrap`` where it does not work is an error (GradingError).
    """
    if requested not in ("auto", *MODES):
        raise OptionError(f"unknown sandbox {requested!r}: choose auto, bwrap or basic")
    if requested == "basic":
        return "basic", "--sandbox basic"
    problem = probe_bwrap()
    if problem is None:
        return "bwrap", None
    if requested == "bwrap":
        raise GradingError(f"--sandbox bwrap: {problem}")
    return "basic", problem


def describe(config: dict, why_not_bwrap: str | None = None) -> str:
    """One line saying what the kernels' sandbox isolates."""
    if config["mode"] == "bwrap":
        return ("bubblewrap sandbox: no network; system, Python and labkit read-only; solutions, gradebooks, "
                "submissions and other students invisible; only the kernel's own folder writable")
    because = f" ({why_not_bwrap})" if why_not_bwrap else ""  # why bwrap is not used
    if config.get("user"):
        return (f"basic{because}: limits, every kernel runs as a fresh unprivileged uid (grading folders and other "
                "kernels unreachable to it, its processes killed when it ends, no network where a network "
                "namespace can be made); it can read whatever is world-readable here, the checkout's solutions/ "
                "included")
    return (f"basic{because}: limits only, one student at a time; student code runs as you and can read your "
            "files, the solutions and the gradebooks: install bubblewrap (see docs/instructors.md)")


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
        "argv": [sys.executable, "-m", "labkit.course.sandbox.wrapper", "kernel", str(path.resolve()),
                 "-f", "{connection_file}"],
        "display_name": "Python 3 (labkit grading sandbox)",
        "language": "python",
        # interrupts travel as messages on the control channel: no signal has to cross the sandbox
        "interrupt_mode": "message",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n")
    return path


def network_cut(config: dict, timeout: float = 120) -> bool:
    """Whether a kernel started with ``config`` is in a network namespace other than ours (no
    network: bubblewrap's ``--unshare-net``, or basic mode's own namespace as root)."""
    code = "import os; print(os.readlink('/proc/self/ns/net'))"
    try:
        with kernel_user(config) as uid:
            kdir, work = kernel_folder(config, uid)
            try:
                proc = start_confined(config, uid, kdir, work, [sys.executable, "-c", code], [], subprocess.run,
                                      capture_output=True, text=True, timeout=timeout)
            finally:
                shutil.rmtree(kdir, ignore_errors=True)
    except (OSError, subprocess.SubprocessError, RuntimeError):
        return False
    return proc.returncode == 0 and proc.stdout.strip() not in ("", os.readlink("/proc/self/ns/net"))


def check(config: dict, timeout: float = 180) -> str | None:
    """Start Python the way a kernel starts (same sandbox, user and limits) and import
    ipykernel and labkit. None when that works, else the error output."""
    try:
        with kernel_user(config) as uid:
            kdir, work = kernel_folder(config, uid)
            try:
                proc = start_confined(config, uid, kdir, work,
                                      [sys.executable, "-c", "import ipykernel.kernelapp, labkit"],
                                      [], subprocess.run, capture_output=True, text=True, timeout=timeout)
            finally:
                shutil.rmtree(kdir, ignore_errors=True)
    except (OSError, subprocess.SubprocessError, RuntimeError) as e:
        return str(e)
    if proc.returncode != 0:
        return (proc.stderr or proc.stdout).strip()[-1500:] or f"exit status {proc.returncode}"
    return None
