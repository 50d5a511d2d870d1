"""The marking pages' frame, the index of questions and the page of what is still to mark.

Owns: :func:`frame` (a whole page: the stylesheet and script of ``static/``, no outside source),
:func:`progress` (answers marked and left of one question), :func:`index_page` and
:func:`todo_page`. The page of one question is :mod:`labkit.course.marking.questionpage`.
"""
from __future__ import annotations

import html
from urllib.parse import quote

from labkit.course.marking.course import MarkingCourse
from labkit.course.marking.store import Mark

# Served pages: their own script and stylesheet, fetches to the same server, nothing else.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src data:; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


def frame(title: str, body: str, *, script: bool = False) -> str:
    js = '<script src="/static/mark.js" defer></script>' if script else ""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{html.escape(title)}</title><link rel="stylesheet" href="/page.css"><link rel="stylesheet" href="/static/mark.css">{js}</head>'
            f'<body><a class="skip" href="#main">Skip to the answers</a>'
            f'<nav aria-label="Marking"><a href="/">Questions</a> · <a href="/todo">Still to mark</a></nav>'
            f'<main id="main"><h1>{html.escape(title)}</h1>{body}</main></body></html>\n')


def question_url(grade_id: str, ids: bool = False) -> str:
    return f"/q/{quote(grade_id, safe='')}" + ("?ids=1" if ids else "")


def is_marked(mark: Mark | None) -> bool:
    return mark is not None and not mark.to_remark


def progress(course: MarkingCourse, grade_id: str, marks: dict[str, Mark]) -> tuple[int, int]:
    """(answers marked, answers in all) of question ``grade_id``; a mark of a changed answer counts as left."""
    answers = course.answers[grade_id]
    done = sum(1 for a in answers if is_marked(m := marks.get(a.key)) and m.answer_sha256 in ("", a.sha256))
    return done, len(answers)


def index_page(course: MarkingCourse, marks: dict[str, Mark], ids: bool = False) -> str:
    rows = []
    for gid, q in course.questions.items():
        done, total = progress(course, gid, marks)
        rows.append(f'<tr><th scope="row"><a href="{question_url(gid, ids)}">{html.escape(q.title)}</a></th>'
                    f'<td>{html.escape(q.notebook)}</td><td>{q.points:g}</td><td>{done} of {total}</td>'
                    f'<td>{total - done}</td></tr>')
    table = ('<table><caption>Written questions, in the lab\'s order</caption><thead><tr><th scope="col">Question</th>'
             '<th scope="col">Notebook</th><th scope="col">Points</th><th scope="col">Marked</th>'
             f'<th scope="col">Left</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')
    if not course.questions:
        table = "<p>The course's notebooks have no written answers to mark.</p>"
    return frame("Marking the written answers", table)


def todo_page(course: MarkingCourse, marks: dict[str, Mark], ids: bool = False) -> str:
    parts = []
    for gid, q in course.questions.items():
        left = [a for a in course.answers[gid]
                if not (is_marked(m := marks.get(a.key)) and m.answer_sha256 in ("", a.sha256))]
        if not left:
            continue
        who = ", ".join(html.escape(a.student) for a in left) if ids else f"{len(left)} answers"
        parts.append(f'<li><a href="{question_url(gid, ids)}">{html.escape(q.title)}</a>: {len(left)} left '
                     f'({who})</li>')
    body = f'<ul class="todo">{"".join(parts)}</ul>' if parts else "<p>Every answer is marked.</p>"
    return frame("Still to mark", body)
