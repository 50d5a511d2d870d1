"""labkit's feedback pages, the class report and Moodle's feedback zip (issue #26), on a class built
from the grading-accuracy variants (tests/grading/classes.py), graded once for the module.

- the class report counts each planted mistake exactly once, in its cell (checked against the
  "likely mistake" the autograded notebooks' error messages name, not the report's own record);
- no feedback page holds a line of a hidden-test or solution region of solutions/ (the regions
  parsed here, independently of labkit's scanner), yet each page shows the student's own code;
- the planted leak (a hidden-test line printed by a student's cell) keeps its page unwritten;
- a written answer marked in labkit-marks.json and the gradebook shows its points, items and
  comment after ``--from-course``; the class report counts its mark and item;
- Moodle's zip has Moodle's layout; the pages and the report in Chromium: MathML drawn, no
  request leaves them, no serious axe violation.
"""
from __future__ import annotations

import csv
import html.parser
import json
import re
import zipfile
from pathlib import Path

import nbformat
import pytest

from browser import axe, chromium
from grading import classes
from helpers.course import sandbox_mode
from labkit.course.grading.autograde import autograde
from labkit.course.grading.kept import export
from labkit.course.grading.records import Options
from labkit.course.nbgrader import COURSE_ID

NB = classes.NOTEBOOK


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("variant-class")
    kwargs = classes.variant_class(root)
    log: list[str] = []
    autograde(kwargs.pop("submissions"), out=root / "out", keep=root / "course",
              options=Options(jobs=2, sandbox=sandbox_mode()), log=log.append, **kwargs)
    return root, log


class _Text(html.parser.HTMLParser):
    """A page's visible text (what a reader sees; no tags, no attributes)."""

    def __init__(self):
        super().__init__()
        self.parts, self._skip = [], 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ("style", "script", "title")

    def handle_endtag(self, tag):
        self._skip -= tag in ("style", "script", "title")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def visible(page: str) -> str:
    parser = _Text()
    parser.feed(page)
    return "".join(parser.parts)


def squeeze(text: str) -> str:
    return " ".join(text.split())


def page_of(root: Path, student: str, name: str = f"{NB}.html") -> str:
    return (root / "out" / "feedback" / classes.student_id(student) / name).read_text(encoding="utf-8")


def report_rows(out: Path) -> list[dict]:
    return list(csv.DictReader((out / "class-report.csv").open(encoding="utf-8")))


def named_in_message(root: Path, student: str, test_cell: str) -> str:
    """The likely mistake that the error message of ``test_cell`` names in the autograded notebook."""
    nb = nbformat.read(root / "course" / "autograded" / classes.student_id(student) / "lab" / f"{NB}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == test_cell)
    error = next(o for o in cell.outputs if o.output_type == "error")
    return error.evalue.rpartition("; likely mistake: ")[2]


def test_the_class_report_counts_each_planted_mistake_once_in_its_cell(graded):
    root, _ = graded
    rows = report_rows(root / "out")
    planted: dict[str, list[str]] = {}
    for student, (_, _, plant) in classes.PLANTED.items():
        if plant:
            planted.setdefault(plant[0].replace("-code", "-tests"), []).append(student)
    lost = {r["cell"]: r for r in rows if r["section"] == "lost points"}
    assert set(lost) == {f"q3_{i}-tests" for i in range(1, 6)}
    for cell, row in lost.items():  # the broken notebook scores zero everywhere: it lost points in every cell
        students = planted.get(cell, [])
        assert int(row["count"]) == len(students) + 1 and row["of"] == str(len(classes.PLANTED) + 1), row
        mistakes = [r for r in rows if r["section"] == "mistake" and r["cell"] == cell]
        assert sum(int(r["count"]) for r in mistakes) == len(students), mistakes
        expected: dict[str, int] = {}
        for student in students:
            named = named_in_message(root, student, cell)
            expected[named] = expected.get(named, 0) + 1
        assert {r["what"]: int(r["count"]) for r in mistakes} == expected
    assert [r["count"] for r in rows if r["section"] == "mistake" and r["cell"] == "q3_5-tests"] == ["2"]
    scores = {r["what"]: int(r["count"]) for r in rows if r["section"] == "notebook score"}
    assert scores == {"10": 2, "8": 6, "0": 1}  # full marks on the code (written answers not marked yet)
    attention = [r for r in rows if r["section"] == "attention"]
    assert len(attention) == 1 and attention[0]["what"].startswith("Zed-Broken_2040: invalid notebook"), attention


def secret_lines_parsed_here() -> set[str]:
    """The lines of the hidden-test and solution regions that the student's release does not show."""
    shown = {squeeze(line) for c in nbformat.read(classes.RELEASE, as_version=4).cells for line in c.source.split("\n")}
    return {squeeze(line) for line in classes.hidden_lines()} - shown - {""}


def test_no_feedback_page_holds_a_line_of_the_hidden_tests_or_the_solutions(graded):
    root, _ = graded
    secret = secret_lines_parsed_here()
    assert len(secret) > 50  # the regions were found
    pages = sorted((root / "out" / "feedback").rglob("*.html"))
    with zipfile.ZipFile(root / "out" / "feedback-moodle.zip") as zf:
        texts = [p.read_text(encoding="utf-8") for p in pages] + [zf.read(n).decode() for n in zf.namelist()]
    assert len(pages) == 2 * len(classes.PLANTED) - 1  # an index each, a notebook page each but the leaker's
    for text in texts:
        shown = [squeeze(line) for line in visible(text).split("\n")]
        leaked = secret & set(shown)
        assert not leaked, sorted(leaked)[:5]
    one = visible(page_of(root, "s0"))
    code = classes.PLANTED["s0"][2][1][1]  # the student's own version of pca_map is on their page
    assert squeeze("return (U[:, :M] * S[:M])[: len(x)]") in squeeze(one) and "return (U[:, :M]" in code


def test_a_failed_check_shows_its_message_never_the_test_code(graded):
    root, _ = graded
    page = page_of(root, "s0")
    text = visible(page)
    assert "likely mistake: the encodings of the data points U Sigma were returned, ignoring x" in text
    assert re.search(r"q3_1-tests\)\s*0 / 2", text) and re.search(r"q3_2-tests\)\s*2 / 2", text)
    for code in ("checks.close(", "own_work(", "BEGIN HIDDEN", "Self-check for Question", "google.colab",
                 "the instructor must set"):
        assert code not in page, code
    assert "not marked yet" in text


def test_a_planted_hidden_test_line_keeps_the_page_unwritten_and_the_run_names_it(graded):
    root, log = graded
    leo = root / "out" / "feedback" / classes.student_id("leo")
    assert not (leo / f"{NB}.html").exists()
    assert "held back" in (leo / "index.html").read_text()
    refused = [line for line in log if "not written" in line]
    assert len(refused) == 1 and classes.student_id("leo") in refused[0], log
    assert classes.leak_line() in refused[0] and "cell 'q3_1-tests'" in refused[0]
    with zipfile.ZipFile(root / "out" / "feedback-moodle.zip") as zf:
        assert not [n for n in zf.namelist() if n.startswith("Leo Leaker_2030") and n.endswith(f"{NB}.html")]


def test_moodles_zip_has_one_folder_per_participant_named_as_in_moodles_download(graded):
    root, _ = graded
    with zipfile.ZipFile(root / "out" / "feedback-moodle.zip") as zf:
        names = zf.namelist()
        folders = {}
        for name in names:
            top, _, file = name.partition("/")
            full, pid, kind, plugin, rest = top.split("_", 4)  # how Moodle's importer reads it
            assert (kind, plugin, rest) == ("assignsubmission", "file", "") and pid.isdigit() and "/" not in file
            folders.setdefault((full, pid), set()).add(file)
            student = next(s for s, (n, p, _) in classes.PLANTED.items() if (n, p) == (full, pid))
            assert zf.read(name) == (root / "out" / "feedback" / classes.student_id(student) / file).read_bytes()
    assert set(folders) == {(n, p) for n, p, _ in classes.PLANTED.values()}
    assert all("index.html" in files for files in folders.values())


def mark_ada(course: Path) -> None:
    """Ada's answer to Question 3.1 marked: 1 point in the gradebook, rubric item 1 and a comment."""
    from nbgrader.api import Gradebook

    student = classes.student_id("ada")
    with Gradebook("sqlite:///" + str(course / "gradebook.db"), COURSE_ID) as gb:
        gb.find_grade("q3_1-answer", NB, "lab", student).manual_score = 1.0
        gb.find_comment("q3_1-answer", NB, "lab", student).manual_comment = "Right: $\\mathbf{V}_M$ it is."
        gb.db.commit()
    entry = {"items": ["1"], "adjustment": 0.0, "score": 1.0, "comment": "Right: $\\mathbf{V}_M$ it is.",
             "revision": 1, "answer_sha256": "0" * 64, "to_remark": False}
    (course / "labkit-marks.json").write_text(json.dumps(
        {"format": 1, "answers": {f"{student}/{NB}/q3_1-answer": entry}}), encoding="utf-8")


def test_a_marked_answer_shows_points_items_and_comment_after_from_course(graded, tmp_path):
    root, _ = graded
    course = tmp_path / "course"
    import shutil

    shutil.copytree(root / "course", course)
    mark_ada(course)
    out = tmp_path / "again"
    export(course, out, log=lambda *_: None)
    text = visible((out / "feedback" / classes.student_id("ada") / f"{NB}.html").read_text())
    assert re.search(r"q3_1-answer\)\s*1 / 1", text)
    assert "Rubric items applied" in text and "The marker's comment" in text and "it is." in text
    rows = report_rows(out)
    marks = {r["what"]: r["count"] for r in rows if r["section"] == "written mark" and r["cell"] == "q3_1-answer"}
    assert marks == {"1": "1", "not marked yet": str(len(classes.PLANTED) - 1)}
    assert [(r["what"], r["count"], r["of"]) for r in rows if r["section"] == "rubric item"] == [("1", "1", "1")]


def test_pages_in_chromium_draw_mathml_ask_nothing_outside_and_pass_axe(graded):
    reason = chromium.unavailable()
    if reason:
        pytest.skip(reason)
    root, _ = graded
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = chromium.launch(playwright)
        try:
            context = browser.new_context()
            offline = chromium.Offline(context)
            page = context.new_page()
            page.goto((root / "out" / "feedback" / classes.student_id("ada") / f"{NB}.html").as_uri())
            text = page.inner_text("body")
            assert "$\\mathbf" not in text and "\\mathbf" not in text
            assert page.locator("math").count() > 10
            assert page.evaluate("document.querySelector('math').getBoundingClientRect().width") > 0
            axe.assert_clean(page)
            page.goto((root / "out" / "class-report.html").as_uri())
            assert page.locator("img[alt^='Bar chart of']").count() == 2
            axe.assert_clean(page)
            assert offline.seen and not offline.outside, offline.outside
        finally:
            browser.close()


# --------------------------------------------------------------------------- without grading (fast)


def _cell(kind: str, source: str, **nbgrader):
    make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
    cell = make(source)
    if nbgrader:
        cell.metadata["nbgrader"] = nbgrader
    return cell


def test_a_page_leaves_out_test_code_install_cell_and_model_answer_lines():
    from labkit.course.report import feedback
    from labkit.course.report.graded import Class, Graded, Task

    test = _cell("code", "checks.close(got, want, 'mean')\n### BEGIN HIDDEN TESTS\nsecret_check()\n### END HIDDEN TESTS",
                 grade=True, grade_id="t", points=2)
    test.outputs = [nbformat.v4.new_output("display_data", data={"text/plain": ""},
                                           metadata={"labkit": {"check": "mean", "mistake": "off by one"}}),
                    nbformat.v4.new_output("error", ename="CheckFailed", evalue="mean: expected 1, got 2; likely mistake: off by one",
                                           traceback=["checks.close(got, want, 'mean')"])]
    given = _cell("code", "print('hello')")
    given.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello\nreturn x.mean(0) + 1\n")]
    nb = nbformat.v4.new_notebook(cells=[
        _cell("code", 'import sys\nif "google.colab" in sys.modules:\n    raise RuntimeError("the instructor must set")'),
        _cell("markdown", "# Task\n\nThe mean $\\mathbf{m} = \\frac{1}{N}\\sum_n \\mathbf{x}_n$."),
        _cell("code", "def mean(x):\n    return x.mean(0) + 1\n    # my note", solution=True, grade_id="s"),
        test, given])
    task = Task("t", "test", "Task", 0.0, 2.0, message=test.outputs[1].evalue, mistake="off by one")
    klass = Class(Path("."), "lab", ["nb"], {}, {}, {}, {"nb": {"t": 2.0}}, {"nb": {"t": "test"}})
    secret = {"return x.mean(0) + 1": "nb.ipynb, cell 's'", "secret_check()": "nb.ipynb, cell 't'"}
    text, pieces = feedback.notebook_page(klass, Graded("ann", "nb", nb, None, {"t": task}), secret)
    shown = visible(text)
    assert "# my note" in shown and "return x.mean(0) + 1" not in text.split("<pre class=\"code\">")[1].split("</pre>")[0]
    assert feedback.REDACTED in shown
    assert "likely mistake: off by one" in shown and "0 / 2" in shown
    for hidden in ("checks.close", "secret_check", "google.colab", "the instructor must set", "$\\mathbf"):
        assert hidden not in text, hidden
    assert "<math" in text
    problems = feedback.leaks_of(pieces, secret)  # the given cell printed a model-answer line
    assert len(problems) == 1 and problems[0].startswith("cell 5, output 1, line 2:"), problems


def test_moodle_folder_names_split_as_moodle_splits_them():
    from labkit.course.report.lms import moodle_folder

    assert moodle_folder("Jane Smith", "11") == "Jane Smith_11_assignsubmission_file_"
    name, pid, kind, plugin, rest = moodle_folder("Ann_Marie  O/Neil", "12").split("_", 4)
    assert (name, pid, kind, plugin, rest) == ("Ann Marie O Neil", "12", "assignsubmission", "file", "")


def test_canvas_and_github_classroom_students_get_a_folder_named_by_their_platform_id(tmp_path):
    from labkit.course.intake.roster import Person
    from labkit.course.intake.submissions import Submission
    from labkit.course.report.lms import write_returns

    pages = {"smithjane_1001": {"index.html": "a"}, "alee": {"index.html": "b", "1_pca.html": "c"},
             "Jane-Smith_11": {"index.html": "d"}}
    canvas = [Submission("smithjane_1001", "smithjane_1001_2_1_pca.ipynb", platform_id="1001")]
    written = write_returns(pages, canvas, "canvas", (), tmp_path / "c")
    assert written == [tmp_path / "c" / "feedback-canvas"] and (tmp_path / "c" / "feedback-canvas" / "1001" / "index.html").read_text() == "a"
    github = [Submission("alee", "lab-alee", platform_id="alee"),
              Submission("Jane-Smith_11", "Jane Smith_11_assignsubmission_file_", name="Jane Smith", platform_id="11")]
    write_returns(pages, github, "folders", (), tmp_path / "g")
    assert sorted(p.name for p in (tmp_path / "g" / "feedback-github" / "alee").iterdir()) == ["1_pca.html", "index.html"]
    assert [p.name for p in (tmp_path / "g" / "feedback-github").iterdir()] == ["alee"]  # Moodle's is no GitHub user
    roster = [Submission("alee", "lab-alee", platform_id="alee", person=Person("1003", fields={"ID": "1003"}))]
    write_returns(pages, roster, "folders", ("canvas",), tmp_path / "r")
    assert (tmp_path / "r" / "feedback-canvas" / "1003" / "1_pca.html").read_text() == "c"


def test_reports_that_cannot_be_written_leave_a_warning_not_a_failed_run(tmp_path):
    from labkit.course.report import write_reports

    (tmp_path / "course" / "source").mkdir(parents=True)  # no assignment in it
    said: list[str] = []
    assert write_reports(tmp_path / "course", tmp_path / "out", [], said.append) == 0
    assert len(said) == 1 and "warning: the feedback and the class report are incomplete" in said[0]
    assert "grades.csv is complete" in said[0]
