"""`labkit autograde`: grade a class's submissions with nbgrader, every student in a sandbox.

    labkit autograde SUBMISSIONS                 # grades/grades.csv and grades/feedback/<student>/*.html
    labkit autograde SUBMISSIONS --jobs 2 --keep grades/course
    labkit autograde --from-course grades/course # after grading written answers in the formgrader

SUBMISSIONS holds one folder or one .zip per student, as a learning management
system exports them; the student id is the folder's (or zip's) name, made
safe (``Alice Smith_12345_assignsubmission_file_`` -> ``Alice-Smith_12345``).
Notebooks may be nested (``alice/lab/1_pca.ipynb``, a zip with a top folder).

How a class is graded:

1. a template nbgrader course in a throwaway folder: the solutions in
   ``source/<assignment>/``, then ``nbgrader generate_assignment`` (gradebook
   and student versions);
2. per student (``--jobs`` at a time), a copy of the template with its own
   gradebook: the submission's notebooks are matched to the expected ones
   (misnamed copies such as ``1_PCA (1).ipynb`` when unambiguous), checked
   and repaired into ``submitted/<student>/<assignment>/`` (invalid JSON,
   duplicated cells and grade ids, deleted graded cells restored, edited
   locked cells noted: nbgrader puts the originals back), and
   ``nbgrader autograde`` runs them with a per-cell timeout, each notebook in
   a fresh kernel confined by :mod:`labkit.sandbox`. A notebook that kills
   its kernel is set aside (zero, with the reason) and the others are graded;
3. the students' gradebooks are merged into one class course (kept with
   ``--keep`` for nbgrader's formgrader), ``nbgrader generate_feedback`` writes
   the HTML feedback, and ``grades.csv`` gets one row per student and notebook:
   the points of every graded cell, total, max and a status (``graded``,
   ``timeout``, ``memory limit``, ``invalid notebook: ...``, ``missing``, ...).

The submissions are never modified; running twice gives the same grades.csv.
"""
from __future__ import annotations

import argparse
import copy
import csv
import functools
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
import warnings
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from labkit import sandbox
from labkit.nbgrader_runner import run_nbgrader

ASSIGNMENT = "lab"
COURSE_ID = "labkit"
ROWS_FILE = "labkit-rows.json"  # in the class course: each row's status, for --from-course
MAX_NOTEBOOK_BYTES = 100 << 20
MAX_SUBMISSION_BYTES = 500 << 20  # all of one student's notebooks and nested zips: a zip bomb stops here
SKIP_PARTS = ("__MACOSX", ".ipynb_checkpoints")


# --------------------------------------------------------------------------- results


@dataclass
class Row:
    """One line of grades.csv before the scores are looked up."""

    student: str
    notebook: str
    status: str
    scored: bool = True  # False: a file that is none of the assignment's notebooks


@dataclass
class Options:
    assignment: str = ASSIGNMENT
    timeout: int = 120         # seconds per cell (nbgrader's Execute.timeout)
    memory_mb: int = 8192      # address space of a kernel (torch alone reserves about 3.5 GB)
    cpu_seconds: int = 600     # processor time of a kernel (one notebook)
    jobs: int = 1
    sandbox: str = "auto"

    @property
    def wall_seconds(self) -> int:  # a kernel that ignores interrupts is killed after this
        return max(10 * self.timeout, self.cpu_seconds) + 60


# --------------------------------------------------------------------------- finding submissions


@dataclass
class Submission:
    student: str
    source: str                                           # its name in SUBMISSIONS
    files: dict[str, bytes] = field(default_factory=dict)  # relative path -> bytes, notebooks only
    notes: list[str] = field(default_factory=list)
    problem: str | None = None                             # the whole submission is unusable
    ignored: bool = False                                  # not a student's submission at all
    nbytes: int = 0                                        # bytes in files, against MAX_SUBMISSION_BYTES


def safe_student_id(name: str) -> str:
    """A student id from a folder or zip name, safe as a folder name and for nbgrader."""
    name = re.sub(r"\.zip$", "", name, flags=re.IGNORECASE)
    name = re.sub(r"_assignsubmission_\w*$", "", name)  # Moodle: "Full Name_12345_assignsubmission_file_"
    name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-_.")
    return name or "student"


# What a broken archive raises: not a zip, truncated, corrupt data (zlib.error), encrypted
# (RuntimeError), an unsupported compression method (NotImplementedError) ... Each is reported
# in that student's row; none may stop the class.
ARCHIVE_ERRORS = (zipfile.BadZipFile, OSError, ValueError, RuntimeError, EOFError, zlib.error)


def _wanted(relpath: str) -> bool:
    parts = Path(relpath).parts
    return bool(parts) and not any(p.startswith(".") or p in SKIP_PARTS for p in parts)


def _room(sub: Submission, size: int, what: str) -> bool:
    """Whether ``size`` more bytes fit in the student's MAX_SUBMISSION_BYTES; if not, a note says what was left out."""
    if sub.nbytes + size <= MAX_SUBMISSION_BYTES:
        return True
    sub.notes.append(f"{what} was not read: the submission would exceed {MAX_SUBMISSION_BYTES >> 20} MB")
    return False


def _add_notebook(sub: Submission, rel: str, size: int, read) -> None:
    """Notebook ``rel`` of ``size`` bytes (``read()`` gives them) into sub.files, unless it is too large."""
    if size > MAX_NOTEBOOK_BYTES:
        sub.notes.append(f"{rel} is larger than {MAX_NOTEBOOK_BYTES >> 20} MB (not graded)")
    elif _room(sub, size, rel):
        sub.files[rel] = read()
        sub.nbytes += len(sub.files[rel])


def _add_zip(sub: Submission, rel: str, size: int, source) -> None:
    """The notebooks of zip ``rel`` of ``size`` bytes (``source()`` gives its bytes or path), if it fits."""
    if _room(sub, size, rel):
        try:
            _read_zip(source(), f"{rel}/", sub)
        except ARCHIVE_ERRORS as e:
            sub.notes.append(f"{rel}: not a valid zip ({e})")


def _read_zip(data: bytes | Path, prefix: str, sub: Submission) -> None:
    with zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data) as zf:
        for info in sorted(zf.infolist(), key=lambda i: i.filename):
            name = info.filename.replace("\\", "/")
            rel = "/".join(p for p in name.split("/") if p not in ("", ".", ".."))
            if info.is_dir() or not _wanted(rel):
                continue
            read = functools.partial(zf.read, info)  # zipfile stops at the declared size and checks the CRC
            if rel.lower().endswith(".ipynb"):
                _add_notebook(sub, prefix + rel, info.file_size, read)
            elif rel.lower().endswith(".zip") and not prefix:
                _add_zip(sub, rel, info.file_size, read)


def _read_folder(folder: Path, sub: Submission) -> None:
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink() or not path.is_file() or not _wanted(rel):
            continue  # links are never followed: they could point at anything on this machine
        if rel.lower().endswith(".ipynb"):
            _add_notebook(sub, rel, path.stat().st_size, path.read_bytes)
        elif rel.lower().endswith(".zip"):
            _add_zip(sub, rel, path.stat().st_size, lambda: path)  # called at once, in this iteration


def find_submissions(folder: str | os.PathLike) -> list[Submission]:
    """Every entry of ``folder``: one Submission per student folder or zip, plus one (with a
    ``problem``) for anything else, so that nothing goes unreported. Sorted by student id."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"no submissions folder {folder}")
    subs = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.startswith(".") or entry.name in SKIP_PARTS:
            continue
        sub = Submission(student=safe_student_id(entry.name), source=entry.name)
        try:
            if entry.is_symlink():
                sub.problem, sub.ignored = "ignored: a symbolic link, not a folder or .zip", True
            elif entry.is_dir():
                _read_folder(entry, sub)
            elif entry.suffix.lower() == ".zip":
                _read_zip(entry, "", sub)
            else:
                sub.problem, sub.ignored = "ignored: not a folder or .zip of notebooks", True
        except ARCHIVE_ERRORS as e:
            sub.problem = f"invalid zip: {e}" if entry.suffix.lower() == ".zip" else f"could not be read: {e}"
        subs.append(sub)
    seen: dict[str, int] = {}
    for sub in subs:  # two entries with the same id: the second becomes id-2, ...
        n = seen.get(sub.student, 0) + 1
        seen[sub.student] = n
        if n > 1:
            sub.notes.append(f"student id {sub.student}-{n} given to {sub.source!r} ({sub.student} was taken)")
            sub.student = f"{sub.student}-{n}"
    return sorted(subs, key=lambda s: s.student)


_COPY_SUFFIX = re.compile(r"(?:[\s_-]*(?:\(\d+\)|\(copy\)|-?copy\d*|copy\s*\d+))+$", re.IGNORECASE)


def _name_key(stem: str) -> str:
    stem = re.sub(r"^copy of\s+", "", stem.strip(), flags=re.IGNORECASE)
    stem = _COPY_SUFFIX.sub("", stem)
    return re.sub(r"[\s_-]+", "_", stem.lower()).strip("_")


def match_notebooks(files: list[str], expected: list[str]) -> tuple[dict[str, str], dict[str, list[str]], list[str]]:
    """Which submitted file is graded as which expected notebook.

    ``files``: relative paths; ``expected``: notebook names without ``.ipynb``.
    Returns (expected -> chosen path, expected -> notes, unrecognised paths).
    An exact file name wins (the least nested one, when there are several);
    else a misnamed copy (``1_PCA (1)``, ``1_pca-Copy1``, ``Copy of 1_pca``,
    ``1_pca_final``) when exactly one file maps to that notebook and to no other.
    """
    chosen: dict[str, str] = {}
    notes: dict[str, list[str]] = {name: [] for name in expected}
    by_depth = sorted(files, key=lambda p: (p.count("/"), p))
    left = []
    for path in by_depth:
        stem = Path(path).name[: -len(".ipynb")]
        if stem in expected and stem not in chosen:
            chosen[stem] = path
        elif stem in expected:
            notes[stem].append(f"also found {path} (not graded)")
        else:
            left.append(path)
    keys = {name: _name_key(name) for name in expected}
    candidates: dict[str, list[str]] = {name: [] for name in expected}
    unrecognised = []
    for path in left:
        key = _name_key(Path(path).name[: -len(".ipynb")])
        hits = [n for n in expected if keys[n] == key] or [n for n in expected if key.startswith(keys[n] + "_")]
        if len(hits) == 1:
            candidates[hits[0]].append(path)
        else:
            unrecognised.append(path)
    for name, paths in candidates.items():
        if not paths:
            continue
        if name in chosen:
            notes[name] += [f"also found {p} (not graded)" for p in paths]
        elif len(paths) == 1:
            chosen[name] = paths[0]
            notes[name].append(f"graded {paths[0]!r} as {name}.ipynb")
        else:
            notes[name].append("ambiguous: " + ", ".join(repr(p) for p in paths) + " (none graded)")
    return chosen, notes, sorted(unrecognised)


# --------------------------------------------------------------------------- checking and repairing a notebook


def _nbgrader_meta(cell) -> dict | None:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) and isinstance(meta.get("grade_id"), str) else None


def _is_anchor(meta: dict | None) -> bool:
    return bool(meta) and bool(meta.get("grade") or meta.get("solution") or meta.get("locked"))


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def repair_notebook(raw: bytes, release, source=None) -> tuple[object | None, list[str], str | None]:
    """Check a submitted notebook against the student version ``release`` and repair it.

    Returns (notebook or None, notes, problem). ``problem`` (e.g. ``invalid
    notebook: not JSON``) means the file cannot be graded. Repairs, each
    noted: cell ids made unique; of cells sharing a grade id only the last
    keeps its nbgrader markup (as nbgrader does); markup of unknown grade ids
    dropped; every graded, solution or locked cell gets the markup of the
    student version back; deleted ones are restored (solution stubs right
    after the cell before them, tests and locked cells right before the cell
    after them, so that a student's own extra cells run before the tests).
    Locked cells whose text differs from both the student version and the
    instructor's ``source`` (when given) are only noted: nbgrader overwrites
    them with the originals from the gradebook (hidden tests included).
    """
    import nbformat

    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, [], "invalid notebook: not UTF-8 text"
    if not text.strip():
        return None, [], "invalid notebook: empty file"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        return None, [], f"invalid notebook: not JSON ({e.msg}, line {e.lineno})"
    if not isinstance(data, dict) or not isinstance(data.get("nbformat"), int):
        return None, [], "invalid notebook: JSON but not a notebook (no nbformat version)"
    if not isinstance(data.get("cells", data.get("worksheets")), list):
        return None, [], "invalid notebook: no list of cells"
    try:
        with warnings.catch_warnings():  # duplicate or missing cell ids: repaired below
            warnings.simplefilter("ignore")
            nb = nbformat.reads(text, as_version=4, capture_validation_error={})
    except Exception as e:  # nbformat raises several kinds on malformed notebooks
        return None, [], f"invalid notebook: {_short(e)}"
    notes: list[str] = []
    nb.nbformat, nb.nbformat_minor = 4, 5
    cells = []
    for cell in nb.cells:
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            return None, [], "invalid notebook: a cell of unknown type"
        if not isinstance(cell.get("metadata"), dict):
            cell["metadata"] = nbformat.NotebookNode()
        cell["source"] = _source(cell)
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        cells.append(cell)

    release_cells = {m["grade_id"]: c for c in release.cells if _is_anchor(m := _nbgrader_meta(c))}
    source_text = {m["grade_id"]: _source(c) for c in (source.cells if source else []) if (m := _nbgrader_meta(c))}
    order = list(release_cells)
    # duplicates: the last copy keeps the markup (nbgrader's DeduplicateIds keeps the last too)
    last: dict[str, int] = {}
    for i, cell in enumerate(cells):
        meta = _nbgrader_meta(cell)
        if "nbgrader" in cell["metadata"] and (meta is None or meta["grade_id"] not in release_cells):
            del cell["metadata"]["nbgrader"]  # not one of the assignment's cells
        elif meta is not None:
            last[meta["grade_id"]] = i
    dups = sorted({_nbgrader_meta(c)["grade_id"] for i, c in enumerate(cells)
                   if _nbgrader_meta(c) and last[_nbgrader_meta(c)["grade_id"]] != i})
    for i, cell in enumerate(cells):
        meta = _nbgrader_meta(cell)
        if meta and last[meta["grade_id"]] != i:
            del cell["metadata"]["nbgrader"]
    for gid in dups:
        notes.append(f"duplicate grade_id {gid} (the last copy was graded)")
    edited = []
    for i, cell in enumerate(cells):
        meta = _nbgrader_meta(cell)
        if meta is None:
            continue
        original = release_cells[meta["grade_id"]]
        for key in ("nbgrader", "deletable", "editable"):
            if key in original.metadata:
                cell["metadata"][key] = copy.deepcopy(original.metadata[key])
            else:
                cell["metadata"].pop(key, None)
        unchanged = cell["source"] in (_source(original), source_text.get(meta["grade_id"]))
        if original.metadata["nbgrader"].get("locked") and (not unchanged or cell["cell_type"] != original.cell_type):
            edited.append(meta["grade_id"])
    if edited:
        notes.append("edited locked cells " + ", ".join(edited) + " (the originals were run)")
    # restore deleted cells
    present = {_nbgrader_meta(c)["grade_id"]: i for i, c in enumerate(cells) if _nbgrader_meta(c)}
    inserts = []
    for k, gid in enumerate(order):
        if gid in present:
            continue
        before = [present[g] for g in order[:k] if g in present]
        after = [present[g] for g in order[k + 1:] if g in present]
        if release_cells[gid].metadata["nbgrader"].get("solution"):
            pos = before[-1] + 1 if before else (after[0] if after else len(cells))
        else:
            pos = after[0] if after else len(cells)
        restored = copy.deepcopy(release_cells[gid])
        restored["id"] = "restored-" + re.sub(r"[^A-Za-z0-9_-]", "-", gid)[:50]
        inserts.append((pos, k, restored))
    for pos, _, cell in sorted(inserts, key=lambda t: (t[0], t[1]), reverse=True):
        cells.insert(pos, cell)
    if inserts:
        notes.append("restored deleted cells " + ", ".join(order[k] for _, k, _ in sorted(inserts, key=lambda t: t[1])))
    seen_ids: set[str] = set()
    for i, cell in enumerate(cells):
        cid = cell.get("id")
        if not isinstance(cid, str) or cid in seen_ids or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", cid):
            cid = f"cell-{i}"
            while cid in seen_ids:
                cid += "-"
            cell["id"] = cid
        seen_ids.add(cid)
    nb.cells = cells
    nb.metadata = copy.deepcopy(release.metadata)  # kernelspec and language as released
    try:
        nbformat.validate(nb)
    except Exception as e:
        return None, notes, f"invalid notebook: {_short(e)}"
    return nb, notes, None


def _short(error: BaseException, limit: int = 120) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- nbgrader courses


def _course_config(course: Path, db: Path, extra: str = "") -> None:
    (course / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        f"c.CourseDirectory.root = {str(course.resolve())!r}\n"
        f"c.CourseDirectory.db_url = {'sqlite:///' + str(db.resolve())!r}\n"
        f"c.CourseDirectory.course_id = {COURSE_ID!r}\n" + extra
    )


def _jupyter_env(run: Path, course: Path) -> dict[str, str]:
    """nbgrader's environment: Jupyter's folders inside the run, none of the instructor's config."""
    return {
        "JUPYTER_PATH": str(course / "jupyter"),
        "JUPYTER_CONFIG_DIR": str(run / "jupyter-config"),
        "JUPYTER_DATA_DIR": str(run / "jupyter-data"),
        "JUPYTER_RUNTIME_DIR": str(course / "runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }


@dataclass
class Template:
    """The assignment as nbgrader sees it, built once per run."""

    course: Path
    assignment: str
    notebooks: list[str]          # expected notebook names, without .ipynb, sorted
    release: dict[str, object]    # name -> student version (nbformat node)
    source: dict[str, object]     # name -> instructor's version
    cells: dict[str, list[str]]   # name -> graded cells' grade ids, in notebook order
    max_score: dict[str, dict[str, float]]


def build_template(run: Path, solutions: Path, assignment: str) -> Template:
    import nbformat

    sources = sorted(solutions.glob("*.ipynb"))
    if not sources:
        raise ValueError(f"no notebooks in {solutions}")
    course = run / "template"
    (course / "source" / assignment).mkdir(parents=True)
    for path in sources:
        shutil.copyfile(path, course / "source" / assignment / path.name)
    _course_config(course, course / "gradebook.db")
    run_nbgrader(["generate_assignment", assignment, "--force"], cwd=course, env=_jupyter_env(run, course))
    names = [p.stem for p in sources]
    release, source, cells, max_score = {}, {}, {}, {}
    for name in names:
        source[name] = nbformat.read(course / "source" / assignment / f"{name}.ipynb", as_version=4)
        nb = nbformat.read(course / "release" / assignment / f"{name}.ipynb", as_version=4)
        release[name] = nb
        cells[name], max_score[name] = [], {}
        for cell in nb.cells:
            meta = _nbgrader_meta(cell)
            if meta and meta.get("grade"):
                cells[name].append(meta["grade_id"])
                max_score[name][meta["grade_id"]] = float(meta.get("points", 0))
    return Template(course, assignment, names, release, source, cells, max_score)


def _copy_course(template: Template, course: Path) -> None:
    course.mkdir(parents=True, exist_ok=True)
    shutil.copytree(template.course / "source", course / "source")
    shutil.copytree(template.course / "release", course / "release")
    shutil.copyfile(template.course / "gradebook.db", course / "gradebook.db")


# --------------------------------------------------------------------------- grading one student


@dataclass
class Run:
    """What every student's job needs."""

    dir: Path
    template: Template | None
    options: Options
    mode: str
    user: tuple[int, int] | None
    readable: list[str]
    hidden: list[str]
    env: dict[str, str]
    threads: int


_NOTEBOOK_LINE = re.compile(r"(?:Sanitizing|Autograding) (\S+?\.ipynb)")
_EXCEPTION_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit))(?::\s*(.*))?$")


def _failure_reason(output: str, records: list[dict]) -> str:
    died = [r for r in records if r.get("returncode")]
    if died:
        return f"kernel died: {died[-1]['ended']}"
    exceptions = [m for m in map(_EXCEPTION_LINE.match, output.splitlines()) if m]
    if not exceptions:
        return "error: nbgrader failed (see the log)"
    name, message = exceptions[-1].group(1).split(".")[-1], (exceptions[-1].group(2) or "").strip()
    if name == "UnresponsiveKernelError":
        return "timeout: the kernel did not respond to an interrupt"
    if name in ("DeadKernelError",) or "Kernel died" in message:
        return "kernel died"
    return f"error: {name}: {_short(message, 100)}" if message else f"error: {name}"


def _outcome(nb_path: Path, options: Options) -> str:
    """graded / timeout / memory limit, from the errors in an autograded notebook."""
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
    if "CellTimeoutError" in enames:
        return f"timeout (a cell ran over {options.timeout} s)"
    memory_words = ("can't allocate memory", "cannot allocate memory", "bad_alloc", "out of memory")
    if "MemoryError" in enames or any(w in t.lower() for t in texts for w in memory_words):
        return f"memory limit ({options.memory_mb} MB)"
    return "graded"


def grade_student(sub: Submission, index: int, run: Run) -> tuple[list[Row], Path | None, str]:
    """Grade one student's submission in its own course. Returns (rows, course folder if nbgrader
    graded anything, log). Never raises: any failure becomes the rows' status."""
    log: list[str] = []
    try:
        return _grade_student(sub, index, run, log)
    except Exception as e:  # a bug or a machine problem must not lose the other students
        log.append(f"labkit: grading {sub.student} failed: {e!r}")
        rows = [Row(sub.student, name, f"error: {_short(e)}") for name in run.template.notebooks]
        return rows, None, "\n".join(log)


def _grade_student(sub: Submission, index: int, run: Run, log: list[str]) -> tuple[list[Row], Path | None, str]:
    import nbformat

    template, options, assignment = run.template, run.options, run.template.assignment
    extra = "; ".join(sub.notes)
    if sub.ignored:
        return [Row(sub.student, sub.source, sub.problem, scored=False)], None, ""
    if sub.problem:
        return [Row(sub.student, name, "; ".join([sub.problem, *sub.notes])) for name in template.notebooks], None, ""
    chosen, notes, unrecognised = match_notebooks(list(sub.files), template.notebooks)
    rows: dict[str, Row] = {}
    for path in unrecognised:
        rows[path] = Row(sub.student, path, "unrecognised notebook: matches none of "
                         + ", ".join(f"{n}.ipynb" for n in template.notebooks) + " (not graded)", scored=False)
    course = run.dir / "courses" / str(index)
    _copy_course(template, course)
    submitted = course / "submitted" / sub.student / assignment
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
        status[name] = "graded"
    pending = [n for n in template.notebooks if status[n] == "graded"]
    graded_any = False
    if pending:
        ipc = run.dir / "ipc" / str(index)
        ipc.mkdir(parents=True)
        config = sandbox.make_config(
            mode=run.mode, scratch=run.dir / "scratch", ipc_dir=ipc, record=course / "kernels.jsonl",
            memory_mb=options.memory_mb, cpu_seconds=options.cpu_seconds, wall_seconds=options.wall_seconds,
            threads=run.threads, env=run.env, readable=run.readable, hidden=run.hidden, user=run.user)
        sandbox.hand_over(ipc, config)
        sandbox.write_config(course, config)
        _course_config(course, course / "gradebook.db", (
            f"c.Execute.timeout = {int(options.timeout)}\n"
            "c.Execute.startup_timeout = 180\n"
            "c.Execute.iopub_timeout = 30\n"
            f"c.Execute.kernel_name = {sandbox.KERNEL_NAME!r}\n"
            "c.KernelManager.transport = 'ipc'\n"
            f"c.KernelManager.ip = {str(ipc / 'k')!r}\n"
            "c.OverwriteCells.add_missing_cells = False  # labkit restores deleted cells itself\n"
            "c.LimitOutput.max_lines = 1000\n"
            "c.LimitOutput.max_traceback = 100\n"))
        env = _jupyter_env(run.dir, course)
        record = course / "kernels.jsonl"
        while pending:
            seen = len(record.read_text().splitlines()) if record.exists() else 0
            limit = len(pending) * (options.wall_seconds + 60) + 300
            try:
                proc = run_nbgrader(["autograde", assignment, "--student", sub.student, "--force"], cwd=course,
                                    check=False, env=env, timeout=limit)
            except subprocess.TimeoutExpired:
                for name in pending:
                    status[name] = f"error: nbgrader autograde did not finish in {limit} s"
                break
            output = proc.stdout + proc.stderr
            log.append(output)
            if proc.returncode == 0:
                graded_any = True
                break
            records = [json.loads(line) for line in record.read_text().splitlines()[seen:]] if record.exists() else []
            where = [Path(m).stem for m in _NOTEBOOK_LINE.findall(output)]
            failed = where[-1] if where and where[-1] in pending else None
            reason = _failure_reason(output, records)
            if failed is None:  # cannot tell which notebook: give up on the rest, saying why
                for name in pending:
                    status[name] = reason
                pending = []
                break
            status[failed] = reason
            pending.remove(failed)
            (course / "set-aside").mkdir(exist_ok=True)
            os.replace(submitted / f"{failed}.ipynb", course / "set-aside" / f"{failed}.ipynb")
            log.append(f"labkit: {failed}.ipynb set aside ({reason}); grading the others again")
        for name in template.notebooks:
            autograded = course / "autograded" / sub.student / assignment / f"{name}.ipynb"
            if status[name] == "graded" and graded_any and autograded.exists():
                status[name] = _outcome(autograded, options)
    for name in template.notebooks:
        text = "; ".join([status[name], *notes[name], *([extra] if extra else [])])
        rows[name] = Row(sub.student, name, text)
    return list(rows.values()), (course if graded_any else None), "\n".join(log)


# --------------------------------------------------------------------------- the class course


def merge_gradebooks(target: Path, sources: list[Path]) -> None:
    """Copy every student's rows from ``sources`` (gradebooks made from the same template as
    ``target``) into ``target``. nbgrader keys every row with a UUID, so the template's rows
    are identical everywhere and the students' rows never collide."""
    con = sqlite3.connect(target)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' AND name != 'alembic_version'")]
        for i, src in enumerate(sources):
            con.execute(f"ATTACH DATABASE ? AS s{i}", (str(src),))
            for table in tables:
                con.execute(f"INSERT OR IGNORE INTO main.{table} SELECT * FROM s{i}.{table}")
            con.commit()
            con.execute(f"DETACH DATABASE s{i}")
    finally:
        con.close()


def _fmt(x: float | None) -> str:
    if x is None:
        return ""
    text = f"{x:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def scores_from_gradebook(db: Path, assignment: str, template: Template) -> dict[tuple[str, str], dict]:
    """(student, notebook) -> {grade_id: (score or None, needs manual grade)} for every submission."""
    from nbgrader.api import Gradebook, MissingEntry

    out = {}
    with Gradebook("sqlite:///" + str(db.resolve()), COURSE_ID) as gb:
        for student in gb.students:
            for name in template.notebooks:
                try:
                    snb = gb.find_submission_notebook(name, assignment, student.id)
                except MissingEntry:
                    continue
                cells = {}
                for grade in snb.grades:
                    pending = grade.needs_manual_grade and grade.manual_score is None
                    cells[grade.name] = (None if pending else float(grade.score), pending)
                out[(student.id, name)] = cells
    return out


def write_grades(gradebooks: list[Path], template: Template, rows: list[Row], out_csv: Path) -> list[list[str]]:
    """grades.csv: one row per student and notebook, sorted; same inputs, same bytes.

    The scores come from ``gradebooks``: the class course's one, or each student's own."""
    scores = {}
    for db in gradebooks:
        scores.update(scores_from_gradebook(db, template.assignment, template))
    ids = [(name, gid) for name in template.notebooks for gid in template.cells[name]]
    clash = {gid for _, gid in ids if sum(g == gid for _, g in ids) > 1}
    columns = [f"{name}:{gid}" if gid in clash else gid for name, gid in ids]
    table = []
    for row in sorted(rows, key=lambda r: (r.student, r.notebook)):
        line = [row.student, row.notebook]
        cells = scores.get((row.student, row.notebook), {})
        status = row.status
        total, maximum, manual = 0.0, 0.0, []
        for name, gid in ids:
            if not row.scored or name != row.notebook:
                line.append("")
                continue
            score, pending = cells.get(gid, (0.0, False))
            if pending:
                manual.append(gid)
            line.append(_fmt(score))
            total += score or 0.0
            maximum += template.max_score[name][gid]
        if manual:
            status += "; to grade by hand: " + ", ".join(manual)
        line += [_fmt(total), _fmt(maximum)] if row.scored else ["", ""]
        table.append(line + [status])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["student", "notebook", *columns, "total", "max", "status"])
    writer.writerows(table)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    out_csv.write_text(buf.getvalue(), encoding="utf-8")
    return table


def build_class_course(course: Path, template: Template, graded: list[tuple[str, Path]]) -> None:
    """One nbgrader course with every graded student (their autograded notebooks, one gradebook)."""
    _copy_course(template, course)
    _course_config(course, course / "gradebook.db")
    for student, src in graded:
        for part in ("submitted", "autograded"):
            folder = src / part / student
            if folder.exists():
                shutil.copytree(folder, course / part / student, dirs_exist_ok=True)
    merge_gradebooks(course / "gradebook.db", [src / "gradebook.db" for _, src in graded])


def write_feedback(course: Path, run_dir: Path, assignment: str, out: Path, log=print) -> int:
    """``nbgrader generate_feedback`` for the whole class, copied to ``out/<student>/*.html``."""
    if not (course / "autograded").is_dir():
        return 0
    proc = run_nbgrader(["generate_feedback", assignment, "--force"], cwd=course, check=False,
                        env=_jupyter_env(run_dir, course))
    if proc.returncode != 0:
        log("labkit autograde: nbgrader generate_feedback reported errors; feedback may be incomplete:\n"
            + "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-5:]))
    if out.exists():
        shutil.rmtree(out)
    n = 0
    for html in sorted((course / "feedback").glob(f"*/{assignment}/*.html")):
        student = html.parent.parent.name
        (out / student).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(html, out / student / html.name)
        n += 1
    return n


# --------------------------------------------------------------------------- the command


def _hidden_paths(*paths) -> list[str]:
    from labkit.paths import project_root

    out = [str(Path(p).resolve()) for p in paths if p]
    root = project_root()
    if root is not None:
        out.append(str(root))
    home = Path.home()
    if str(home) != "/":
        out.append(str(home))
    return out


def _mnist_folders() -> list[str]:
    from labkit.paths import project_root

    out = []
    if os.environ.get("LABKIT_DATA"):
        out.append(str(Path(os.environ["LABKIT_DATA"]).resolve()))
    root = project_root()
    if root is not None and (root / "data").is_dir():
        out.append(str(root / "data"))
    return out


def _prewarm_mnist(run: Path) -> subprocess.Popen:
    """Load MNIST once into a cache the kernels read (read-only) instead of decoding it each time."""
    cache = run / "cache"
    cache.mkdir()
    code = "from labkit.data import load_mnist\nfor s in ('train', 'test'):\n    load_mnist(s)\n"
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=run, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def autograde(
    submissions: str | os.PathLike,
    *,
    solutions: str | os.PathLike | None = None,
    out: str | os.PathLike = "grades",
    keep: str | os.PathLike | None = None,
    options: Options | None = None,
    log=print,
) -> list[list[str]]:
    """Grade every submission in ``submissions``; write ``out/grades.csv``, ``out/feedback/``
    and ``out/logs/``. Returns grades.csv's rows (without the header)."""
    options = options or Options()
    if options.timeout < 1 or options.jobs < 1 or options.memory_mb < 256 or options.cpu_seconds < 1:
        raise ValueError("--timeout, --jobs and --cpu-limit must be positive and --memory at least 256 (MB)")
    if solutions is None:
        from labkit.paths import require_project_root

        solutions = require_project_root() / "solutions"
    solutions, out = Path(solutions).resolve(), Path(out).resolve()
    submissions = Path(submissions).resolve()
    if not solutions.is_dir():
        raise ValueError(f"no solutions folder {solutions}")
    subs = find_submissions(submissions)
    keep_dir = Path(keep).resolve() if keep else None
    if keep_dir is not None and keep_dir.exists() and any(keep_dir.iterdir()):
        raise ValueError(f"--keep {keep_dir}: the folder exists and is not empty")
    for path, what in ((out, "--out"), (keep_dir, "--keep")):
        if path is not None and (path == submissions or submissions in path.parents):
            raise ValueError(f"{what} {path} lies inside the submissions folder {submissions}")
    mode, why_not = sandbox.choose_mode(options.sandbox)
    started = time.perf_counter()
    old_umask = os.umask(0o077)  # everything in the run: private to the instructor
    run_dir = Path(tempfile.mkdtemp(prefix="labkit-autograde-"))
    try:
        if len(str(run_dir)) > 60:  # the kernels' socket paths must stay under 107 bytes
            raise ValueError(f"temporary folder {run_dir} too long for Unix sockets: set TMPDIR=/tmp")
        for name in ("scratch", "ipc", "courses", "jupyter-config", "jupyter-data"):
            (run_dir / name).mkdir()
        for path in (run_dir, run_dir / "scratch", run_dir / "ipc"):
            os.chmod(path, 0o711)  # the kernel's user may pass through to its own folders, not list them
        env, readable = {}, sandbox.python_dirs() + _mnist_folders()
        if os.environ.get("LABKIT_DATA"):
            env["LABKIT_DATA"] = str(Path(os.environ["LABKIT_DATA"]).resolve())
        run = Run(dir=run_dir, template=None, options=options, mode=mode, user=None, readable=readable,
                  hidden=_hidden_paths(solutions, submissions, out, keep_dir, run_dir), env=env,
                  threads=max(1, (os.cpu_count() or 1) // options.jobs))
        # first make sure a kernel can start in the sandbox, and as whom
        run.user, why_not_nobody = _kernel_user(run)
        if mode == "basic" and os.geteuid() == 0 and run.user is None and options.sandbox == "auto":
            raise ValueError(
                f"refusing to run students' code as root without a sandbox: {why_not}; {why_not_nobody}. "
                "Install bubblewrap (apt-get install bubblewrap), or pass --sandbox basic to accept the risk "
                "(docs/instructors.md, 'What is isolated')")
        config = sandbox.make_config(mode=mode, scratch=run_dir / "scratch", ipc_dir=run_dir / "ipc",
                                     record=run_dir / "check.jsonl", memory_mb=options.memory_mb,
                                     cpu_seconds=options.cpu_seconds, wall_seconds=options.wall_seconds,
                                     threads=1, env=env, readable=readable, hidden=run.hidden, user=run.user)
        problem = sandbox.check(config)
        if problem:
            raise ValueError(f"a kernel cannot start in the grading sandbox ({mode}): {problem}")
        # the template course, while MNIST is loaded into a cache the kernels read
        needs_mnist = any("load_mnist" in p.read_text(errors="replace") for p in solutions.glob("*.ipynb"))
        prewarm = _prewarm_mnist(run_dir) if needs_mnist else None
        template = run.template = build_template(run_dir, solutions, options.assignment)
        if prewarm is not None:
            output, _ = prewarm.communicate()
            if prewarm.returncode == 0:
                env["XDG_CACHE_HOME"] = str(run_dir / "cache")
                readable.append(str(run_dir / "cache"))
                for dirpath, _, filenames in os.walk(run_dir / "cache"):
                    os.chmod(dirpath, 0o755)
                    for f in filenames:
                        os.chmod(os.path.join(dirpath, f), 0o644)
            else:
                log("labkit autograde: warning: MNIST could not be loaded; notebooks that need it will fail:\n  "
                    + (output.strip().splitlines() or ["?"])[-1])
        log(f"labkit autograde: {len(subs)} submissions in {submissions}, notebooks "
            + ", ".join(template.notebooks) + f"; {options.jobs} at a time")
        log(f"isolation: {sandbox.describe(config, why_not or why_not_nobody)}")

        results: dict[int, tuple[list[Row], Path | None, str]] = {}
        lock = threading.Lock()

        def job(i: int, sub: Submission):
            t0 = time.perf_counter()
            result = grade_student(sub, i, run)
            with lock:
                results[i] = result
                outcome = ", ".join(f"{r.notebook}: {r.status.split(';')[0]}" for r in result[0])
                log(f"  {sub.student}: {outcome} ({time.perf_counter() - t0:.0f} s)")

        with ThreadPoolExecutor(max_workers=options.jobs) as pool:
            for f in [pool.submit(job, i, sub) for i, sub in enumerate(subs)]:
                f.result()

        rows = [row for i in sorted(results) for row in results[i][0]]
        graded = [(subs[i].student, results[i][1]) for i in sorted(results) if results[i][1] is not None]
        class_course = keep_dir or run_dir / "class"
        try:
            build_class_course(class_course, template, graded)
            (class_course / ROWS_FILE).write_text(json.dumps([asdict(r) for r in rows], indent=1) + "\n")
            gradebooks = [class_course / "gradebook.db"]
        except Exception as e:  # the class's grading must not be lost with it
            log(f"labkit autograde: warning: the class course could not be built ({type(e).__name__}: {e}); "
                "grades.csv comes from each student's own gradebook, and there is no feedback"
                + (f" and no usable kept course in {keep_dir}" if keep_dir else ""))
            gradebooks, class_course = [src / "gradebook.db" for _, src in graded], None
        os.umask(old_umask)
        out.mkdir(parents=True, exist_ok=True)
        logs = out / "logs"
        if logs.exists():
            shutil.rmtree(logs)
        logs.mkdir()
        for i in sorted(results):
            (logs / f"{subs[i].student}.txt").write_text(results[i][2])
        table = write_grades(gradebooks, template, rows, out / "grades.csv")
        n = write_feedback(class_course, run_dir, template.assignment, out / "feedback", log) if class_course else 0
        log(f"wrote {out / 'grades.csv'} ({len(table)} rows) and {n} feedback pages in {out / 'feedback'} "
            f"({time.perf_counter() - started:.0f} s)")
        if keep_dir is not None:
            log(f"kept the class course in {keep_dir} (nbgrader's formgrader: see docs/instructors.md)")
        return table
    finally:
        os.umask(old_umask)
        shutil.rmtree(run_dir, ignore_errors=True)


def _kernel_user(run: Run) -> tuple[tuple[int, int] | None, str | None]:
    """(user, why not nobody): in basic mode as root, nobody when nobody can start the Python
    environment (it may live in a folder only root can read, such as /root)."""
    user = sandbox.nobody_ids()
    if run.mode != "basic" or user is None:
        return None, None
    config = sandbox.make_config(mode="basic", scratch=run.dir / "scratch", ipc_dir=run.dir / "ipc",
                                 record=run.dir / "check.jsonl", memory_mb=run.options.memory_mb,
                                 cpu_seconds=60, wall_seconds=120, threads=1, env=run.env,
                                 readable=run.readable, hidden=run.hidden, user=user)
    problem = sandbox.check(config)
    if problem is None:
        return user, None
    return None, f"nobody cannot start {sys.executable} ({problem.splitlines()[-1][:120]})"


def export(course: str | os.PathLike, out: str | os.PathLike = "grades", log=print) -> list[list[str]]:
    """Rewrite ``out/grades.csv`` and ``out/feedback/`` from a course kept with ``--keep``
    (after grading written answers in nbgrader's formgrader)."""
    import nbformat

    course, out = Path(course).resolve(), Path(out).resolve()
    rows_file = course / ROWS_FILE
    if not rows_file.is_file():
        raise ValueError(f"{course} is not a course kept by `labkit autograde --keep` (no {ROWS_FILE})")
    rows = [Row(**r) for r in json.loads(rows_file.read_text())]
    assignments = [p.name for p in (course / "source").iterdir() if p.is_dir()]
    if len(assignments) != 1:
        raise ValueError(f"{course}/source/ must hold exactly one assignment")
    assignment = assignments[0]
    names = sorted(p.stem for p in (course / "release" / assignment).glob("*.ipynb"))
    release = {n: nbformat.read(course / "release" / assignment / f"{n}.ipynb", as_version=4) for n in names}
    cells = {n: [m["grade_id"] for c in release[n].cells if (m := _nbgrader_meta(c)) and m.get("grade")] for n in names}
    max_score = {n: {m["grade_id"]: float(m.get("points", 0)) for c in release[n].cells
                     if (m := _nbgrader_meta(c)) and m.get("grade")} for n in names}
    template = Template(course, assignment, names, release, {}, cells, max_score)
    table = write_grades([course / "gradebook.db"], template, rows, out / "grades.csv")
    with tempfile.TemporaryDirectory(prefix="labkit-export-") as tmp:
        n = write_feedback(course, Path(tmp), assignment, out / "feedback", log)
    log(f"wrote {out / 'grades.csv'} ({len(table)} rows) and {n} feedback pages in {out / 'feedback'}")
    return table


def _cmd_autograde(args) -> int:
    if args.from_course:
        if args.submissions:
            raise ValueError("give either SUBMISSIONS or --from-course, not both")
        export(args.from_course, args.out)
        return 0
    if not args.submissions:
        raise ValueError("SUBMISSIONS is required (a folder with one folder or .zip per student)")
    options = Options(assignment=args.assignment, timeout=args.timeout, memory_mb=args.memory,
                      cpu_seconds=args.cpu_limit, jobs=args.jobs, sandbox=args.sandbox)
    autograde(args.submissions, solutions=args.solutions, out=args.out, keep=args.keep, options=options)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "autograde",
        help="grade a class's submissions with nbgrader, each student in a sandbox",
        description=__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("submissions", nargs="?", type=Path, metavar="SUBMISSIONS",
                   help="folder with one folder or .zip of notebooks per student")
    p.add_argument("--out", type=Path, default=Path("grades"), metavar="DIR",
                   help="where grades.csv, feedback/ and logs/ go (default: grades/)")
    p.add_argument("--solutions", type=Path, default=None, metavar="DIR",
                   help="the instructor's notebooks (default: the checkout's solutions/)")
    p.add_argument("--assignment", default=ASSIGNMENT, help="nbgrader assignment name (default: lab)")
    p.add_argument("--timeout", type=int, default=Options.timeout, metavar="S",
                   help="seconds a cell may run (default: 120)")
    p.add_argument("--memory", type=int, default=Options.memory_mb, metavar="MB",
                   help="address-space limit of a kernel in MB (default: 8192; torch reserves about 3500)")
    p.add_argument("--cpu-limit", type=int, default=Options.cpu_seconds, metavar="S",
                   help="processor seconds a notebook's kernel may use (default: 600)")
    p.add_argument("--jobs", "-j", type=int, default=1, metavar="N", help="students graded at once (default: 1)")
    p.add_argument("--sandbox", choices=("auto", "bwrap", "basic"), default="auto",
                   help="kernel isolation: bwrap (bubblewrap), basic (limits only), auto (bwrap when it works)")
    p.add_argument("--keep", type=Path, default=None, metavar="DIR",
                   help="keep the class's nbgrader course in DIR (for the formgrader)")
    p.add_argument("--from-course", type=Path, default=None, metavar="DIR",
                   help="grade nothing: rewrite grades.csv and feedback from a course kept with --keep")
    p.set_defaults(func=_cmd_autograde)
