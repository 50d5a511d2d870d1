"""The term's class course: ``labkit autograde SUBMISSIONS --course DIR``, graded across the term.

Owns: the course's lock (:func:`locked`: :data:`LOCK` holds the pid, start time and host of the run
that has it; a second run refuses naming it, a lock whose process is gone is taken over with a
note); the term's template (:meth:`Term.template`: the first run's template kept in
:data:`TEMPLATE`, reused, or generated again with the same gradebook ids when the solutions
change); deciding what to grade (:meth:`Term.decide`: a student whose submitted files are
byte-identical to what was graded is skipped, unless ``--regrade`` names one of the notebooks);
committing each student where autograde receives their result (:meth:`Term.commit`, whatever the
executor: the gradebook rows and the manifest entry in one transaction,
:mod:`labkit.course.grading.termbook`). The outputs of the whole course: :mod:`labkit.course.grading.termout`.

The manifest entry of a student: ``fingerprint`` (sha256 of every submitted file, the
submission's problem and notes), ``digests`` (sha256 of each solution notebook graded against),
``rows`` (grades.csv's rows before the scores), ``submission`` (who they are), ``answers``
(sha256 of each graded cell's answer) and ``to_remark`` (hand grades set aside).
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import json
import os
import shutil
import socket
import threading
from pathlib import Path

from labkit.course.grading import assignment, termbook
from labkit.course.grading.assignment import Template
from labkit.course.grading.gradebook import SANITIZE, build_class_course
from labkit.course.grading.kept import MARKS_FILE, submission_record
from labkit.course.grading.records import StudentResult
from labkit.course.grading.sanitize import sanitize_notebook
from labkit.course.grading.seen import OUTPUTS_DIR
from labkit.course.intake.repair import nbgrader_meta
from labkit.course.intake.submissions import Submission, read_submission
from labkit.course.nbgrader import write_course_config
from labkit.errors import GradingError, OptionError

LOCK = "labkit-term.lock"
TEMPLATE = "labkit-template"   # the term's template course: every student is graded from its gradebook ids
LOGS = "labkit-logs"           # each student's last grading log
# a student's folders in the class course, replaced at each commit (OUTPUTS_DIR: what the student saw, for the
# marking page)
PARTS = ("submitted", "autograded", OUTPUTS_DIR)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _alive(holder: dict) -> bool:
    if holder.get("host") != socket.gethostname():
        return True  # another machine's process: cannot tell, so it holds the course
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def locked(course: Path, log=print):
    """Hold ``course``'s lock for the run: GradingError naming the run that holds it; a lock left
    by a process that is gone (same host) is taken over with a note."""
    course.mkdir(parents=True, exist_ok=True)
    path, me = course / LOCK, {"pid": os.getpid(), "started": _now(), "host": socket.gethostname()}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            try:
                holder = json.loads(path.read_text())
            except (OSError, ValueError):
                holder = {}  # killed while writing it
            if holder and _alive(holder):
                raise GradingError(
                    f"{course} is being graded by another run: process {holder['pid']} on {holder['host']}, "
                    f"started {holder['started']}; wait for it to finish (or, if that process is gone, "
                    f"delete {path})") from None
            log(f"labkit autograde: took over the lock of a run that is gone (process {holder.get('pid', '?')}, "
                f"started {holder.get('started', '?')}); grading what it left")
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(me) + "\n")
        break
    else:
        raise GradingError(f"could not take the lock {path}")
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(path.read_text()) == me:
                path.unlink()


def fingerprint(sub: Submission) -> dict:
    """What decides whether ``sub`` was graded already: sha256 of each of its files, its problem and notes.
    The files are read into a copy (``sub`` is read again when it is graded)."""
    probe = dataclasses.replace(sub, files=dict(sub.files), notes=list(sub.notes), file_notes=dict(sub.file_notes))
    read_submission(probe)
    return {"files": {p: _sha(b) for p, b in sorted(probe.files.items())}, "problem": probe.problem,
            "notes": probe.notes, "late": sub.late}


def answers(course: Path | None, student: str, template: Template) -> dict[str, str]:
    """"notebook/grade_id" -> sha256 of the answer a graded cell's points are for: a written answer's
    own source; for a test cell, every answer cell of its notebook."""
    import nbformat

    out: dict[str, str] = {}
    for name in template.notebooks:
        path = (course / "submitted" / student / template.assignment / f"{name}.ipynb") if course else None
        if path is None or not path.is_file():
            continue
        cells = [(nbgrader_meta(c) or {}, c.source) for c in nbformat.read(path, as_version=4).cells]
        solutions = "\x00".join(src for meta, src in cells if meta.get("solution"))
        for meta, src in cells:
            if meta.get("grade"):
                out[f"{name}/{meta['grade_id']}"] = _sha((src if meta.get("solution") else solutions).encode())
    return out


def regraded_notebooks(names: tuple[str, ...], template: Template) -> set[str]:
    """The notebooks ``--regrade`` names (a notebook, with or without .ipynb, or a graded cell's id)."""
    out = set()
    for name in names:
        stem = name[:-6] if name.endswith(".ipynb") else name
        found = {stem} if stem in template.notebooks else {nb for nb, ids in template.cells.items() if name in ids}
        if not found:
            raise OptionError(f"--regrade {name}: no notebook or graded cell of that name (notebooks: "
                              f"{', '.join(template.notebooks)}; cells: "
                              f"{', '.join(g for nb in template.notebooks for g in template.cells[nb])})")
        out |= found
    return out


class Term:
    """One run on the term's course ``course``: what it grades and each student's commit."""

    def __init__(self, course: Path, log=print):
        self.course, self.log = course, log
        self.db = course / "gradebook.db"
        self.todo: list[Submission] = []
        self.reasons: dict[str, str] = {}  # student -> new submission / resubmission / regrade
        self.prints: dict[str, dict] = {}  # student -> fingerprint (read before grading empties the files)
        self._lock = threading.Lock()

    def template(self, run_dir: Path, solutions: Path, name: str, build) -> Template:
        """The run's template: built (``build``) on the first run, else the term's, generated again
        when the solutions changed (same gradebook ids; the class's cells updated)."""
        stored, old = self.course / TEMPLATE, self.course / (TEMPLATE + ".old")
        if not stored.is_dir() and old.is_dir():  # a run killed while it replaced the template
            os.replace(old, stored)
        if not stored.is_dir():
            if self.db.is_file() and termbook.entries(self.db):
                raise GradingError(f"{self.course} holds graded students but no {TEMPLATE}/ (the term's template, "
                                   "which every later run needs): restore it from a backup, or start a new course")
            template = build(run_dir, solutions, name)
            for leftover in ("source", "release"):  # a first run killed before it was set up
                shutil.rmtree(self.course / leftover, ignore_errors=True)
            build_class_course(self.course, template, [])
            self._store(template.course)
            return template
        write_course_config(self.course, self.db, SANITIZE)  # the course may have moved since
        course = run_dir / "template"
        shutil.copytree(stored, course)
        write_course_config(course, course / "gradebook.db")
        current = {p.name: p.read_bytes() for p in sorted(solutions.glob("*.ipynb"))}
        kept = {p.name: p.read_bytes() for p in sorted((stored / "source" / name).glob("*.ipynb"))}
        if current == kept:
            return assignment.read_template(course, name)
        template = assignment.regenerate(course, run_dir, solutions, name)
        termbook.refresh_template(self.db, course / "gradebook.db")
        for part in ("source", "release"):
            shutil.rmtree(self.course / part / name, ignore_errors=True)
            shutil.copytree(course / part / name, self.course / part / name)
        self._store(course)
        self.log("labkit autograde: the solutions changed since the last run; the term's template follows them")
        return template

    def _store(self, template_course: Path) -> None:
        new, stored, old = self.course / (TEMPLATE + ".new"), self.course / TEMPLATE, self.course / (TEMPLATE + ".old")
        shutil.rmtree(new, ignore_errors=True)
        shutil.copytree(template_course, new)
        if stored.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(stored, old)
        os.replace(new, stored)
        shutil.rmtree(old, ignore_errors=True)

    def decide(self, subs: list[Submission], template: Template, regrade: tuple[str, ...]) -> list[Submission]:
        """The submissions this run grades (in :attr:`todo`, each one's reason in :attr:`reasons`)."""
        again, graded = regraded_notebooks(regrade, template), termbook.entries(self.db)
        digests = {n: _sha(json.dumps(template.source[n], sort_keys=True).encode()) for n in template.notebooks}
        stale: dict[str, int] = {}
        for sub in subs:
            entry, self.prints[sub.student] = graded.get(sub.student), fingerprint(sub)
            if entry is None:
                reason = "new submission"
            elif sub.missing:  # on the roster and absent from this batch: what the course holds stays
                continue
            elif entry["fingerprint"] != self.prints[sub.student]:
                reason = "resubmission"
            elif again:
                reason = "regrade"
            else:
                for n in (n for n in template.notebooks if entry["digests"].get(n) not in (None, digests[n])):
                    stale[n] = stale.get(n, 0) + 1
                continue
            self.todo.append(sub)
            self.reasons[sub.student] = reason
        self.digests = digests
        counts = {r: [s for s, why in self.reasons.items() if why == r] for r in ("new submission", "resubmission", "regrade")}
        said = "; ".join(f"{r}: {', '.join(s)}" for r, s in counts.items() if s)
        self.log(f"labkit autograde: course {self.course}: grading {len(self.todo)} of {len(subs)} submissions"
                 + (f" ({said})" if said else "") + f"; {len(graded)} students in the course before this run")
        for n, k in sorted(stale.items()):
            self.log(f"labkit autograde: {n}'s solutions changed since {k} students were graded: "
                     f"--regrade {n} grades them again")
        return self.todo

    def commit(self, index: int, result: StudentResult, template: Template) -> None:
        """``result`` (of ``todo[index]``) into the course: its notebooks and log, then its gradebook rows
        and manifest entry in one transaction; the hand grades of changed answers set aside."""
        sub = self.todo[index]
        with self._lock:
            for part in PARTS:
                dest = self.course / part / sub.student
                shutil.rmtree(dest, ignore_errors=True)
                if result.course is not None and (result.course / part / sub.student).is_dir():
                    shutil.copytree(result.course / part / sub.student, dest)
            for nb in (self.course / "autograded" / sub.student).glob("*/*.ipynb"):
                sanitize_notebook(nb)
            (self.course / LOGS).mkdir(exist_ok=True)
            (self.course / LOGS / f"{sub.student}.txt").write_text(result.log, encoding="utf-8", errors="replace")
            entry = {"fingerprint": self.prints[sub.student], "digests": self.digests, "graded": _now(),
                     "reason": self.reasons[sub.student], "rows": [dataclasses.asdict(r) for r in result.rows],
                     "submission": submission_record(sub), "answers": answers(result.course, sub.student, template)}
            source = result.course / "gradebook.db" if result.course is not None else None
            aside = termbook.commit_student(self.db, sub.student, source, entry)
            if aside:
                self._mark_to_remark(sub.student, aside)
            if result.course is not None:
                shutil.rmtree(result.course, ignore_errors=True)  # in the course now

    def _mark_to_remark(self, student: str, aside: dict[str, dict]) -> None:
        """``to_remark: true`` on the marking page's entries of the answers set aside."""
        path = self.course / MARKS_FILE
        if not path.is_file():
            return
        record = json.loads(path.read_text())
        for key in aside:
            if f"{student}/{key}" in record.get("answers", {}):
                record["answers"][f"{student}/{key}"]["to_remark"] = True
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, indent=1) + "\n")
        os.replace(tmp, path)
