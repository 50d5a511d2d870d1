"""The term course's gradebook: one student's graded rows replaced in one transaction, hand grades kept.

Owns: the manifest's tables inside the class course's ``gradebook.db`` (:data:`TABLE`: one row per
student, what was graded and what it gave, as JSON), read by :func:`entries`;
:func:`commit_student` (the student's old submission rows deleted, the new ones copied from their
own gradebook, their hand grades put back where the answer is unchanged or set aside "to re-mark"
where it changed, and the manifest's row written, all in one SQLite transaction, so that a run
killed at any moment leaves the student either wholly in or wholly out); :func:`refresh_template`
(the assignment's cells of a regenerated template copied over the class's, the same ids).

nbgrader keys every row with a UUID; the term keeps one template gradebook for the whole term
(:mod:`labkit.course.grading.term`), so every student's gradebook shares the class's cell ids.
"""
from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

from labkit.errors import GradingError

TABLE = "labkit_term"
TEMPLATE_TABLES = ("course", "assignment", "notebook", "base_cell", "grade_cells", "solution_cells", "task_cells",
                   "source_cell")
_GRADES = """SELECT n.name, c.name, g.manual_score, g.extra_credit, g.needs_manual_grade, g.id
FROM grade g JOIN submitted_notebook sn ON g.notebook_id = sn.id JOIN notebook n ON sn.notebook_id = n.id
JOIN base_cell c ON g.cell_id = c.id JOIN submitted_assignment sa ON sn.assignment_id = sa.id
WHERE sa.student_id = ?"""
_COMMENTS = _GRADES.replace("g.manual_score, g.extra_credit, g.needs_manual_grade, g.id",
                            "g.manual_comment, g.id").replace("FROM grade g", "FROM comment g")


def _connect(db: Path) -> sqlite3.Connection:
    con = sqlite3.connect(db, timeout=60, isolation_level=None)  # transactions explicit: BEGIN ... COMMIT
    con.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (student TEXT PRIMARY KEY, entry TEXT NOT NULL)")
    return con


@contextlib.contextmanager
def _transaction(db: Path, attach: dict[str, Path]):
    """A connection to ``db`` with ``attach`` (schema name -> database) attached, inside one
    ``BEGIN IMMEDIATE`` transaction: committed when the block ends, rolled back when it raises."""
    con = _connect(db)
    try:
        for name, path in attach.items():  # not inside a transaction
            con.execute(f"ATTACH DATABASE ? AS {name}", (str(path),))
        con.execute("BEGIN IMMEDIATE")
        yield con
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise
    finally:
        con.close()


def entries(db: Path) -> dict[str, dict]:
    """The manifest: student -> what :func:`commit_student` recorded ({} before the first student)."""
    con = _connect(db)
    try:
        return {s: json.loads(e) for s, e in con.execute(f"SELECT student, entry FROM {TABLE}")}
    finally:
        con.close()


def _nbgrader_tables(con: sqlite3.Connection, schema: str) -> list[str]:
    return [r[0] for r in con.execute(
        f"SELECT name FROM {schema}.sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
        f"AND name != 'alembic_version' AND name NOT LIKE 'labkit_%'")]


def _hand_grades(con: sqlite3.Connection, student: str) -> dict[str, dict]:
    """"notebook/grade_id" -> the hand grade and comment the gradebook holds for ``student``."""
    out: dict[str, dict] = {}
    for nb, cell, score, extra, needs, _ in con.execute(_GRADES, (student,)):
        if score is not None or extra is not None:
            out.setdefault(f"{nb}/{cell}", {})
            out[f"{nb}/{cell}"].update(score=score, extra_credit=extra, needs_manual_grade=needs)
    for nb, cell, comment, _ in con.execute(_COMMENTS, (student,)):
        if comment:
            out.setdefault(f"{nb}/{cell}", {})["comment"] = comment
    return out


def _delete_student(con: sqlite3.Connection, student: str) -> None:
    assignments = "SELECT id FROM submitted_assignment WHERE student_id = ?"
    notebooks = f"SELECT id FROM submitted_notebook WHERE assignment_id IN ({assignments})"
    for table in ("grade", "comment"):
        con.execute(f"DELETE FROM {table} WHERE notebook_id IN ({notebooks})", (student,))
    con.execute(f"DELETE FROM submitted_notebook WHERE assignment_id IN ({assignments})", (student,))
    con.execute("DELETE FROM submitted_assignment WHERE student_id = ?", (student,))


def _put_back(con: sqlite3.Connection, student: str, kept: dict[str, dict]) -> None:
    """Write ``kept`` hand grades and comments onto the student's new rows."""
    grades = {f"{nb}/{cell}": gid for nb, cell, *_, gid in con.execute(_GRADES, (student,))}
    comments = {f"{nb}/{cell}": cid for nb, cell, _, cid in con.execute(_COMMENTS, (student,))}
    for key, hand in kept.items():
        if key in grades and ("score" in hand or "extra_credit" in hand):
            con.execute("UPDATE grade SET manual_score = ?, extra_credit = ?, needs_manual_grade = ? WHERE id = ?",
                        (hand.get("score"), hand.get("extra_credit"), hand.get("needs_manual_grade", 0), grades[key]))
        if key in comments and hand.get("comment"):
            con.execute("UPDATE comment SET manual_comment = ? WHERE id = ?", (hand["comment"], comments[key]))


def commit_student(db: Path, student: str, source: Path | None, entry: dict) -> dict[str, dict]:
    """Replace ``student``'s rows in the class gradebook ``db`` by those of their own gradebook
    ``source`` (None: nothing was graded, the old rows go) and record ``entry`` (its ``answers``:
    "notebook/grade_id" -> sha256 of the answer graded), in one transaction. A hand grade or comment
    on an answer that is unchanged is put back; on a changed one it is set aside in
    ``entry["to_remark"]`` (kept, not counted). Returns the hand grades set aside by this commit."""
    with _transaction(db, {"s": source} if source is not None else {}) as con:
        old = {s: json.loads(e) for s, e in con.execute(f"SELECT student, entry FROM {TABLE} WHERE student = ?",
                                                          (student,))}.get(student, {})
        hand = _hand_grades(con, student)
        old_answers, new_answers = old.get("answers", {}), entry.get("answers", {})
        keep = {k: h for k, h in hand.items() if new_answers.get(k) == old_answers.get(k)}
        aside = {k: {**h, "answer_sha256": old_answers.get(k)} for k, h in hand.items() if k not in keep}
        to_remark = {k: v for k, v in old.get("to_remark", {}).items() if k not in hand and k in new_answers}
        entry = {**entry, "to_remark": {**to_remark, **aside}}
        _delete_student(con, student)
        if source is not None:
            for table in _nbgrader_tables(con, "s"):
                con.execute(f"INSERT OR IGNORE INTO main.{table} SELECT * FROM s.{table}")
            _put_back(con, student, keep)
        con.execute(f"INSERT OR REPLACE INTO {TABLE} (student, entry) VALUES (?, ?)", (student, json.dumps(entry)))
        return aside


_KEYS = {  # table -> the SQL of (id, what names it) in a schema
    "assignment": "SELECT id, name FROM {s}.assignment",
    "notebook": "SELECT n.id, a.name || '/' || n.name FROM {s}.notebook n JOIN {s}.assignment a ON n.assignment_id = a.id",
    "base_cell": "SELECT c.id, n.name || '/' || c.name || '/' || c.type FROM {s}.base_cell c "
                 "JOIN {s}.notebook n ON c.notebook_id = n.id",
    "source_cell": "SELECT c.id, n.name || '/' || c.name FROM {s}.source_cell c JOIN {s}.notebook n ON c.notebook_id = n.id",
}
_REFERENCES = {"assignment": [("assignment", "id"), ("notebook", "assignment_id")],
               "notebook": [("notebook", "id"), ("base_cell", "notebook_id"), ("source_cell", "notebook_id")],
               "base_cell": [("base_cell", "id"), ("grade_cells", "id"), ("solution_cells", "id"), ("task_cells", "id")],
               "source_cell": [("source_cell", "id")]}


def refresh_template(db: Path, template_db: Path) -> None:
    """Give ``template_db`` (a template regenerated after the solutions changed; nbgrader gave its
    cells new ids) the class's ids, then copy its assignment's rows (new test sources and points)
    over the class's. GradingError when a cell was added, removed or renamed."""
    with _transaction(db, {"t": template_db}) as con:
        for table, sql in _KEYS.items():
            old = {key: i for i, key in con.execute(sql.format(s="main"))}
            new = {key: i for i, key in con.execute(sql.format(s="t"))}
            if set(old) != set(new):
                what = sorted(set(old) ^ set(new))
                raise GradingError(f"{', '.join(what)} was added, removed or renamed in the solutions since this "
                                   "term's course was started; its grades cannot be carried over: start a new course "
                                   "(--course NEW_DIR) for the new version")
            for key, i in new.items():
                for ref_table, column in _REFERENCES[table]:
                    con.execute(f"UPDATE t.{ref_table} SET {column} = ? WHERE {column} = ?", (old[key], i))
        for table in TEMPLATE_TABLES:
            con.execute(f"INSERT OR REPLACE INTO main.{table} SELECT * FROM t.{table}")
