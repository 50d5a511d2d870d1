"""The marks of the written answers: ``labkit-marks.json`` and the gradebook's manual scores.

Owns: :class:`Mark`, :class:`Store` (load, :meth:`Store.save` with optimistic concurrency,
:meth:`Store.reapply` after the gradebook was rebuilt) and :func:`key`.

``<course>/labkit-marks.json`` is ``{"format": 1, "answers": {"<student>/<notebook>/<grade_id>":
{"items": [...], "adjustment": 0.0, "score": 3.0, "comment": "...", "revision": 4,
"answer_sha256": "<hex>", "to_remark": false}}}``. The score and the comment are written into
the course's nbgrader gradebook too (``Grade.manual_score``, ``Comment.manual_comment``), which
stays the source of truth for points (``labkit autograde --from-course`` reads it).

A save names the revision each answer had when the marker saw it; when another marker saved
since, nothing is written and the current marks come back as a conflict. Saves are serialised
by a lock file; the gradebook is committed first, then the marks file replaced in one rename, so
a failure leaves the two as they were.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

from labkit.course.grading.kept import MARKS_FILE
from labkit.errors import OptionError

FORMAT = 1
_LOCK = threading.Lock()


def key(student: str, notebook: str, grade_id: str) -> str:
    return f"{student}/{notebook}/{grade_id}"


@dataclass
class Mark:
    items: list[str] = field(default_factory=list)
    adjustment: float = 0.0
    score: float = 0.0
    comment: str = ""
    revision: int = 0
    answer_sha256: str = ""
    to_remark: bool = False


@dataclass(frozen=True)
class Change:
    """What a marker asks for: the same items, adjustment and comment for every answer of ``revisions``
    (answer key -> the revision the marker saw, 0 for never marked)."""

    revisions: dict[str, int]
    items: list[str]
    adjustment: float
    comment: str


class Store:
    """The marks of the class course ``course`` (assignment ``assignment``)."""

    def __init__(self, course: Path, assignment: str):
        self.course, self.assignment = Path(course), assignment
        self.path = self.course / MARKS_FILE

    def load(self) -> dict[str, Mark]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise OptionError(f"{self.path} is not valid JSON ({e.msg}, line {e.lineno}): restore it "
                              "from a backup or move it away to start the marking again") from None
        if data.get("format") != FORMAT:
            raise OptionError(f"{self.path} has format {data.get('format')!r}; this labkit reads format {FORMAT}")
        return {k: Mark(**v) for k, v in data.get("answers", {}).items()}

    @contextlib.contextmanager
    def _locked(self):
        with _LOCK, open(self.course / (MARKS_FILE + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def save(self, change: Change, points: dict[str, float], maximum: float,
             shas: dict[str, str]) -> tuple[dict[str, Mark], bool]:
        """Apply ``change`` (``points``: each rubric item's points; ``maximum``: the question's;
        ``shas``: answer key -> the answer's sha256). Returns (the marks of those answers, True) when saved, or (the current
        marks of the answers another marker changed meanwhile, False) when nothing was written.
        OptionError for an item that is not the rubric's, an adjustment without a comment, or a
        score outside 0 to ``maximum``."""
        unknown = [i for i in change.items if i not in points]
        if unknown:
            raise OptionError(f"rubric item {unknown[0]!r} is not one of this question's ({', '.join(points)})")
        if change.adjustment and not change.comment.strip():
            raise OptionError("an adjustment needs a comment that says why")
        score = sum(points[i] for i in change.items) + change.adjustment
        if not 0 <= score <= maximum:
            raise OptionError(f"the score would be {score:g}, outside 0 to {maximum:g}: change the adjustment")
        with self._locked():
            marks = self.load()
            stale = {k: marks[k] for k, rev in change.revisions.items() if k in marks and marks[k].revision != rev
                     or k not in marks and rev != 0}
            if stale:
                return stale, False
            saved = {}
            for k in change.revisions:
                rev = marks[k].revision + 1 if k in marks else 1
                saved[k] = marks[k] = Mark(sorted(change.items, key=int), float(change.adjustment), float(score),
                                           change.comment, rev, shas.get(k, ""), False)
            self._commit(marks, saved)
        return saved, True

    def reapply(self, shas: dict[str, str]) -> int:
        """Write every mark whose answer is unchanged (``shas``) into the gradebook again (after
        autograde rebuilt it); a changed answer is flagged ``to_remark``. Returns how many were written."""
        with self._locked():
            marks = self.load()
            for k, m in marks.items():
                m.to_remark = shas.get(k, m.answer_sha256) != m.answer_sha256
            current = {k: m for k, m in marks.items() if not m.to_remark}
            self._commit(marks, current)
        return len(current)

    def _commit(self, marks: dict[str, Mark], changed: dict[str, Mark]) -> None:
        data = {"format": FORMAT, "answers": {k: asdict(m) for k, m in sorted(marks.items())}}
        fd, tmp = tempfile.mkstemp(prefix=".labkit-marks-", dir=self.course)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1)
                f.write("\n")
            self._write_gradebook(changed)
            os.replace(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def _write_gradebook(self, changed: dict[str, Mark]) -> None:
        from nbgrader.api import Gradebook

        from labkit.course.nbgrader import COURSE_ID

        with Gradebook("sqlite:///" + str((self.course / "gradebook.db").resolve()), COURSE_ID) as gb:
            try:
                for k, m in changed.items():
                    student, notebook, grade_id = k.split("/")
                    gb.find_grade(grade_id, notebook, self.assignment, student).manual_score = m.score
                    gb.find_comment(grade_id, notebook, self.assignment, student).manual_comment = m.comment
                gb.db.commit()
            except Exception:
                gb.db.rollback()
                raise
