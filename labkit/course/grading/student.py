"""Grading one student: their notebooks repaired into a copy of the template course, then
``nbgrader autograde`` with every kernel in the sandbox.

Owns: :func:`grade_student` (the records it takes and gives, :class:`Options`,
:class:`Run` and :class:`Row`, are :mod:`labkit.course.grading.records`), which never raises: a
notebook that kills its kernel is set aside with the reason and the others
are graded again; any other failure becomes the rows' status.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from labkit.course.grading.assignment import Template, copy_course
from labkit.course.grading.records import Options, Row, Run, StudentResult
from labkit.course.grading.seen import OUTPUTS_DIR, keep_outputs
from labkit.course.intake.repair import repair_notebook, short
from labkit.course.intake.submissions import Submission, match_notebooks, read_submission
from labkit.course.nbgrader import capped_execute_config, jupyter_env, run_nbgrader, write_course_config
from labkit.course.sandbox import prepare as sandbox
from labkit.course.sandbox.wrapper import hand_over

MAX_LOG_BYTES = 1 << 20  # of nbgrader's output per stream, kept for the log (caps.stream.Capture)
_NOTEBOOK_LINE = re.compile(r"(?:Sanitizing|Autograding) (\S+?\.ipynb)")
_EXCEPTION_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit))(?::\s*(.*))?$")


def _failure_reason(output: str, records: list[dict]) -> str:
    # a kernel nbgrader stopped itself (it ignored an interrupt) did not die: nbgrader's error says why
    died = [r for r in records if r.get("returncode") and not r.get("stopped")]
    if died:
        return f"kernel died: {died[-1]['ended']}"
    exceptions = [m for m in map(_EXCEPTION_LINE.match, output.splitlines()) if m]
    if not exceptions:
        return "error: nbgrader failed (see the log)"
    name, message = exceptions[-1].group(1).split(".")[-1], (exceptions[-1].group(2) or "").strip()
    # nbgrader gives up on a notebook with CellTimeoutError only when the interrupt got no answer
    # (an interrupted cell is an error output and the notebook is graded: see _outcome)
    if name in ("UnresponsiveKernelError", "CellTimeoutError"):
        return "timeout: the kernel did not respond to an interrupt"
    if name in ("DeadKernelError",) or "Kernel died" in message:
        return "kernel died"
    return f"error: {name}: {short(message, 100)}" if message else f"error: {name}"


def _outcome(nb_path: Path, options: Options) -> str:
    """graded / timeout / memory limit, from the errors in an autograded notebook, and a note
    when its output was cut."""
    import nbformat

    try:
        nb = nbformat.read(nb_path, as_version=4)
    except Exception:
        return "graded"
    enames, texts = set(), []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                enames.add(out.get("ename", ""))
                texts.append(str(out.get("evalue", "")))
    cut = nb.metadata.get("labkit", {}).get("output_cut")  # set by caps.outputs.CappedExecute, outside the sandbox
    note = f"; output over {options.output_mb} MB left out ({cut} bytes)" if cut else ""
    if "CellTimeoutError" in enames:
        return f"timeout (a cell ran over {options.timeout} s)" + note
    memory_words = ("can't allocate memory", "cannot allocate memory", "bad_alloc", "out of memory")
    if "MemoryError" in enames or any(w in t.lower() for t in texts for w in memory_words):
        return f"memory limit ({options.memory_mb} MB)" + note
    return "graded" + note


def grade_student(sub: Submission, index: int, run: Run) -> StudentResult:
    """Grade one student's submission in its own course. Never raises: any failure becomes the
    rows' status."""
    log: list[str] = []
    try:
        return _grade_student(sub, index, run, log)
    except Exception as e:  # a bug or a machine problem must not lose the other students
        log.append(f"labkit: grading {sub.student} failed: {e!r}")
        rows = [Row(sub.student, name, f"error: {short(e)}") for name in run.template.notebooks]
        return StudentResult(rows, None, "\n".join(log))


def _grade_student(sub: Submission, index: int, run: Run, log: list[str]) -> StudentResult:
    template = run.template
    read_submission(sub)  # only now, one student at a time: the bytes are dropped once repaired
    if sub.ignored:
        return StudentResult([Row(sub.student, sub.source, sub.problem, scored=False)], None, "")
    if sub.problem:
        return StudentResult([Row(sub.student, name, "; ".join([sub.problem, *sub.notes]))
                              for name in template.notebooks], None, "")
    course = run.dir / "courses" / str(index)
    copy_course(template, course)
    rows, status, notes = _submit(sub, template, course / "submitted" / sub.student / template.assignment)
    extra_notes: list[str] = []  # for every row of this student
    pending = [n for n in template.notebooks if status[n] == "graded"]
    graded_any = bool(pending) and _autograde(sub, index, run, course, pending, status, log, extra_notes)
    for name in template.notebooks:
        autograded = course / "autograded" / sub.student / template.assignment / f"{name}.ipynb"
        if status[name] == "graded" and graded_any and autograded.exists():
            status[name] = _outcome(autograded, run.options)
        rows[name] = Row(sub.student, name, "; ".join([status[name], *notes[name], *sub.notes, *extra_notes]))
    return StudentResult(list(rows.values()), course if graded_any else None, "\n".join(log))


def _submit(sub: Submission, template: Template, submitted: Path) -> tuple[dict[str, Row], dict[str, str],
                                                                            dict[str, list[str]]]:
    """The submission's files matched to the expected notebooks and repaired into ``submitted``.
    Returns the rows of unrecognised files, each notebook's status (``graded`` when it waits
    for nbgrader) and its notes."""
    import nbformat

    chosen, notes, unrecognised = match_notebooks(list(sub.files), template.notebooks)
    for name, path in chosen.items():  # what the layout noted about that file (versions, LATE)
        notes[name] = sub.file_notes.get(path, []) + notes[name]
    rows = {path: Row(sub.student, path, "unrecognised notebook: matches none of "
                      + ", ".join(f"{n}.ipynb" for n in template.notebooks) + " (not graded)", scored=False)
            for path in unrecognised}
    submitted.mkdir(parents=True)
    status: dict[str, str] = {}
    for name in template.notebooks:
        if name not in chosen:
            status[name] = "missing" if sub.files else "missing (no notebook in the submission)"
            continue
        nb, repair_notes, problem = repair_notebook(sub.files[chosen[name]], template.release[name],
                                                    template.source[name])
        notes[name] = notes[name] + repair_notes
        if problem:
            status[name] = problem
            continue
        nbformat.write(nb, submitted / f"{name}.ipynb")
        keep_outputs(sub.files[chosen[name]], submitted.parents[2] / OUTPUTS_DIR / sub.student / f"{name}.ipynb")
        status[name] = "graded"
    sub.files.clear()
    return rows, status, notes


def _configure(course: Path, ipc: Path, run: Run) -> None:
    """The student's course set up for nbgrader: the sandbox's config and kernelspec, nbgrader's config."""
    options = run.options
    ipc.mkdir(parents=True)
    config = sandbox.make_config(
        mode=run.mode, scratch=run.dir / "scratch", ipc_dir=ipc, record=course / "kernels.jsonl",
        memory_mb=options.memory_mb, cpu_seconds=options.cpu_seconds, wall_seconds=options.wall_seconds,
        threads=run.threads, env=run.env, readable=run.readable, hidden=run.hidden, user=run.user)
    hand_over(ipc, None)  # private; each kernel's wrapper hands it to that kernel's uid
    sandbox.write_config(course, config)
    write_course_config(course, course / "gradebook.db", (
        f"c.Execute.timeout = {int(options.timeout)}\n"
        "c.Execute.startup_timeout = 180\n"
        "c.Execute.iopub_timeout = 30\n"
        f"c.Execute.kernel_name = {sandbox.KERNEL_NAME!r}\n"
        "c.KernelManager.transport = 'ipc'\n"
        f"c.KernelManager.ip = {str(ipc / 'k')!r}\n"
        "c.OverwriteCells.add_missing_cells = False  # labkit restores deleted cells itself\n"
        "c.LimitOutput.max_lines = 1000\n"
        "c.LimitOutput.max_traceback = 100\n" + capped_execute_config(options.output_mb << 20)))


def _autograde(sub: Submission, index: int, run: Run, course: Path, pending: list[str], status: dict[str, str],
               log: list[str], extra_notes: list[str]) -> bool:
    """``nbgrader autograde`` on the ``pending`` notebooks until it succeeds: a notebook that
    kills its kernel (or that nbgrader names when it fails) is set aside with the reason in
    ``status`` and the others are graded again. True when nbgrader graded the rest."""
    _configure(course, run.dir / "ipc" / str(index), run)
    env, record = jupyter_env(run.dir, course), course / "kernels.jsonl"
    submitted = course / "submitted" / sub.student / run.template.assignment
    while pending:
        seen = len(record.read_text().splitlines()) if record.exists() else 0
        limit = len(pending) * (run.options.wall_seconds + 60) + 300
        try:
            proc = run_nbgrader(["autograde", run.template.assignment, "--student", sub.student, "--force"],
                                cwd=course, check=False, env=env, timeout=limit, max_output=MAX_LOG_BYTES)
        except subprocess.TimeoutExpired:
            for name in pending:
                status[name] = f"error: nbgrader autograde did not finish in {limit} s"
            return False
        output = proc.stdout + proc.stderr
        log.append(output)
        if proc.cut:
            extra_notes.append(f"kernel output to its stdout/stderr cut ({proc.cut} bytes left out of the log)")
        if proc.returncode == 0:
            return True
        records = [json.loads(line) for line in record.read_text().splitlines()[seen:]] if record.exists() else []
        where = [Path(m).stem for m in _NOTEBOOK_LINE.findall(output)]
        failed = where[-1] if where and where[-1] in pending else None
        reason = _failure_reason(output, records)
        if failed is None:  # cannot tell which notebook: give up on the rest, saying why
            for name in pending:
                status[name] = reason
            return False
        status[failed] = reason
        pending.remove(failed)
        (course / "set-aside").mkdir(exist_ok=True)
        os.replace(submitted / f"{failed}.ipynb", course / "set-aside" / f"{failed}.ipynb")
        log.append(f"labkit: {failed}.ipynb set aside ({reason}); grading the others again")
    return False
