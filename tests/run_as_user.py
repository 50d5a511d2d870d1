"""Run a command as an ordinary user, started by root: how the grading tests see labkit as an
instructor without root privileges runs it (issue: grading as an ordinary user).

    python tests/run_as_user.py USER [--] COMMAND ...

USER is created (``useradd``, no password, a home in /home) when missing. This machine's Python
may live where other users cannot pass (pyenv under ``/root``, mode 0700), where an instructor's
own machine has it in ``/usr`` or their home: the command runs in a private mount namespace in
which each such closed folder is covered and only the folders the command needs (the interpreter,
the checkout, ``$LABKIT_DATA``, the temporary folder) are bound back, through the same
``View`` that gives each kernel's uid its folders. Nothing changes on the host.

The command gets USER's uid, gid and groups, ``HOME``, ``USER`` and ``LOGNAME``; the rest of the
environment is passed on. Its exit code is this script's.
"""
from __future__ import annotations

import ctypes
import os
import pwd
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ensure_user(name: str) -> pwd.struct_passwd:
    """USER's passwd entry, creating the user first when it is missing (root only)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], check=True)
        return pwd.getpwnam(name)


def needed_folders() -> list[str]:
    """What the command must reach: the interpreter and its libraries, the checkout, MNIST."""
    paths = {sys.prefix, sys.base_prefix, sysconfig.get_paths()["stdlib"], os.path.dirname(os.path.realpath(sys.executable)),
             str(ROOT), tempfile.gettempdir()}
    if os.environ.get("LABKIT_DATA"):
        paths.add(os.path.abspath(os.environ["LABKIT_DATA"]))
    return sorted(os.path.realpath(p) for p in paths if os.path.exists(p))


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    name, command = argv[0], argv[1:]
    if command[0] == "--":
        command = command[1:]
    if os.geteuid() != 0:
        raise SystemExit("run_as_user.py: must be started as root (it creates the user and drops to it)")
    user = ensure_user(name)
    from labkit.course.sandbox.mounts import View

    view = View(needed_folders())
    env = dict(os.environ, HOME=user.pw_dir, USER=user.pw_name, LOGNAME=user.pw_name)

    def drop():  # in the child, still root: the view, then the user's identity
        view.apply(ctypes.CDLL(None, use_errno=True))
        os.initgroups(user.pw_name, user.pw_gid)
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
        os.chdir(os.environ.get("PWD_AS_USER", str(ROOT)))

    return subprocess.run(command, env=env, preexec_fn=drop).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
