"""Run nbgrader as a subprocess of this Python environment.

nbgrader calls ``alembic`` by name to set up its gradebook, so the
environment's ``bin/`` folder must be on PATH, also when the environment is
not activated (``.venv/bin/labkit ...``). Every labkit command that runs
nbgrader goes through :func:`run_nbgrader`.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


class NbgraderError(RuntimeError):
    """nbgrader exited with an error; the message holds the end of its output."""


def nbgrader_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of the environment with this interpreter's bin/ first on PATH."""
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    if extra:
        env.update(extra)
    return env


def run_nbgrader(args: list[str], cwd: str | os.PathLike, *, check: bool = True, timeout: float | None = None,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``nbgrader ARGS`` in ``cwd`` (the course folder); output captured as text."""
    proc = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=cwd,
        env=nbgrader_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise NbgraderError(f"`nbgrader {' '.join(args)}` failed (exit {proc.returncode}) in {cwd}:\n{tail}")
    return proc
