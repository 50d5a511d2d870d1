"""``labkit mark``: written answers marked by question, in Chromium, from the keyboard.

One class of 5 (the fixture assignment, its written answer given a two-item rubric) is graded
once for the module with ``--keep``; the server runs as the instructor starts it
(``browser.marking.Server``). The fast tests at the top check the pieces without a browser: the
rubric parser, grouping, the store's conflicts and its checks, the outputs kept at intake.
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest
from browser import axe, chromium, marking
from helpers.course import SOLUTIONS, Submissions, cell, changed, load_csv, options, read

from labkit.course.grading.autograde import autograde
from labkit.course.grading.kept import export
from labkit.course.grading.seen import capped_cells, keep_outputs
from labkit.course.marking.course import normalise, task_outputs
from labkit.course.marking.store import MARKS_FILE, Change, Store
from labkit.course.rubric import rubric_for
from labkit.errors import OptionError

RUBRIC = """### BEGIN SOLUTION
A product of two negative numbers is positive.

**Rubric (2 points).**
- 1 point: a product of two negative numbers is positive.
- 1 point: the example worked out, $(-2) \\cdot (-2) = 4$.
- Partial credit: each point on its own.
### END SOLUTION"""
HOSTILE = ('<script>window.__pwned = 1</script><img src="x" onerror="window.__pwned = 2">'
           '[a link](javascript:window.__pwned=3) <a href="javascript:window.__pwned=4">b</a>')
ANSWERS = {  # student -> the written answer; ben and cat differ in case, spaces and TeX spacing only
    "ann": "A product of two negative numbers is positive.",
    "ben": "The product of two negatives is positive: $(-2) \\cdot (-2) = 4$.",
    "cat": "the product of  two negatives is POSITIVE:\n$(-2)\\cdot(-2)=4$.",
    "dan": "It is positive. " + HOSTILE,
    "eve": None,  # the student version untouched: YOUR ANSWER HERE
}
SHOTS = Path(os.environ.get("LABKIT_BROWSER_OUT") or Path(__file__).resolve().parents[1] / "build" / "browser-tests") / "marking"
SAW = {"output_type": "stream", "name": "stdout", "text": "square(-2) = 4, from the student's own run\n"}
HOSTILE_OUTPUT = {"output_type": "display_data", "metadata": {},
                  "data": {"text/html": HOSTILE, "text/plain": "html"}}


# --------------------------------------------------------------------------- without a browser


def marked_solutions(root: Path) -> Path:
    """The fixture's solutions with a two-point rubric in the written answer ``why``."""
    folder = root / "solutions"
    shutil.copytree(SOLUTIONS, folder)
    nb = nbformat.read(folder / "1_squares.ipynb", as_version=4)
    cell(nb, "why").source = RUBRIC
    cell(nb, "why").metadata["nbgrader"]["points"] = 2
    nbformat.write(nb, folder / "1_squares.ipynb")
    return folder


def test_rubric_items_numbered_in_order(tmp_path):
    rubric = rubric_for(marked_solutions(tmp_path))["why"]
    assert rubric.points == 2 and [(i.id, i.points) for i in rubric.items] == [("1", 1.0), ("2", 1.0)]
    assert rubric.items[1].text.startswith("the example") and rubric.notes == ["Partial credit: each point on its own."]
    assert "square(-2)" in rubric.question and rubric.title == "why"
    real = rubric_for(Path(__file__).resolve().parents[1] / "solutions")
    assert len(real) == 15 and all(sum(i.points for i in r.items) == r.points for r in real.values())
    assert real["q4_10-answer"].title == "Question 4.10"


def test_normalised_text_groups_case_spaces_and_tex_spacing():
    assert normalise(ANSWERS["ben"]) == normalise(ANSWERS["cat"])
    assert normalise("$a\\,b$") == normalise("$ab$") != normalise("$a+b$")
    assert normalise(ANSWERS["ann"]) != normalise(ANSWERS["ben"])


def test_outputs_kept_capped_and_scripts_dropped(tmp_path):
    js = {"output_type": "display_data", "metadata": {}, "data": {"application/javascript": "alert(1)",
                                                                  "text/plain": "x"}}
    big = {"output_type": "stream", "name": "stdout", "text": "x" * 5000}
    cells = capped_cells([{"cell_type": "code", "source": "", "outputs": [js, big, big]}], max_bytes=8000)
    outs = cells[0]["outputs"]
    assert outs[0]["data"] == {"text/plain": "x"} and outs[1] == big and "left out" in outs[2]["text"]
    assert not keep_outputs(b"not json", tmp_path / "x.ipynb") and not (tmp_path / "x.ipynb").exists()
    found = task_outputs([{"cell_type": "code", "outputs": [SAW]},
                          {"cell_type": "markdown", "metadata": {"nbgrader": {"grade": True, "grade_id": "a"}}},
                          {"cell_type": "code", "outputs": [big]},
                          {"cell_type": "markdown", "metadata": {"nbgrader": {"grade": True, "grade_id": "b"}}}],
                         {"a", "b"})
    assert found == {"a": [SAW], "b": [big]}


def _gradebook_course(tmp_path) -> Path:
    """A course whose gradebook is fake: the store's own checks need no nbgrader."""
    course = tmp_path / "course"
    course.mkdir()
    return course


def test_store_refuses_stale_revisions_bad_items_and_bare_adjustments(tmp_path, monkeypatch):
    course = _gradebook_course(tmp_path)
    written = []
    monkeypatch.setattr(Store, "_write_gradebook", lambda self, changed: written.append(dict(changed)))
    store, points = Store(course, "lab"), {"1": 1.0, "2": 1.0}
    keys = {"ben/1_squares/why": 0, "cat/1_squares/why": 0}
    marks, ok = store.save(Change(keys, ["2", "1"], 0, ""), points, 2, {})
    assert ok and {m.revision for m in marks.values()} == {1} and marks["ben/1_squares/why"].items == ["1", "2"]
    assert written[-1].keys() == keys.keys()
    # a second marker who saw revision 0 is told, and nothing is written
    theirs, ok = store.save(Change({"ben/1_squares/why": 0}, ["1"], 0, ""), points, 2, {})
    assert not ok and theirs["ben/1_squares/why"].score == 2 and len(written) == 1
    marks, ok = store.save(Change({"ben/1_squares/why": 1}, ["1"], -0.5, "half a point off: no reason"), points, 2, {})
    assert ok and marks["ben/1_squares/why"].score == 0.5 and marks["ben/1_squares/why"].revision == 2
    with pytest.raises(OptionError, match="needs a comment"):
        store.save(Change({"ann/1_squares/why": 0}, ["1"], 1, " "), points, 2, {})
    with pytest.raises(OptionError, match="not one of"):
        store.save(Change({"ann/1_squares/why": 0}, ["7"], 0, ""), points, 2, {})
    with pytest.raises(OptionError, match="outside 0 to 2"):
        store.save(Change({"ann/1_squares/why": 0}, ["1", "2"], 1, "bonus"), points, 2, {})
    data = json.loads((course / MARKS_FILE).read_text())
    assert data["format"] == 1 and sorted(data["answers"]) == sorted(keys)
    # the gradebook failing leaves the marks file as it was
    monkeypatch.setattr(Store, "_write_gradebook", lambda self, changed: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        store.save(Change({"ann/1_squares/why": 0}, ["1"], 0, ""), points, 2, {})
    assert json.loads((course / MARKS_FILE).read_text()) == data
    assert [p.name for p in course.iterdir() if p.name.startswith(".labkit-marks-")] == []


def _synthetic(tmp_path):
    from labkit.course.marking.course import MarkingCourse, StudentAnswer

    rubric = rubric_for(marked_solutions(tmp_path))["why"]
    answers = [StudentAnswer(s, "1_squares", "why", t, [SAW] if s != "cat" else None)
               for s, t in (("ann", ANSWERS["ann"]), ("ben", ANSWERS["ben"]), ("cat", ANSWERS["cat"]))]
    return MarkingCourse(tmp_path, "lab", {"why": rubric}, {"why": answers})


def test_question_page_groups_splits_hides_ids_and_says_when_nothing_was_printed(tmp_path):
    from labkit.course.marking.questionpage import groups, question_page
    from labkit.course.marking.store import Mark

    course = _synthetic(tmp_path)
    assert sorted(len(g) for g in groups(course.answers["why"])) == [1, 2]
    page = question_page(course, "why", {})
    assert page.count('<article class="entry') == 2 and "a group of 2" in page and "ben" not in page
    assert "from the student&#x27;s own run" in page and "Split this group" in page
    number = 1 + [len(g) for g in groups(course.answers["why"])].index(2)
    split = question_page(course, "why", {}, ids=True, split={number})
    assert split.count('<article class="entry') == 3 and "ben" in split
    assert "No outputs in the submission" in split  # cat's notebook printed nothing
    # members marked differently are shown apart without asking
    marks = {"ben/1_squares/why": Mark(["1"], score=1, revision=1), "cat/1_squares/why": Mark(["2"], score=1, revision=1)}
    assert question_page(course, "why", marks).count('<article class="entry') == 3
    assert "2 of 3 answers marked" in question_page(course, "why", marks)


def test_marks_written_again_after_a_rebuilt_gradebook_unless_the_answer_changed(tmp_path, monkeypatch):
    course = _gradebook_course(tmp_path)
    written = []
    monkeypatch.setattr(Store, "_write_gradebook", lambda self, changed: written.append(sorted(changed)))
    store = Store(course, "lab")
    store.save(Change({"ann/1_squares/why": 0, "ben/1_squares/why": 0}, ["1"], 0, ""), {"1": 1.0}, 1,
               {"ann/1_squares/why": "a", "ben/1_squares/why": "b"})
    assert store.reapply({"ann/1_squares/why": "a", "ben/1_squares/why": "changed"}) == 1
    assert written[-1] == ["ann/1_squares/why"] and store.load()["ben/1_squares/why"].to_remark


# --------------------------------------------------------------------------- the class of 5


def make_class(root: Path) -> tuple[Path, Path]:
    """(submissions, solutions) of the class of 5: ANSWERS in the written answer, every notebook
    with the outputs the student's own run printed (dan's hostile)."""
    solutions = marked_solutions(root)
    subs = Submissions(root / "submissions")
    for student, answer in ANSWERS.items():
        nb = read("solution" if answer else "student", "1_squares")
        if answer:
            nb = changed(nb, {"why": answer})
        cell(nb, "test_add").outputs = [nbformat.from_dict(SAW)] + (
            [nbformat.from_dict(HOSTILE_OUTPUT)] if student == "dan" else [])
        subs.add(f"{student}/1_squares.ipynb", nb)
    return subs.folder, solutions


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The class of 5 graded once with ``--keep``: (root, course)."""
    root = tmp_path_factory.mktemp("marking")
    subs, solutions = make_class(root)
    autograde(subs, solutions=solutions, out=root / "out", keep=root / "course", options=options(), log=lambda *_: None)
    return root, root / "course"


@pytest.fixture(scope="module")
def server(graded):
    running = marking.Server(graded[1])
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser():
    reason = chromium.unavailable()
    if reason:
        if chromium.in_ci():
            pytest.fail(f"CI=true, but the browser tests cannot run: {reason}")
        pytest.skip(f"no browser tests: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = chromium.launch(playwright)
        yield launched
        launched.close()


def _open(browser, server, path: str = "/q/why"):
    """A new context and page (recorded by ``Offline``), logged in with the token, at ``path``."""
    context = browser.new_context()
    offline = chromium.Offline(context)
    page = context.new_page()
    page.goto(server.url)
    assert "token" not in page.url  # the token became a cookie and left the address
    page.goto(server.base + path)
    return context, page, offline


def _get(url: str, data: bytes | None = None, opener=None) -> int:
    try:
        with (opener or urllib.request.build_opener()).open(urllib.request.Request(url, data=data), timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_every_request_without_the_token_is_refused(server):
    for path in ("/", "/q/why", "/todo", "/page.css", "/static/mark.js", "/static/mark.css"):
        assert _get(server.base + path) == 403, path
        assert _get(server.base + path + "?token=wrong") == 403, path
    assert _get(server.base + "/api/mark", data=b"{}") == 403
    # the token in the address becomes a cookie (the address is reloaded without it)
    with_cookies = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    assert _get(server.base + "/static/mark.js?token=" + server.token, opener=with_cookies) == 200
    assert _get(server.base + "/todo", opener=with_cookies) == 200
    assert _get(server.base + "/api/mark", data=b"{}", opener=with_cookies) == 403  # no XSRF token
    assert server.base.startswith("http://127.0.0.1:")


def test_pages_pass_axe_before_marking(browser, server):
    context, page, offline = _open(browser, server)
    page.locator("details.outputs").first.evaluate("d => d.open = true")
    axe.assert_clean(page)
    page.goto(server.base + "/todo")
    assert "5 left" in page.inner_text("main")
    axe.assert_clean(page)
    assert offline.outside == []
    context.close()


def _plan(text: str) -> list[str]:
    """The keys that mark the answer ``text`` (see ANSWERS)."""
    if "pwned" in text or "It is positive" in text:
        return ["1", "c", "type:Not an explanation.", "Escape"]
    if "negatives" in text.lower():
        return ["1", "2"]
    if "negative numbers" in text:
        return ["1"]
    return ["1", "1"]  # YOUR ANSWER HERE: marked, with no item


def test_class_marked_from_the_keyboard_identical_answers_once(browser, server, graded):
    context, page, offline = _open(browser, server)
    entries = marking.entries(page)
    assert entries.count() == 4  # ben's and cat's answers are one group
    assert entries.filter(has_text="a group of 2").count() == 1
    assert "ben" not in page.inner_text("main") and "ben/" not in page.content()  # anonymous, even in the source
    for i in range(4):
        assert "from the student's own run" in entries.nth(i).locator("details.outputs").text_content()
    texts = [entries.nth(i).locator(".answer").inner_text() for i in range(4)]
    started = time.perf_counter()
    for i, text in enumerate(texts):
        for key in _plan(text):
            if key.startswith("type:"):
                page.keyboard.type(key[5:])
            else:
                marking.press(page, key, saves=key in ("1", "2", "Escape"))
        if i < 3:
            marking.press(page, "j")
    seconds = time.perf_counter() - started
    print(f"\nmarking one question of the class of 5 by keyboard: {seconds:.2f} s")
    assert page.inner_text("#progress") == "5 of 5 answers marked, 0 left."
    page.locator("details.outputs").first.evaluate("d => d.open = true")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "question-marked.png"), full_page=True)
    assert page.evaluate("window.__pwned") is None
    for hostile in ("article script", "[onerror]", "a[href^='javascript']"):
        assert page.locator(hostile).count() == 0, hostile
    assert offline.outside == []
    marks = json.loads((graded[1] / MARKS_FILE).read_text())["answers"]
    assert {k.split("/")[0]: m["score"] for k, m in marks.items()} == {"ann": 1, "ben": 2, "cat": 2, "dan": 1, "eve": 0}
    assert marks["ben/1_squares/why"]["items"] == ["1", "2"] and marks["dan/1_squares/why"]["comment"] == "Not an explanation."
    page.reload()
    assert entries.filter(has_text="Score 2 of 2").count() == 1 and page.locator("[aria-pressed=true]").count() == 4
    context.close()


def test_marks_survive_a_restart_and_reach_grades_csv(browser, server, graded, tmp_path):
    server.restart()
    context, page, _ = _open(browser, server, "/q/why?ids=1")
    assert "ben" in page.inner_text("main")
    assert page.locator("[aria-pressed=true]").count() == 4
    page.goto(server.base + "/todo")
    assert "Every answer is marked" in page.inner_text("main")
    context.close()
    export(graded[1], tmp_path / "again", log=lambda *_: None)
    rows = load_csv(tmp_path / "again" / "grades.csv")
    assert {s: float(rows[(s, "1_squares")]["why"]) for s in ANSWERS} == {"ann": 1, "ben": 2, "cat": 2, "dan": 1,
                                                                           "eve": 0}
    assert all("to grade by hand" not in rows[(s, "1_squares")]["status"] for s in ANSWERS)
    con = sqlite3.connect(graded[1] / "gradebook.db")
    comments = [r[0] for r in con.execute("SELECT manual_comment FROM comment WHERE manual_comment != ''")]
    assert comments == ["Not an explanation."]


def test_a_concurrent_edit_is_shown_and_resolved(browser, server, graded):
    first, page_a, _ = _open(browser, server)
    second, page_b, _ = _open(browser, server)
    index = next(i for i in range(4) if "negative numbers" in marking.entries(page_a).nth(i).inner_text())
    for page in (page_a, page_b):
        marking.entries(page).nth(index).focus()
    marking.press(page_a, "2", saves=True)   # ann: 1 and 2
    marking.press(page_b, "1", saves=True)   # ann: no item, from the stale page
    alert = marking.entries(page_b).nth(index).locator(".conflict [role=alert]")
    alert.wait_for()
    page_b.screenshot(path=str(SHOTS / "conflict.png"), full_page=True)
    assert alert.is_visible() and "Another marker" in alert.inner_text()
    assert json.loads((graded[1] / MARKS_FILE).read_text())["answers"]["ann/1_squares/why"]["score"] == 2
    with page_b.expect_response(lambda r: r.url.endswith("/api/mark")):
        page_b.keyboard.press("Enter")  # "Keep mine" has the focus
    mark = json.loads((graded[1] / MARKS_FILE).read_text())["answers"]["ann/1_squares/why"]
    assert mark["score"] == 0 and mark["items"] == [] and mark["revision"] == 3
    first.close()
    second.close()
