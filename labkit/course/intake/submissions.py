"""Finding and reading the class's submissions, and matching their files to the assignment's notebooks.

Owns: :class:`Submission` (one student's notebooks as bytes, with notes),
:func:`find_submissions` (one per student folder or ``.zip`` in SUBMISSIONS,
plus one row-worthy entry for anything else), :func:`safe_student_id` and
:func:`match_notebooks` (which submitted file is graded as which notebook).

Nothing here runs students' code; archives are read with size budgets
(:data:`MAX_NOTEBOOK_BYTES`, :data:`MAX_SUBMISSION_BYTES`) and links are never
followed. A broken archive is reported in that student's row and never stops
the class.
"""
from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from labkit.course.intake import unzip
from labkit.errors import OptionError, SubmissionError

MAX_NOTEBOOK_BYTES = 100 << 20
MAX_SUBMISSION_BYTES = 500 << 20  # all of one student's notebooks and nested zips: a zip bomb stops here
SKIP_PARTS = ("__MACOSX", ".ipynb_checkpoints")
@dataclass
class Submission:
    student: str
    source: str                                           # its name in SUBMISSIONS
    files: dict[str, bytes] = field(default_factory=dict)  # relative path -> bytes, notebooks only
    notes: list[str] = field(default_factory=list)
    problem: str | None = None                             # the whole submission is unusable
    ignored: bool = False                                  # not a student's submission at all
    nbytes: int = 0                                        # bytes read, against MAX_SUBMISSION_BYTES
    path: Path | None = None                               # the folder or zip, until read_submission
    read: bool = False                                     # whether files holds what path holds
    # what the platform and the roster say (labkit.course.intake.layouts, labkit.course.intake.roster)
    name: str = ""                                         # the student's name, where known
    platform_id: str = ""                                  # Canvas user id, Moodle participant, GitHub user
    late: bool = False                                     # the platform marked a graded file late
    file_notes: dict[str, list[str]] = field(default_factory=dict)  # path in files -> notes for its row
    attention: list[str] = field(default_factory=list)     # short items for summary.csv's status
    person: object = None                                  # its roster.Person, when a roster was given
    missing: bool = False                                  # on the roster, nothing submitted


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
ARCHIVE_ERRORS = (zipfile.BadZipFile, OSError, ValueError, RuntimeError, EOFError, zlib.error, NotImplementedError)


def _wanted(relpath: str) -> bool:
    parts = Path(relpath).parts
    return bool(parts) and not any(p.startswith(".") or p in SKIP_PARTS for p in parts)


def _kind(mode: int) -> str:
    """What a special file is, for the note that refuses it."""
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: Path):
    """``path`` opened for reading if it is a regular file (links not followed, a FIFO never
    waited on: O_NONBLOCK); ValueError naming what it is otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise SubmissionError("a symbolic link (never followed)") from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise SubmissionError(f"{_kind(mode)}, not a regular file (refused)")
    return os.fdopen(fd, "rb")


def _room(sub: Submission, what: str) -> int:
    """How many more bytes ``what`` may have: MAX_NOTEBOOK_BYTES or what is left of the student's
    MAX_SUBMISSION_BYTES, whichever is less (0: a note says it was left out)."""
    left = MAX_SUBMISSION_BYTES - sub.nbytes
    if left <= 0:
        sub.notes.append(f"{what} was not read: the submission would exceed {MAX_SUBMISSION_BYTES >> 20} MB")
    return max(0, left)


def _too_large(sub: Submission, what: str, cap: int) -> None:
    if what.lower().endswith(".ipynb") and cap >= MAX_NOTEBOOK_BYTES:
        sub.notes.append(f"{what} is larger than {MAX_NOTEBOOK_BYTES >> 20} MB (not graded)")
    else:
        sub.notes.append(f"{what} was not read: the submission would exceed {MAX_SUBMISSION_BYTES >> 20} MB")


def _add(sub: Submission, rel: str, size: int, chunks) -> None:
    """Notebook or nested zip ``rel`` into sub, read through ``chunks(cap)`` (an iterator of bytes
    that raises unzip.TooLarge past ``cap``); ``size`` is what it declares, a hint only."""
    notebook = rel.lower().endswith(".ipynb")
    left = _room(sub, rel)
    if not left:
        return
    cap = min(left, MAX_NOTEBOOK_BYTES) if notebook else left
    if size > cap:
        return _too_large(sub, rel, cap)
    try:
        # on disk until it is all read: an entry refused at the cap never was in memory
        with tempfile.TemporaryFile() as spool:
            for piece in chunks(cap):
                spool.write(piece)
            sub.nbytes += spool.tell()
            spool.seek(0)
            if notebook:
                if rel in sub.files:  # a duplicate entry: the last one counts, once
                    sub.nbytes -= len(sub.files.pop(rel))
                sub.files[rel] = spool.read()
            else:
                with zipfile.ZipFile(spool) as zf:  # never the whole nested zip in memory
                    _read_zip(zf, f"{rel}/", sub)
    except unzip.TooLarge:
        _too_large(sub, rel, cap)
    except ARCHIVE_ERRORS as e:
        if notebook:
            raise  # the archive holding it is broken: the whole submission says so
        sub.notes.append(f"{rel}: not a valid zip ({e})")


def add_entry(sub: Submission, rel: str, size: int, chunks) -> bool:
    """One file of a submission read by a layout (labkit.course.intake.layouts): a notebook or a zip of
    them, under the same budgets as a folder's files. ``chunks(cap)`` gives its bytes in pieces
    (:func:`file_chunks`, :func:`labkit.course.intake.unzip.iter_member`). False: neither kind."""
    if not rel.lower().endswith((".ipynb", ".zip")):
        return False
    _add(sub, rel, size, chunks)
    return True


def file_chunks(path: Path):
    def chunks(cap: int):
        total = 0
        with open_regular(path) as f:
            while piece := f.read(unzip.CHUNK):
                total += len(piece)
                if total > cap:
                    raise unzip.TooLarge(f"more than {cap} bytes")
                yield piece
    return chunks


def _read_zip(zf: zipfile.ZipFile, prefix: str, sub: Submission) -> None:
    entries: dict[str, list[zipfile.ZipInfo]] = {}
    for info in zf.infolist():
        name = info.filename.replace("\\", "/")
        rel = "/".join(p for p in name.split("/") if p not in ("", ".", ".."))
        if not info.is_dir() and _wanted(rel) and rel.lower().endswith((".ipynb", ".zip")):
            entries.setdefault(rel, []).append(info)
    for rel in sorted(entries):
        if len(entries[rel]) > 1:  # what an unzip tool leaves: the last one
            sub.notes.append(f"{prefix}{rel}: {len(entries[rel])} entries of that name in the zip (the last was read)")
        info = entries[rel][-1]
        if rel.lower().endswith(".zip") and prefix:
            continue  # one level of nesting only
        _add(sub, prefix + rel, info.file_size, lambda cap, info=info: unzip.iter_member(zf, info, cap))


def _read_folder(folder: Path, sub: Submission) -> None:
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if not _wanted(rel):
            continue
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode) or stat.S_ISDIR(mode):
            continue  # links are never followed: they could point at anything on this machine
        if not stat.S_ISREG(mode):
            sub.notes.append(f"{rel}: {_kind(mode)}, not a regular file (refused)")
        elif rel.lower().endswith((".ipynb", ".zip")):
            _add(sub, rel, path.lstat().st_size, file_chunks(path))


def read_submission(sub: Submission) -> Submission:
    """Read ``sub.path`` (a folder or zip) into sub.files, within the size budgets; a broken
    archive becomes sub.problem. Reading twice does nothing."""
    if sub.read or sub.path is None or sub.problem:
        return sub
    sub.read = True
    try:
        if sub.path.is_dir() and not sub.path.is_symlink():
            _read_folder(sub.path, sub)
        else:
            with open_regular(sub.path) as f, zipfile.ZipFile(f) as zf:
                _read_zip(zf, "", sub)
    except ARCHIVE_ERRORS as e:
        sub.problem = f"invalid zip: {e}" if sub.source.lower().endswith(".zip") else f"could not be read: {e}"
    return sub


def find_submissions(folder: str | os.PathLike, read: bool = True) -> list[Submission]:
    """Every entry of ``folder``: one Submission per student folder or zip, plus one (with a
    ``problem``) for anything else, so that nothing goes unreported. Sorted by student id.
    With ``read=False`` the files are read later, one student at a time (:func:`read_submission`)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise OptionError(f"no submissions folder {folder}")
    subs = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.startswith(".") or entry.name in SKIP_PARTS:
            continue
        sub = Submission(student=safe_student_id(entry.name), source=entry.name, path=entry)
        mode = entry.lstat().st_mode
        if stat.S_ISLNK(mode):
            sub.problem, sub.ignored = "ignored: a symbolic link, not a folder or .zip", True
        elif not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
            sub.problem, sub.ignored = f"refused: {_kind(mode)}, not a folder or .zip", True
        elif stat.S_ISREG(mode) and entry.suffix.lower() != ".zip":
            sub.problem, sub.ignored = "ignored: not a folder or .zip of notebooks", True
        subs.append(read_submission(sub) if read else sub)
    return number_duplicates(subs)


def number_duplicates(subs: list[Submission]) -> list[Submission]:
    """Two entries with the same id: the second becomes id-2, ... (with a note). Sorted by id."""
    seen: dict[str, int] = {}
    for sub in subs:
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

