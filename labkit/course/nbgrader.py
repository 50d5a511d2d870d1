"""nbgrader as a subprocess of this Python environment, and the nbgrader courses labkit writes.

Owns: :func:`run_nbgrader` (every labkit command that runs nbgrader goes
through it), the course configuration file (:func:`write_course_config`,
:func:`capped_execute_config`) and
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

from labkit.course.caps.stream import Capture
from labkit.errors import GradingError

ASSIGNMENT = "lab"     # the nbgrader assignment every labkit course holds
COURSE_ID = "labkit"
STREAM_GRACE = 5  # seconds to read what is left in nbgrader's pipes once it has exited


class NbgraderError(GradingError):
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
                 env: dict[str, str] | None = None, max_output: int | None = None) -> subprocess.CompletedProcess:
    """``nbgrader ARGS`` in ``cwd`` (the course folder); output captured as text, decoded with
    replacement (a kernel's stderr reaches it raw). With ``max_output``, at most that many bytes
    of each stream are kept (:class:`~labkit.course.caps.stream.Capture`); ``proc.cut`` is how many
    were left out."""
    proc = subprocess.Popen([sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=nbgrader_env(env),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = Capture(proc.stdout, max_output), Capture(proc.stderr, max_output)
    try:
        returncode = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise  # the readers are daemons: a kernel that still holds the pipes does not hold us
    for capture in (out, err):  # nbgrader has exited: a process that kept its pipes does not hold us
        capture.join(STREAM_GRACE)
    done = subprocess.CompletedProcess(proc.args, returncode, out.text(), err.text())
    done.cut = out.cut + err.cut
    if check and returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
        raise NbgraderError(f"`nbgrader {' '.join(args)}` failed (exit {returncode}) in {cwd}:\n{tail}")
    return done


# The mode nbgrader gives every file it writes (its octal digits, as nbgrader reads them). nbgrader's
# own default is read-only, 444, for what `nbgrader autograde` writes: labkit rewrites those notebooks
# afterwards (the class course sanitises them), which root may do and the instructor's own account
# may not. Owner read and write, nobody else: what labkit's courses hold is private.
FILE_MODE = 600


def write_course_config(course: Path, db: Path, extra: str = "") -> None:
    """``course/nbgrader_config.py``: the course root, its gradebook ``db``, the mode of the files
    nbgrader writes (:data:`FILE_MODE`, for every converter) and ``extra`` lines."""
    (course / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        f"c.CourseDirectory.root = {str(course.resolve())!r}\n"
        f"c.CourseDirectory.db_url = {'sqlite:///' + str(db.resolve())!r}\n"
        f"c.CourseDirectory.course_id = {COURSE_ID!r}\n"
        f"c.BaseConverter.permissions = {FILE_MODE}\n" + extra
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


def capped_execute_config(max_output_bytes: int) -> str:
    """Lines for a course's nbgrader_config.py: autograde with labkit's
    :class:`~labkit.course.caps.outputs.CappedExecute` in the place of nbgrader's Execute."""
    return (
        "from labkit.course.caps.outputs import CappedExecute\n"
        "from nbgrader.converters import Autograde\n"
        "c.Autograde.autograde_preprocessors = [CappedExecute if p.__name__ == 'Execute' else p for p in\n"
        "                                       Autograde.class_traits()['autograde_preprocessors'].default()]\n"
        f"c.CappedExecute.max_output_bytes = {int(max_output_bytes)}\n"
    )
