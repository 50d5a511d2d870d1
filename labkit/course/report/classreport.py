"""The class report: where a class lost its points, beside grades.csv.

Owns: :func:`class_numbers` (every number of the report, as rows of ``class-report.csv``) and
:func:`write_class_report` (``class-report.html`` and ``class-report.csv``, the same numbers).

- the distribution of scores per notebook and for the lab (figures with alt text, and tables);
- per autograded cell: how many of the class lost points there, and the named mistakes its
  checks reported (:mod:`labkit.checks`' record in the autograded notebooks), most common first;
- per written question: the distribution of marks and how often each rubric item was applied
  (``labkit-marks.json``);
- the notebooks that were not simply graded (errors, timeouts, set aside, missing), per student.
"""
from __future__ import annotations

import csv
import html
import io
from collections import Counter
from pathlib import Path

from labkit.course.report.feedback import page, points
from labkit.course.report.figures import bar_chart
from labkit.course.report.graded import Class

COLUMNS = ("section", "notebook", "cell", "what", "count", "of")
NO_NAME = "(no named mistake)"
NOT_WRITTEN = "(not written)"


def _float(text: str) -> float | None:
    return float(text) if text not in ("", None) else None


def _scored(lines: list, notebook: str) -> list:
    return [ln for ln in lines if ln.notebook == notebook and ln.total != ""]


def _distribution_rows(klass: Class, lines: list) -> list[tuple]:
    rows = []
    lab: dict[str, float] = {}
    for nb in klass.notebooks:
        scored = _scored(lines, nb)
        for score, n in sorted(Counter(float(ln.total) for ln in scored).items()):
            rows.append(("notebook score", nb, "", points(score), n, len(scored)))
        for ln in scored:
            lab[ln.student] = lab.get(ln.student, 0.0) + float(ln.total)
    for score, n in sorted(Counter(lab.values()).items()):
        rows.append(("lab score", "", "", points(score), n, len(lab)))
    return rows


def _mistake(task) -> str:
    if task.mistake:
        return task.mistake
    return NOT_WRITTEN if task.message.startswith("not written") else NO_NAME


def _cell_rows(klass: Class, lines: list) -> list[tuple]:
    rows = []
    for nb in klass.notebooks:
        scored = _scored(lines, nb)
        graded = [g for (_, name), g in sorted(klass.graded.items()) if name == nb]
        for gid, maximum in klass.max_score.get(nb, {}).items():
            if klass.kinds[nb].get(gid) != "test":
                continue
            lost = sum(1 for ln in scored if (_float(ln.points.get(gid, "")) or 0.0) < maximum)
            rows.append(("lost points", nb, gid, "", lost, len(scored)))
            mistakes = Counter(_mistake(g.tasks[gid]) for g in graded if gid in g.tasks and g.tasks[gid].failed)
            rows += [("mistake", nb, gid, what, n, lost) for what, n in
                     sorted(mistakes.items(), key=lambda kv: (-kv[1], kv[0]))]
    return rows


def _written_rows(klass: Class) -> list[tuple]:
    rows = []
    for nb in klass.notebooks:
        graded = [g for (_, name), g in sorted(klass.graded.items()) if name == nb]
        for gid in [gid for gid, kind in klass.kinds[nb].items() if kind != "test"]:
            tasks = [g.tasks[gid] for g in graded if gid in g.tasks]
            marks = Counter(points(t.score) if t.marked and t.score is not None else "not marked yet" for t in tasks)
            rows += [("written mark", nb, gid, what, n, len(tasks)) for what, n in sorted(marks.items())]
            marked = [t for t in tasks if t.marked]
            items = Counter(i for t in marked for i in t.items)
            rows += [("rubric item", nb, gid, item, n, len(marked)) for item, n in
                     sorted(items.items(), key=lambda kv: (-kv[1], kv[0]))]
    return rows


def _attention_rows(lines: list) -> list[tuple]:
    return [("attention", ln.notebook, "", f"{ln.student}: {ln.status}", 1, "")
            for ln in sorted(lines, key=lambda ln: (ln.student, ln.notebook))
            if ln.status.split(";")[0].strip() != "graded"]


def class_numbers(klass: Class, lines: list) -> list[tuple]:
    """Every row of class-report.csv (:data:`COLUMNS`)."""
    return _distribution_rows(klass, lines) + _cell_rows(klass, lines) + _written_rows(klass) + _attention_rows(lines)


def _table(caption: str, header: tuple[str, ...], rows: list[tuple]) -> str:
    head = "".join(f'<th scope="col">{html.escape(h)}</th>' for h in header)
    body = "\n".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table>\n<caption>{html.escape(caption)}</caption>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def _scores_html(klass: Class, lines: list, rows: list[tuple]) -> list[str]:
    parts = ["<h2>Scores</h2>"]
    for nb in klass.notebooks + [""]:
        section = "notebook score" if nb else "lab score"
        mine = [r for r in rows if r[0] == section and r[1] == nb]
        title = f"scores of {nb}" if nb else "scores for the lab"
        maximum = sum(klass.max_score.get(nb, {}).values()) if nb else sum(
            sum(cells.values()) for cells in klass.max_score.values())
        scores = [float(r[3]) for r in mine for _ in range(r[4])]
        parts += [f"<h3>{html.escape(title.capitalize())}</h3>", f"<figure>{bar_chart(title, scores, maximum)}</figure>",
                  _table(f"How many students got each score ({title})", ("points", "students", "of"),
                         [(r[3], r[4], r[5]) for r in mine])]
    return parts


def report_html(klass: Class, lines: list, rows: list[tuple]) -> str:
    parts = [f"<h1>Class report: {html.escape(klass.assignment)}</h1>"] + _scores_html(klass, lines, rows)
    parts.append("<h2>Autograded cells: who lost points, and the named mistakes</h2>")
    for nb in klass.notebooks:
        cells = [r for r in rows if r[0] == "lost points" and r[1] == nb]
        table = []
        for r in cells:
            named = [m for m in rows if m[0] == "mistake" and m[1] == nb and m[2] == r[2]]
            what = "; ".join(f"{m[3]} ({m[4]})" for m in named) or "none"
            share = f"{r[4]} of {r[5]}" + (f" ({100 * r[4] / r[5]:.0f}%)" if r[5] else "")
            table.append((r[2], share, what))
        parts.append(_table(f"{nb}: lost points per cell, mistakes most common first (count)",
                            ("cell", "lost points", "named mistakes"), table))
    written = [r for r in rows if r[0] in ("written mark", "rubric item")]
    parts.append("<h2>Written questions</h2>")
    parts.append(_table("Marks and rubric items applied (count, of the answers or of those marked)",
                        ("notebook", "question", "kind", "mark or item", "count", "of"),
                        [(r[1], r[2], r[0], r[3], r[4], r[5]) for r in written]) if written else "<p>None.</p>")
    attention = [r for r in rows if r[0] == "attention"]
    parts.append("<h2>Notebooks not simply graded</h2>")
    parts.append(_table("Errors, timeouts, notebooks set aside or missing", ("notebook", "student: status"),
                        [(r[1], r[3]) for r in attention]) if attention else "<p>None: every notebook was graded.</p>")
    return page(f"Class report: {klass.assignment}", "\n".join(parts))


def write_class_report(klass: Class, lines: list, out: Path, log=print) -> list[Path]:
    """``out/class-report.csv`` and ``out/class-report.html``; returns their paths."""
    rows = class_numbers(klass, lines)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "class-report.csv", out / "class-report.html"]
    paths[0].write_text(buffer.getvalue(), encoding="utf-8")
    paths[1].write_text(report_html(klass, lines, rows), encoding="utf-8")
    return paths
