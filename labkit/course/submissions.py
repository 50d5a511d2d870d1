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

import functools
import io
import os
import re
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

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
    nbytes: int = 0                                        # bytes in files, against MAX_SUBMISSION_BYTES
    # what the platform and the roster say (labkit.course.layouts, labkit.course.roster)
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


def add_entry(sub: Submission, rel: str, size: int, read) -> bool:
    """One file of a submission read by a layout (labkit.course.layouts): a notebook or a zip of
    them, under the same budgets as a folder's files. ``read()`` gives its bytes. False: neither."""
    if rel.lower().endswith(".ipynb"):
        _add_notebook(sub, rel, size, read)
    elif rel.lower().endswith(".zip"):
        _add_zip(sub, rel, size, read)
    else:
        return False
    return True


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

