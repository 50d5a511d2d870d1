"""What a run on the term's course writes: the whole course, whoever this run graded.

Owns: :func:`write_term` (grades.csv, summary.csv with the answers waiting to be re-marked, the
import files, the feedback pages and every student's last log, all from the course's gradebook and
manifest; ``labkit-rows.json`` and ``labkit-students.json`` kept for ``--from-course``) and
:func:`write_changes` (``changes.csv``: every cell whose points this run changed, with the reason).
"""
from __future__ import annotations

import csv
import io
import os
import shutil
import time
from pathlib import Path

from labkit.course.grading import kept, termbook
from labkit.course.grading.exports import write_outputs
from labkit.course.grading.gradebook import (format_points, grade_columns, line_as_csv, make_private,
                                             scores_from_gradebook, write_grades)
from labkit.course.grading.records import GradeLine, Row, Run, Settings
from labkit.course.grading.term import LOGS, Term

CHANGES_COLUMNS = ("student", "notebook", "cell", "old_points", "new_points", "reason")


def scores(term: Term, run: Run) -> dict[tuple[str, str], dict]:
    """The course's points now ((student, notebook) -> grade id -> (score or None, pending))."""
    return scores_from_gradebook(term.db, run.template.assignment, run.template)


def write_changes(path: Path, before: dict, after: dict, term: Term, run: Run) -> int:
    """changes.csv: for every student this run graded, each cell whose points changed. Returns its rows."""
    rows = []
    for student in sorted(term.reasons):
        for name in run.template.notebooks:
            old, new = before.get((student, name), {}), after.get((student, name), {})
            for gid in run.template.cells[name]:
                was, now = (format_points(x[0]) if x else "" for x in (old.get(gid), new.get(gid)))
                if was != now:
                    rows.append([student, name, gid, was, now, term.reasons[student]])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CHANGES_COLUMNS)
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return len(rows)


def _to_remark(entries: dict[str, dict], lines: list[GradeLine]) -> dict[str, list[str]]:
    """student -> "notebook/grade_id (hand grade P set aside)" for each answer still waiting to be re-marked."""
    pending = {(line.student, line.notebook, gid) for line in lines for gid in line.pending}
    out: dict[str, list[str]] = {}
    for student, entry in entries.items():
        for key, hand in sorted(entry.get("to_remark", {}).items()):
            name, gid = key.split("/", 1)
            if (student, name, gid) in pending:
                score = format_points(hand.get("score")) or "none"
                out.setdefault(student, []).append(f"{key} (hand grade {score} set aside)")
    return out


def write_term(term: Term, settings: Settings, layout: str, run: Run, before: dict, started: float,
               log) -> list[list[str]]:
    """The whole course's outputs in ``settings.out``. Returns grades.csv's rows (without the header)."""
    out, template = settings.out, run.template
    entries = termbook.entries(term.db)
    rows = [Row(**r) for s in sorted(entries) for r in entries[s]["rows"]]
    subs = [kept.submission_from(entries[s]["submission"]) for s in sorted(entries)]
    kept.save(term.course, rows, subs, layout, settings.lms, settings.lms_column)
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    if (out / "logs").exists():
        shutil.rmtree(out / "logs")
    shutil.copytree(term.course / LOGS, out / "logs") if (term.course / LOGS).is_dir() else (out / "logs").mkdir()
    lines = write_grades([term.db], template, rows, out / "grades.csv")
    changed = write_changes(out / "changes.csv", before, scores(term, run), term, run)
    remark = _to_remark(entries, lines)
    for sub in subs:
        if sub.student in remark:
            sub.attention.append("to re-mark: " + ", ".join(remark[sub.student]))
    written = write_outputs(lines, subs, template, out, settings.lms, settings.lms_column, layout, log)
    from labkit.course.report import write_reports  # feedback pages, class report, returns: report/ builds on grading/
    n = write_reports(term.course, out, lines, log)
    log(f"wrote {', '.join(str(p) for p in [out / 'grades.csv', out / 'changes.csv', *written])} "
        f"({len(lines)} rows, {changed} changed cells) and {n} feedback pages in {out / 'feedback'} "
        f"({time.perf_counter() - started:.0f} s); the course {term.course} holds {len(entries)} students")
    make_private(out, term.course)
    return [line_as_csv(line, grade_columns(template)) for line in lines]
