"""The feedback pages returned to a class in one upload, named as each platform names its students.

Owns: :func:`moodle_folder`, :func:`write_moodle_zip` (``feedback-moodle.zip`` for Moodle's
*Upload multiple feedback files in a zip*), :func:`write_folders` (``feedback-canvas/<Canvas user
id>/``, ``feedback-github/<GitHub user name>/``) and :func:`write_returns`, which writes those a
run calls for.

Moodle matches each folder of the zip to a participant by its name, as in Moodle's own download:
``Full Name_<participant id>_assignsubmission_file_`` (Moodle splits it on ``_``: the second part
is the participant id). The participant ids come from the download's folder names (the intake
reads them); a student without one is left out, and the run says so.
"""
from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from labkit.course.intake.layouts import MOODLE_NAME

MOODLE_ZIP = "feedback-moodle.zip"
_EPOCH = (2000, 1, 1, 0, 0, 0)  # one date for every entry: the same pages give the same bytes


def moodle_folder(name: str, participant: str) -> str:
    """The folder Moodle's feedback zip gives a participant (no ``_`` or ``/`` in the name)."""
    clean = " ".join(name.replace("_", " ").replace("/", " ").split()) or "Participant"
    return f"{clean}_{participant}_assignsubmission_file_"


def _moodle_ids(sub) -> tuple[str, str] | None:
    match = MOODLE_NAME.match(sub.source or "")
    if match:
        return match["name"], match["pid"]
    if sub.platform_id.isdigit():
        return sub.name or sub.student, sub.platform_id
    return None


def write_moodle_zip(pages: dict[str, dict[str, str]], subs: list, path: Path, log=print) -> Path:
    """``path``: one folder per participant (:func:`moodle_folder`) holding the student's pages."""
    by_student = {s.student: s for s in subs}
    left_out = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for student in sorted(pages):
            ids = _moodle_ids(by_student[student]) if student in by_student else None
            if ids is None:
                left_out.append(student)
                continue
            for name, text in sorted(pages[student].items()):
                info = zipfile.ZipInfo(f"{moodle_folder(*ids)}/{name}", _EPOCH)
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, text.encode("utf-8"))
    if left_out:
        log(f"labkit autograde: warning: {path.name}: no Moodle participant id for {', '.join(left_out)} "
            "(left out: their submissions were not in Moodle's download folders)")
    return path


def platform_ids(subs: list, layout: str, lms: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """platform -> {student: the id that platform knows them by}: Canvas's user ids (Canvas's
    download, or a Canvas roster), GitHub Classroom's user names (its clones)."""
    out: dict[str, dict[str, str]] = {"canvas": {}, "github": {}}
    for sub in subs:
        fields = getattr(sub.person, "fields", None) or {}
        if str(fields.get("ID", "")).isdigit():
            out["canvas"][sub.student] = str(fields["ID"])
        elif layout == "canvas" and sub.platform_id.isdigit():
            out["canvas"][sub.student] = sub.platform_id
        elif layout != "canvas" and sub.platform_id and not MOODLE_NAME.match(sub.source or ""):
            out["github"][sub.student] = sub.platform_id
    if "canvas" not in lms and layout != "canvas":
        out["canvas"] = {}
    return {k: v for k, v in out.items() if v}


def write_folders(pages: dict[str, dict[str, str]], ids: dict[str, str], folder: Path) -> Path:
    """``folder/<id>/`` with each student's pages."""
    if folder.exists():
        shutil.rmtree(folder)
    for student, pid in sorted(ids.items()):
        for name, text in pages.get(student, {}).items():
            (folder / pid).mkdir(parents=True, exist_ok=True)
            (folder / pid / name).write_text(text, encoding="utf-8")
    return folder


def write_returns(pages: dict[str, dict[str, str]], subs: list, layout: str, lms: tuple[str, ...], out: Path,
                  log=print) -> list[Path]:
    """What the class's platform takes in one upload; returns the paths written."""
    written = []
    if "moodle" in lms:
        written.append(write_moodle_zip(pages, subs, out / MOODLE_ZIP, log))
    for platform, ids in platform_ids(subs, layout, lms).items():
        written.append(write_folders(pages, ids, out / f"feedback-{platform}"))
    return written
