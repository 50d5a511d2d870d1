"""bubblewrap, for the grading sandbox: whether it works here (:func:`probe_bwrap`) and the
command line that confines one kernel (:func:`bwrap_argv`). What the sandbox is for, and the
wrapper that uses this, live in :mod:`labkit.course.sandbox`.

Every folder bwrap binds is ``nosuid`` and ``nodev`` (bubblewrap's own rule). As root, bwrap
is started as the kernel's own unprivileged uid (:mod:`labkit.course.sandbox.uids`), so it needs
unprivileged user namespaces; :func:`probe_bwrap` tries exactly that.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from labkit.course.sandbox import uids

TMPFS_BYTES = 256 << 20  # size of the kernel's /tmp and /dev/shm in bwrap mode
# System folders a kernel reads (those that exist), read-only, at the same place.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/sys")
SANDBOX_UID = 65534  # who the kernel appears to be inside bwrap (nobody)


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def probe_bwrap() -> str | None:
    """None when bubblewrap can create the namespaces labkit asks for here, else why not
    (as root: started as an unprivileged kernel uid, as the kernels will be)."""
    exe = bwrap_path()
    if exe is None:
        return "bwrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    argv = [exe, "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--unshare-pid",
            "--unshare-ipc", "--unshare-uts", "--unshare-net", "--die-with-parent", "--ro-bind", "/", "/",
            "--proc", "/proc", "--dev", "/dev", "--size", str(TMPFS_BYTES), "--tmpfs", "/tmp",
            "--disable-userns", "--", "/bin/true"]
    uid_range = uids.reserved_range()
    try:
        if uid_range is None:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        else:
            with uids.KernelUser(uid_range) as uid:
                proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd="/",
                                      user=uid, group=uid, extra_groups=[])
    except (OSError, subprocess.SubprocessError, RuntimeError) as e:
        return f"bwrap could not run: {e}"
    if proc.returncode != 0:
        who = " as an unprivileged uid (are unprivileged user namespaces allowed?)" if uid_range else ""
        return f"bwrap cannot create namespaces here{who}: {(proc.stderr or proc.stdout).strip() or proc.returncode}"
    return None


def _under(path: str, folders) -> bool:
    return any(path == f or path.startswith(f.rstrip("/") + "/") for f in folders)


def bwrap_argv(config: dict, writable: list[Path], work: Path, cmd: list[str], env: dict[str, str]) -> list[str]:
    """bubblewrap's command line for ``cmd``: the system folders and ``config["readable"]``
    read-only, ``config["hidden"]`` covered where they lie inside those, ``writable`` writable,
    ``env`` the whole environment, ``work`` the working folder."""
    argv = [bwrap_path() or "bwrap", "--die-with-parent", "--unshare-user", "--uid", str(SANDBOX_UID),
            "--gid", str(SANDBOX_UID), "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net",
            "--unshare-cgroup-try", "--hostname", "grading", "--clearenv"]
    for key, value in sorted(env.items()):
        argv += ["--setenv", key, value]
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    argv += ["--proc", "/proc", "--dev", "/dev",
             "--size", str(TMPFS_BYTES), "--tmpfs", "/tmp",
             "--size", str(TMPFS_BYTES), "--tmpfs", "/dev/shm"]
    exposed = list(SYSTEM_DIRS)
    for path in config["readable"]:
        if os.path.exists(path) and not _under(path, SYSTEM_DIRS):
            argv += ["--ro-bind", path, path]
            exposed.append(path)
    for path in config["hidden"]:  # a secret inside something exposed gets covered
        if _under(path, exposed) and os.path.isdir(path):
            argv += ["--tmpfs", path]
        elif _under(path, exposed) and os.path.exists(path):
            argv += ["--ro-bind", "/dev/null", path]
    for path in writable:
        argv += ["--bind", str(path), str(path)]
    return argv + ["--chdir", str(work), "--disable-userns", "--", *cmd]
