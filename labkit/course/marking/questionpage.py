"""The page of one written question: the question, the rubric as buttons, every answer below.

Owns: :func:`groups` (answers with the same normalised text, marked once) and
:func:`question_page`. Everything a student wrote or printed goes through
``labkit.course.render``; answers are anonymous ("Answer 3") unless ``ids`` is asked for.
"""
from __future__ import annotations

import functools
import hashlib
import html
import json
import re

from labkit.course.marking.course import MarkingCourse, StudentAnswer, normalise
from labkit.course.marking.page import frame, is_marked, progress
from labkit.course.marking.store import Mark
from labkit.course.render import markdown_html, output_html
from labkit.course.rubric import Rubric, RubricItem


def groups(answers: list[StudentAnswer]) -> list[list[StudentAnswer]]:
    """``answers`` grouped by :func:`normalise` d text, in a stable order that does not follow the
    students' names (a group's place is the hash of its text)."""
    by_text: dict[str, list[StudentAnswer]] = {}
    for a in answers:
        by_text.setdefault(normalise(a.text), []).append(a)
    return sorted(by_text.values(), key=lambda g: hashlib.sha256(normalise(g[0].text).encode()).hexdigest())


def _same_marks(members: list[StudentAnswer], marks: dict[str, Mark]) -> bool:
    seen = {json.dumps([m.items, m.adjustment, m.comment]) if (m := marks.get(a.key)) else None for a in members}
    return len(seen) == 1


_IMG_WITHOUT_ALT = re.compile(r"<img(?![^>]*\balt=)")


@functools.lru_cache(maxsize=8192)  # a student's text does not change while the server runs
def _answer_html(text: str) -> str:
    """A student's Markdown as clean HTML; an image the student gave no alt text gets one (axe)."""
    return _IMG_WITHOUT_ALT.sub('<img alt="Image in the answer; the student gave no description"', markdown_html(text))


def prerender(course: MarkingCourse) -> int:
    """Every answer's HTML and outputs rendered now (the server starts with them), so that even the
    first load of a question page only assembles them. Returns how many answers."""
    n = 0
    for answers in course.answers.values():
        for answer in answers:
            _answer_html(answer.text)
            _outputs(answer)
            n += 1
    return n


def _inline(text: str) -> str:
    """Markdown as phrasing content (a button holds no paragraph)."""
    out = markdown_html(text).strip()
    if out.startswith("<p>") and out.endswith("</p>") and out.count("<p>") == 1:
        out = out[3:-4]
    return out.replace("<p>", "<span>").replace("</p>", "</span> ")


_OUTPUTS: dict[tuple[str, str], str] = {}  # (answer key, sha256) -> HTML: outputs do not change either


def _outputs(answer: StudentAnswer) -> str:
    if not answer.outputs:
        return '<p class="none">No outputs in the submission for this task.</p>'
    cached = (answer.key, answer.sha256)
    if cached not in _OUTPUTS:
        _OUTPUTS[cached] = "".join(output_html(o) for o in answer.outputs)
    return _OUTPUTS[cached]


@functools.lru_cache(maxsize=256)
def _item_label(item: RubricItem) -> str:
    return f'<kbd>{item.id}</kbd> {item.points:g} point{"s" if item.points != 1 else ""}: {_inline(item.text)}'


def _rubric_buttons(rubric: Rubric, mark: Mark | None) -> str:
    chosen = set(mark.items) if mark else set()
    buttons = "".join(
        f'<button type="button" class="item" data-item="{i.id}" data-points="{i.points:g}" '
        f'aria-pressed="{str(i.id in chosen).lower()}">{_item_label(i)}</button>' for i in rubric.items)
    return f'<div class="rubric" role="group" aria-label="Rubric items">{buttons}</div>'


def _status(mark: Mark | None, points: float) -> str:
    if mark is None:
        return "Not marked yet."
    note = " The answer changed since: mark it again." if mark.to_remark else ""
    return f"Score {mark.score:g} of {points:g} (saved, revision {mark.revision}).{note}"


def _entry(course: MarkingCourse, n: int, members: list[StudentAnswer], rubric: Rubric, marks: dict[str, Mark],
           ids: bool, split_link: str | None) -> str:
    first = members[0]
    mark = marks.get(first.key)
    label = f"Answer {n}" + (f" (a group of {len(members)} identical answers)" if len(members) > 1 else "")
    who = f'<p class="ids">{", ".join(html.escape(a.student) for a in members)}</p>' if ids else ""
    keys = json.dumps([course.ref(a) for a in members])
    revisions = json.dumps({course.ref(a): marks[a.key].revision if a.key in marks else 0 for a in members})
    shown = "the first answer of the group's" if len(members) > 1 else "the student's"
    split = f'<p><a href="{split_link}">Split this group</a></p>' if split_link else ""
    return (f'<article class="entry{" marked" if is_marked(mark) else ""}" id="e{n}" tabindex="-1" '
            f'aria-labelledby="h{n}" data-keys="{html.escape(keys)}" data-revisions="{html.escape(revisions)}" '
            f'data-max="{rubric.points:g}"><h2 id="h{n}">{label}</h2>{who}'
            f'<div class="answer">{_answer_html(first.text)}</div>'
            f'<details class="outputs"><summary>What the student saw ({shown} outputs)</summary>'
            f'{_outputs(first)}</details>{_rubric_buttons(rubric, mark)}'
            f'<div class="fields"><label>Adjustment (needs a comment) <input type="number" step="0.5" '
            f'class="adjustment" value="{(mark.adjustment if mark else 0):g}"></label>'
            f'<label>Comment <textarea class="comment" rows="2">{html.escape(mark.comment if mark else "")}'
            f'</textarea></label></div><p class="status" role="status">{_status(mark, rubric.points)}</p>'
            f'<div class="conflict" hidden></div>{split}</article>')


def question_page(course: MarkingCourse, grade_id: str, marks: dict[str, Mark], ids: bool = False,
                  split: set[int] = frozenset()) -> str:
    """The page of question ``grade_id``; ``split``: the groups (numbered as shown) shown one answer each."""
    rubric = course.questions[grade_id]
    done, total = progress(course, grade_id, marks)
    parts, n = [], 0
    for i, members in enumerate(groups(course.answers[grade_id]), 1):
        singles = len(members) > 1 and (i in split or not _same_marks(members, marks))
        for chunk in ([[a] for a in members] if singles else [members]):
            n += 1
            link = f"?split={i}" + "".join(f"&split={s}" for s in sorted(split)) + ("&ids=1" if ids else "") \
                if len(chunk) > 1 else None
            parts.append(_entry(course, n, chunk, rubric, marks, ids, link))
    items = "".join(f"<li>{i.points:g}: {markdown_html(i.text)}</li>" for i in rubric.items)
    notes = "".join(f"<li>{markdown_html(t)}</li>" for t in rubric.notes)
    head = (f'<section class="question" aria-label="The question">{markdown_html(rubric.question)}</section>'
            f'<p class="progress" id="progress" data-total="{total}">{done} of {total} answers marked, '
            f'{total - done} left.</p>'
            f'<details class="rubric-text"><summary>Rubric ({rubric.points:g} points)</summary><ul>{items}{notes}</ul>'
            f'</details><p class="keys">Keys: 1–9 toggle a rubric item, j/k or the arrows move between answers, '
            f'c opens the comment, Escape leaves it.</p>')
    body = head + ("".join(parts) or "<p>No answers to this question.</p>")
    return frame(f"{rubric.title} ({rubric.notebook})", body, script=True)
