"""nbgrader as a subprocess of this Python environment, and the nbgrader courses labkit writes.

Owns: :func:`run_nbgrader` (every labkit command that runs nbgrader goes
through it), the course configuration file (:func:`write_course_config`) and
the Jupyter folders nbgrader sees (:func:`jupyter_env`).

nbgrader calls ``alembic`` by name to set up its gradebook, so the
environment's ``bin/`` folder must be on PATH, also when the environment is
not activated (``.venv/bin/labkit ...``): :func:`nbgrader_env` puts it there.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ASSIGNMENT = "lab"     # the nbgrader assignment every labkit course holds
COURSE_ID = "labkit"


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


def write_course_config(course: Path, db: Path, extra: str = "") -> None:
    """``course/nbgrader_config.py``: the course root, its gradebook ``db`` and ``extra`` lines."""
    (course / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        f"c.CourseDirectory.root = {str(course.resolve())!r}\n"
        f"c.CourseDirectory.db_url = {'sqlite:///' + str(db.resolve())!r}\n"
        f"c.CourseDirectory.course_id = {COURSE_ID!r}\n" + extra
    )


def jupyter_env(run: Path, course: Path) -> dict[str, str]:
    """nbgrader's environment: Jupyter's folders inside the run, none of the instructor's config."""
    return {
        "JUPYTER_PATH": str(course / "jupyter"),
        "JUPYTER_CONFIG_DIR": str(run / "jupyter-config"),
        "JUPYTER_DATA_DIR": str(run / "jupyter-data"),
        "JUPYTER_RUNTIME_DIR": str(course / "runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
