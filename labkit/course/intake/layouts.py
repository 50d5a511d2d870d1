"""How learning platforms lay out a class's submissions, detected and read into Submissions.

Owns: :data:`LAYOUTS`, :func:`detect_layout` and :func:`read_submissions`.

- ``folders`` (alias ``moodle``): one folder or zip per student, read by
  :func:`labkit.course.intake.submissions.find_submissions`. Moodle's
  ``Full Name_12345_assignsubmission_file_`` gives the name and the
  participant number; a GitHub Classroom clone (``lab-alice`` with a
  ``.git`` folder) gives the user name after the assignment's prefix.
- ``canvas``: Canvas's flat download, as a folder or as the one zip Canvas
  gives: ``smithjane_12345_67890_1_pca.ipynb`` is (name, ``LATE``?, user id,
  submission id, file). Files are grouped by user id; the student id is
  ``smithjane_12345``. A file submitted again gets a counter
  (``1_pca-1.ipynb``): the highest counter is graded, and the row says so.

Nothing here runs or writes anything; files are read with the budgets of
:mod:`labkit.course.intake.submissions`.
"""
from __future__ import annotations

import functools
import os
import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

from labkit.course.intake import unzip
from labkit.errors import OptionError
from labkit.course.intake.submissions import (ARCHIVE_ERRORS, SKIP_PARTS, Submission, add_entry, file_chunks,
                                              find_submissions, number_duplicates, open_regular, safe_student_id)

LAYOUTS = ("auto", "folders", "moodle", "canvas")
CANVAS_NAME = re.compile(r"^(?P<name>[^_/]+)_(?:(?P<late>LATE)_)?(?P<uid>\d+)_(?P<sid>\d+)_(?P<file>[^/]+)$")
MOODLE_NAME = re.compile(r"^(?P<name>.+)_(?P<pid>\d+)_assignsubmission_\w*?(?:\.zip)?$", re.IGNORECASE)
_COUNTER = re.compile(r"^(?P<base>.+)-(?P<n>\d+)$")


@dataclass
class _Entry:
    """One top-level file of a Canvas download (a folder's file or a member of its zip)."""

    name: str
    size: int
    chunks: object  # cap -> its bytes in pieces, at most cap of them (add_entry's ``chunks``)
    plain: bool   # a regular file (not a folder, a link or a nested path)


def _visible(name: str) -> bool:
    return not name.startswith(".") and name not in SKIP_PARTS


def _canvas_zip(folder: Path) -> Path | None:
    """The folder's one entry, when it is a zip of Canvas-named files (Canvas's download, unpacked once)."""
    entries = [p for p in folder.iterdir() if _visible(p.name)]
    if len(entries) != 1 or entries[0].suffix.lower() != ".zip" or not entries[0].is_file() or entries[0].is_symlink():
        return None
    try:
        with open_regular(entries[0]) as f, zipfile.ZipFile(f) as zf:
            names = zf.namelist()
    except ARCHIVE_ERRORS:
        return None
    return entries[0] if any(CANVAS_NAME.match(n) and n.lower().endswith(".ipynb") for n in names) else None


def detect_layout(folder: str | os.PathLike) -> str:
    """``canvas`` when a top-level notebook (or the one zip's) is named as Canvas names them, else ``folders``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise OptionError(f"no submissions folder {folder}")
    flat = [p for p in folder.iterdir() if _visible(p.name) and p.is_file() and not p.is_symlink()]
    if any(CANVAS_NAME.match(p.name) and p.suffix.lower() == ".ipynb" for p in flat) or _canvas_zip(folder):
        return "canvas"
    return "folders"


def read_submissions(folder: str | os.PathLike, layout: str = "auto",
                     expected: list[str] | None = None) -> tuple[list[Submission], str]:
    """(Submissions sorted by student id, the layout read). ``expected``: the assignment's notebook
    names (without .ipynb); a Canvas counter is never stripped from one of them (``part-2``)."""
    if layout not in LAYOUTS:
        raise OptionError(f"--layout {layout!r}: choose one of {', '.join(LAYOUTS)}")
    layout = detect_layout(folder) if layout == "auto" else layout
    if layout == "canvas":
        return _read_canvas(Path(folder), set(expected or ())), layout
    subs = find_submissions(folder, read=False)  # each is read when its job starts
    _platform_names(Path(folder), subs)
    return subs, layout


def _platform_names(folder: Path, subs: list[Submission]) -> None:
    """Name and participant from Moodle's folder names; the user name of GitHub Classroom clones."""
    clones = {s.source for s in subs if (folder / s.source / ".git").is_dir()}
    prefix = os.path.commonprefix(sorted(clones)) if len(clones) > 1 else ""
    prefix = prefix[: prefix.rfind("-") + 1]  # "lab-" of lab-alice, lab-bob (an assignment slug may hold "-")
    for sub in subs:
        moodle = MOODLE_NAME.match(sub.source)
        if moodle:
            sub.name, sub.platform_id = moodle["name"], moodle["pid"]
        elif sub.source in clones and prefix:
            sub.platform_id = sub.source[len(prefix):]


def _folder_entries(folder: Path) -> list[_Entry]:
    return [_Entry(p.name, p.lstat().st_size, file_chunks(p), stat.S_ISREG(p.lstat().st_mode))
            for p in sorted(folder.iterdir(), key=lambda p: p.name) if _visible(p.name)]


def _zip_entries(zf: zipfile.ZipFile) -> list[_Entry]:
    out = []
    for info in sorted(zf.infolist(), key=lambda i: i.filename):
        name = info.filename.replace("\\", "/")
        if _visible(name.split("/")[0]) and not info.is_dir():
            out.append(_Entry(name, info.file_size, functools.partial(unzip.iter_member, zf, info), "/" not in name))
    return out


def _version(stem: str, expected: set[str]) -> tuple[str, int]:
    """(notebook name, counter): ``1_pca-2`` -> (``1_pca``, 2); an expected name keeps its own ``-N``."""
    m = _COUNTER.match(stem)
    if stem in expected or m is None:
        return stem, 0
    return m["base"], int(m["n"])


def _read_canvas(folder: Path, expected: set[str]) -> list[Submission]:
    archive = _canvas_zip(folder)
    if archive is None:
        return _group_canvas(_folder_entries(folder), expected)
    try:
        with open_regular(archive) as f, zipfile.ZipFile(f) as zf:
            return _group_canvas(_zip_entries(zf), expected)
    except ARCHIVE_ERRORS as e:
        return [Submission(student=safe_student_id(archive.name), source=archive.name, problem=f"invalid zip: {e}")]


def _group_canvas(entries: list[_Entry], expected: set[str]) -> list[Submission]:
    subs: dict[str, Submission] = {}
    strays: list[Submission] = []
    files: dict[str, list[tuple[re.Match, _Entry]]] = {}
    for entry in entries:
        m = CANVAS_NAME.match(entry.name) if entry.plain else None
        if m is None:
            why = ("ignored: not named as Canvas names a submitted file (name_userid_submissionid_file)"
                   if entry.plain else "ignored: not a file of Canvas's flat download")
            strays.append(Submission(student=safe_student_id(entry.name), source=entry.name, problem=why,
                                     ignored=True))
            continue
        uid = m["uid"]
        if uid not in subs:
            subs[uid] = Submission(student=safe_student_id(f"{m['name']}_{uid}"), source=entry.name,
                                   name=m["name"], platform_id=uid)
        files.setdefault(uid, []).append((m, entry))
    for uid, found in files.items():
        _canvas_student(subs[uid], found, expected)
    return number_duplicates(list(subs.values()) + strays)


def _canvas_student(sub: Submission, found: list[tuple[re.Match, _Entry]], expected: set[str]) -> None:
    """One student's files: the newest version of each notebook (highest counter, then submission id)."""
    versions: dict[str, list[tuple[int, int, re.Match, _Entry]]] = {}
    for m, entry in found:
        name = m["file"]
        if name.lower().endswith(".ipynb"):
            base, n = _version(name[: -len(".ipynb")], expected)
            versions.setdefault(base, []).append((n, int(m["sid"]), m, entry))
        elif not add_entry(sub, name, entry.size, entry.chunks):  # a zip of notebooks is read as one
            sub.notes.append(f"{entry.name} ignored (not a notebook or a zip)")
        elif m["late"]:
            sub.late = True
    for base, options in sorted(versions.items()):
        options.sort(key=lambda v: v[:2])
        _, _, m, entry = options[-1]
        rel = f"{base}.ipynb"
        add_entry(sub, rel, entry.size, entry.chunks)
        notes = sub.file_notes.setdefault(rel, [])
        if len(options) > 1:
            older = ", ".join(o[2]["file"] for o in options[:-1])
            notes.append(f"graded the newest of {len(options)} versions, {m['file']} (not graded: {older})")
            sub.attention.append(f"{base}: newest of {len(options)} versions graded")
        if m["late"]:
            notes.append("submitted LATE (Canvas)")
            sub.late = True
