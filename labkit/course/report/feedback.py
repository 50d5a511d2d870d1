"""labkit's feedback pages: one page per student and notebook, and an index per student.

Owns: :func:`notebook_page`, :func:`index_page`, :func:`write_pages` and the secret check of every
page (:func:`leaks_of`).

A page shows, at the top, a table of the notebook's tasks (points got and possible, what needs
attention); then the notebook in order: the lab's text and the student's written answers
(Markdown, mathematics as MathML: :mod:`labkit.course.render`), the student's code and outputs,
and for each graded check its points and, when it failed, the message the check printed
(expected, got, likely mistake), never its code. Written answers show their points, the rubric
items the marker applied and the marker's comment, or "not marked yet". The install cell and
the test cells' code (visible and hidden) are not shown.

Secrets: a line of what the student wrote (code, written answers) that is a line of the model
answers (or an nbgrader delimiter) is left out of the page, since the page may travel; and before a
page is written, every piece of text in it (outputs, messages, the lab's text ...) is scanned with ``labkit publish``'s scanner
(:mod:`labkit.course.release.leaks`: solution lines, hidden-test lines, written model answers,
nbgrader delimiters). A page holding one is not written; the log names the line.
"""
from __future__ import annotations

import html
from pathlib import Path

from labkit.course.release.leaks import leaks_in_lines, secret_lines
from labkit.course.release.student_repo import INSTALL_MARK
from labkit.course.render import CSP, PAGE_CSS, markdown_html, output_html
from labkit.course.report.graded import Class, Graded, Task, nbgrader_of

INDEX = "index.html"
REDACTED = "# (a line of the model answer: left out of this page; your notebook has it)"
REDACTED_TEXT = "*(a line of the model answer: left out of this page; your notebook has it)*"
EXTRA_CSS = """
.ok { color: #1b5e20; } .lost { color: #8a1c1c; }
.verdict { border-left: 4px solid #767676; padding: 0.25rem 0.75rem; margin: 0.5rem 0 1rem; }
.verdict.lost { border-color: #8a1c1c; } .verdict.ok { border-color: #1b5e20; }
.answer { border: 1px solid #767676; padding: 0 0.75rem; }
"""


def page(title: str, body: str) -> str:
    """A whole page: :data:`CSP` first in its head, :data:`PAGE_CSS`, ``body`` in <main>."""
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{PAGE_CSS}{EXTRA_CSS}</style>\n</head>\n"
            f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n")


def points(x: float | None) -> str:
    if x is None:
        return ""
    return f"{x:.3f}".rstrip("0").rstrip(".") or "0"


class Pieces:
    """The texts a page is built from, each named, for the secret scan."""

    def __init__(self):
        self.texts: list[tuple[str, str]] = []

    def add(self, where: str, text: str) -> str:
        self.texts.append((where, text))
        return text


def attention(task: Task) -> str:
    """What the top table says a task needs."""
    if task.kind == "written" or task.kind == "manual":
        if task.score is None or not task.marked:
            return "not marked yet"
        return "see the marker's comment" if task.comment and task.score < task.max else "ok"
    if task.failed:
        return task.mistake or "a check failed: see its message"
    return "ok"


def _summary(g: Graded, pieces: Pieces) -> str:
    rows = []
    for task in g.tasks.values():
        got = "not marked yet" if task.score is None else f"{points(task.score)} / {points(task.max)}"
        need = pieces.add(f"the table's row {task.grade_id}", attention(task))
        rows.append(f'<tr><td><a href="#task-{html.escape(task.grade_id)}">{html.escape(task.title)} '
                    f"({html.escape(task.grade_id)})</a></td><td>{got}</td><td>{html.escape(need, quote=False)}</td></tr>")
    total = sum(t.score or 0 for t in g.tasks.values())
    maximum = sum(t.max for t in g.tasks.values())
    return ("<table>\n<caption>Your points per task</caption>\n<thead><tr><th scope=\"col\">Task</th>"
            "<th scope=\"col\">Points</th><th scope=\"col\">What needs attention</th></tr></thead>\n<tbody>\n"
            + "\n".join(rows) + f"\n</tbody>\n<tfoot><tr><th scope=\"row\">Total</th><td>{points(total)} / "
            f"{points(maximum)}</td><td></td></tr></tfoot>\n</table>")


def _test_verdict(task: Task, pieces: Pieces) -> str:
    head = f"{html.escape(task.title)} ({html.escape(task.grade_id)}): {points(task.score)} / {points(task.max)} points"
    if not task.failed:
        return f'<div class="verdict ok" id="task-{html.escape(task.grade_id)}"><p><strong>{head}</strong>: passed.</p></div>'
    message = pieces.add(f"the message of {task.grade_id}", task.message or "the check failed")
    mistake = (f"<p>Likely mistake: <strong>{html.escape(pieces.add(f'the mistake of {task.grade_id}', task.mistake))}"
               "</strong></p>") if task.mistake else ""
    return (f'<div class="verdict lost" id="task-{html.escape(task.grade_id)}"><p><strong>{head}</strong>: '
            f"a check failed. What it said:</p><pre class=\"error\">{html.escape(message, quote=False)}</pre>{mistake}</div>")


def _item_text(klass: Class, task: Task, item: str) -> str:
    rubric = klass.rubric.get(task.grade_id)
    for entry in getattr(rubric, "items", None) or []:
        if str(getattr(entry, "id", "")) == item:
            return f"{item}: {getattr(entry, 'text', '')} ({points(getattr(entry, 'points', None))} points)"
    return f"item {item}"


def _written_verdict(klass: Class, task: Task, pieces: Pieces) -> str:
    gid = html.escape(task.grade_id)
    if task.score is None or not task.marked:
        return f'<div class="verdict" id="task-{gid}"><p><strong>{html.escape(task.title)} ({gid})</strong>: not marked yet ' \
               f"({points(task.max)} points possible).</p></div>"
    items = "".join(f"<li>{markdown_html(pieces.add(f'a rubric item of {task.grade_id}', _item_text(klass, task, i)))}</li>"
                    for i in task.items)
    items = f"<p>Rubric items applied:</p><ul>{items}</ul>" if items else ""
    comment = (f"<p>The marker's comment:</p>{markdown_html(pieces.add(f'the comment on {task.grade_id}', task.comment))}"
               if task.comment else "")
    kind = "ok" if task.score >= task.max else "lost"
    return (f'<div class="verdict {kind}" id="task-{gid}"><p><strong>{html.escape(task.title)} ({gid}): '
            f"{points(task.score)} / {points(task.max)} points</strong></p>{items}{comment}</div>")


def own_work(source: str, secret: dict[str, str], mark: str = REDACTED) -> str:
    """What the student wrote (code, a written answer) with every line the scanner objects to (a
    line of the model answers, an nbgrader delimiter) replaced by ``mark``."""
    def shown(line: str) -> str:
        if not leaks_in_lines("", [line], secret):
            return line
        return (line[: len(line) - len(line.lstrip())] if mark == REDACTED else "") + mark  # code keeps its indent

    return "\n".join(shown(line) for line in source.split("\n"))


def output_text(out) -> str:
    """The text an output shows (what the scan reads)."""
    if out.get("output_type") == "stream":
        return "".join(out.get("text", ""))
    if out.get("output_type") == "error":
        return f"{out.get('ename', '')}: {out.get('evalue', '')}"
    data = out.get("data") or {}
    return "\n".join("".join(data[m]) if isinstance(data[m], list) else str(data[m])
                     for m in ("text/plain", "text/html", "text/markdown", "text/latex") if m in data)


def _outputs(cell, where: str, pieces: Pieces) -> str:
    parts = []
    for i, out in enumerate(cell.get("outputs", [])):
        if "check" in ((out.get("metadata") or {}).get("labkit") or {}):
            continue  # the named-mistake record (labkit.checks): for the class report
        pieces.add(f"{where}, output {i + 1}", output_text(out))
        if out.get("output_type") == "error":  # the message only: a traceback quotes code
            parts.append(f'<pre class="error">{html.escape(output_text(out))}</pre>')
        else:
            parts.append(output_html(out))
    return "".join(parts)


def _markdown(g: Graded, i: int, cell) -> str:
    """A markdown cell's source as the student wrote it (the submitted copy, before nbconvert's cleaning)."""
    sub = g.submitted
    if sub is not None and len(sub.cells) == len(g.nb.cells) and sub.cells[i].cell_type == "markdown":
        return sub.cells[i].source
    return cell.source


def _cell(klass: Class, g: Graded, i: int, cell, secret: dict[str, str], pieces: Pieces) -> str:
    meta, where = nbgrader_of(cell), f"cell {i + 1}"
    task = g.tasks.get(meta.get("grade_id", ""))
    if cell.cell_type == "markdown":
        if task is not None:  # the student's written answer
            text = markdown_html(pieces.add(where, own_work(_markdown(g, i, cell), secret, REDACTED_TEXT)))
            return f'<div class="answer">{text}</div>{_written_verdict(klass, task, pieces)}'
        return markdown_html(pieces.add(where, _markdown(g, i, cell)))
    if cell.cell_type != "code" or INSTALL_MARK in cell.source:
        return ""
    if task is not None and task.kind == "test":
        return _test_verdict(task, pieces)
    code = pieces.add(where, own_work(cell.source, secret))
    label = "Your code" if meta.get("solution") else "Given code"
    shown = f"<details{' open' if meta.get('solution') else ''}><summary>{label}</summary>" \
            f'<pre class="code">{html.escape(code)}</pre></details>'
    verdict = _written_verdict(klass, task, pieces) if task is not None else ""
    return shown + _outputs(cell, where, pieces) + verdict


def notebook_page(klass: Class, g: Graded, secret: dict[str, str]) -> tuple[str, Pieces]:
    """(the page of ``g``, the texts it holds)."""
    pieces = Pieces()
    body = [f"<h1>Feedback: {html.escape(g.notebook)}</h1>",
            f"<p>Student: {html.escape(pieces.add('the student id', g.student))}. "
            f'<a href="{INDEX}">All your notebooks</a>.</p>', _summary(g, pieces)]
    body += [_cell(klass, g, i, cell, secret, pieces) for i, cell in enumerate(g.nb.cells)]
    return page(f"Feedback: {g.notebook} ({g.student})", "\n".join(b for b in body if b)), pieces


def index_page(student: str, lines: list, written: set[str], held: set[str] = frozenset()) -> str:
    """The student's notebooks: points and status of each, a link to each page written; ``held``:
    the notebooks whose page was not written (it held secret text)."""
    rows = []
    for line in sorted((ln for ln in lines if ln.student == student), key=lambda ln: ln.notebook):
        name = html.escape(line.notebook)
        link = f'<a href="{name}.html">{name}</a>' if f"{line.notebook}.html" in written else name
        if line.notebook in held:
            link += " (its feedback page was held back: ask your instructor)"
        got = f"{line.total} / {line.max}" if line.total != "" else ""
        rows.append(f"<tr><td>{link}</td><td>{got}</td><td>{html.escape(line.status)}</td></tr>")
    body = (f"<h1>Feedback: {html.escape(student)}</h1>\n<table>\n<caption>Your notebooks</caption>\n<thead><tr>"
            '<th scope="col">Notebook</th><th scope="col">Points</th><th scope="col">Status</th></tr></thead>\n'
            f"<tbody>\n{''.join(rows)}\n</tbody>\n</table>")
    return page(f"Feedback: {student}", body)


def leaks_of(pieces: Pieces, secret: dict[str, str]) -> list[str]:
    """``labkit publish``'s scan of every text of a page."""
    problems = []
    for where, text in pieces.texts:
        problems += leaks_in_lines(where, text.split("\n"), secret)
    return problems


def write_pages(klass: Class, lines: list, out: Path, log=print) -> dict[str, dict[str, str]]:
    """``out/<student>/<notebook>.html`` for every graded notebook without a secret in it, and
    ``out/<student>/index.html``; returns {student: {file name: page}} of what was written."""
    import shutil

    secret, _ = secret_lines(sorted((klass.course / "source" / klass.assignment).glob("*.ipynb")))
    if out.exists():
        shutil.rmtree(out)
    written: dict[str, dict[str, str]] = {}
    for (student, notebook), g in sorted(klass.graded.items()):
        try:
            text, pieces = notebook_page(klass, g, secret)
        except Exception as e:  # noqa: BLE001 - one odd notebook costs its own page only
            log(f"labkit autograde: feedback page {student}/{notebook}.html not written: {type(e).__name__}: {e}")
            continue
        problems = leaks_of(pieces, secret)
        if problems:
            log(f"labkit autograde: feedback page {student}/{notebook}.html not written: it would show "
                f"secret text ({len(problems)} lines): " + "; ".join(problems[:5]))
            continue
        written.setdefault(student, {})[f"{notebook}.html"] = text
    for student in sorted({s for s, _ in klass.graded}):
        pages = written.setdefault(student, {})
        held = {nb for s, nb in klass.graded if s == student and f"{nb}.html" not in pages}
        pages[INDEX] = index_page(student, lines, set(pages), held)
        (out / student).mkdir(parents=True, exist_ok=True)
        for name, text in pages.items():
            (out / student / name).write_text(text, encoding="utf-8")
    return written
