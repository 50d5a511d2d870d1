"""Submissions as platforms deliver them (labkit/course/intake/layouts.py), rosters (roster.py) and the
files written beside grades.csv (grading/exports.py).

Fast tests read made-up downloads and rosters without nbgrader. Then one made-up
Canvas class of five students (a LATE resubmission, two students with the same
name, a zip, a student not on the roster) and a roster student who submitted
nothing are graded in ONE autograde call, and every row of summary.csv,
canvas-import.csv and moodle-import.csv is checked. The trees built here are
the ones docs/instructors.md shows.
"""
from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path

import nbformat
import pytest

from helpers.course import CANVAS_ROSTER, SOLUTIONS, Submissions, changed, load_csv, options, read, zip_bytes
from labkit.course.grading.autograde import autograde
from labkit.course.intake.layouts import detect_layout, read_submissions
from labkit.course.intake.roster import NOT_ON_ROSTER, apply_roster, read_roster
from labkit.course.intake.submissions import read_submission

EXPECTED = ["1_squares", "2_lists"]


def rows_of(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


def notebook(kind: str, name: str) -> str:
    return nbformat.writes(read(kind, name))


def wrong_add() -> str:
    return nbformat.writes(changed(read("solution", "1_squares"), {"add": "def add(a, b):\n    return a - b"}))


def canvas_download(folder: Path) -> Path:
    """Canvas's flat download of five students (docs/instructors.md shows this tree)."""
    lab = zip_bytes({"lab/1_squares.ipynb": notebook("solution", "1_squares"),
                     "lab/2_lists.ipynb": notebook("solution", "2_lists")})
    files = {
        # Jane Smith (1001): a first try, then a LATE resubmission (Canvas adds "-1")
        "smithjane_1001_5001_1_squares.ipynb": notebook("student", "1_squares"),
        "smithjane_1001_5002_2_lists.ipynb": notebook("solution", "2_lists"),
        "smithjane_LATE_1001_5007_1_squares-1.ipynb": notebook("solution", "1_squares"),
        # another Jane Smith (1002): the same name, so the same "smithjane"; one notebook, untouched
        "smithjane_1002_5003_1_squares.ipynb": notebook("student", "1_squares"),
        # Al Lee (1003): a zip of both
        "leeal_1003_5004_lab.zip": lab,
        # Bo Nguyen (1004): add() wrong
        "nguyenbo_1004_5005_1_squares.ipynb": wrong_add(),
        "nguyenbo_1004_5006_2_lists.ipynb": notebook("solution", "2_lists"),
        # Kim Young (1005): not on the roster
        "youngkim_1005_5008_1_squares.ipynb": notebook("solution", "1_squares"),
        "youngkim_1005_5009_2_lists.ipynb": notebook("solution", "2_lists"),
    }
    subs = Submissions(folder)
    for name, data in files.items():
        subs.add(name, data)
    return folder


# --------------------------------------------------------------------------- fast: no nbgrader


def test_canvas_download_is_grouped_by_user_with_versions_and_late(tmp_path):
    subs_dir = canvas_download(tmp_path / "canvas")
    (subs_dir / "readme.txt").write_text("not a submission")
    assert detect_layout(subs_dir) == "canvas"
    subs, layout = read_submissions(subs_dir, "auto", EXPECTED)
    assert layout == "canvas"
    found = {s.student: s for s in subs}
    assert sorted(found) == ["leeal_1003", "nguyenbo_1004", "readme.txt", "smithjane_1001", "smithjane_1002",
                             "youngkim_1005"]
    jane = found["smithjane_1001"]
    assert (jane.name, jane.platform_id, jane.late) == ("smithjane", "1001", True)
    assert sorted(jane.files) == ["1_squares.ipynb", "2_lists.ipynb"]
    assert jane.files["1_squares.ipynb"].decode() == notebook("solution", "1_squares")  # the newest, -1
    assert jane.file_notes["1_squares.ipynb"] == [
        "graded the newest of 2 versions, 1_squares-1.ipynb (not graded: 1_squares.ipynb)",
        "submitted LATE (Canvas)"]
    assert jane.file_notes["2_lists.ipynb"] == [] and jane.attention == ["1_squares: newest of 2 versions graded"]
    other = found["smithjane_1002"]
    assert (other.platform_id, other.late, list(other.files)) == ("1002", False, ["1_squares.ipynb"])
    assert sorted(found["leeal_1003"].files) == ["lab.zip/lab/1_squares.ipynb", "lab.zip/lab/2_lists.ipynb"]
    assert found["readme.txt"].ignored and "not named as Canvas names" in found["readme.txt"].problem


def test_canvas_zip_as_downloaded_reads_the_same(tmp_path):
    flat = canvas_download(tmp_path / "flat")
    zipped = tmp_path / "zipped"
    zipped.mkdir()
    with zipfile.ZipFile(zipped / "submissions.zip", "w") as zf:
        for p in sorted(flat.iterdir()):
            zf.write(p, p.name)
    assert detect_layout(zipped) == "canvas"
    a, _ = read_submissions(flat)
    b, _ = read_submissions(zipped)
    assert [(s.student, s.files, s.file_notes, s.late) for s in a] == [(s.student, s.files, s.file_notes, s.late)
                                                                       for s in b]


def test_a_counter_in_an_expected_name_is_kept(tmp_path):
    d = tmp_path / "c"
    d.mkdir()
    (d / "leeal_1_2_part-2.ipynb").write_text("{}")
    (d / "leeal_1_3_part-2-1.ipynb").write_text("[]")
    (sub,), _ = read_submissions(d, "canvas", ["part-2"])
    assert sub.files == {"part-2.ipynb": b"[]"}
    (sub,), _ = read_submissions(d, "canvas")  # without the expected names, every -N is taken for a counter
    assert sub.files == {"part.ipynb": b"{}", "part-2.ipynb": b"[]"}


def test_folders_moodle_and_github_classroom(tmp_path):
    d = tmp_path / "subs"
    (d / "Jane Smith_11_assignsubmission_file_").mkdir(parents=True)
    (d / "Jane Smith_11_assignsubmission_file_" / "1_squares.ipynb").write_text("{}")
    for user in ("alice", "bob-b"):
        (d / f"lab-2-{user}" / ".git").mkdir(parents=True)
        (d / f"lab-2-{user}" / "1_squares.ipynb").write_text("{}")
    with zipfile.ZipFile(d / "carol.zip", "w") as zf:
        zf.writestr("lab/1_squares.ipynb", "{}")
    assert detect_layout(d) == "folders"
    subs, layout = read_submissions(d, "moodle")
    assert layout == "moodle"
    assert not any(s.files for s in subs)  # folders and zips are read one student at a time, when graded
    assert [(s.student, s.name, s.platform_id, list(read_submission(s).files)) for s in subs] == [
        ("Jane-Smith_11", "Jane Smith", "11", ["1_squares.ipynb"]), ("carol", "", "", ["lab/1_squares.ipynb"]),
        ("lab-2-alice", "", "alice", ["1_squares.ipynb"]), ("lab-2-bob-b", "", "bob-b", ["1_squares.ipynb"])]
    with pytest.raises(ValueError, match="--layout 'blackboard': choose one of auto, folders, moodle, canvas"):
        read_submissions(d, "blackboard")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_rosters_of_each_platform_are_recognised(tmp_path):
    canvas = read_roster(write(tmp_path / "canvas.csv", "\ufeff" + CANVAS_ROSTER))
    assert canvas.kind == "canvas"
    assert [(p.id, p.name, p.platform_id) for p in canvas.people][:2] == [
        ("1001", "Smith, Jane", "1001"), ("1002", "Smith, Jane", "1002")]
    assert len(canvas.people) == 5  # not the Points Possible row
    worksheet = read_roster(write(tmp_path / "w.csv", "Identifier,Full name,Email address,Status\n"
                                  "Participant 11,Jane Smith,jane@example.org,Submitted\n"))
    assert worksheet.kind == "moodle-worksheet"
    assert [(p.id, p.name, p.email, p.platform_id) for p in worksheet.people] == [
        ("11", "Jane Smith", "jane@example.org", "11")]
    moodle = read_roster(write(tmp_path / "m.csv", "First name;Surname;ID number;Email address\n"
                               "Jane;Smith;S11;jane@example.org\n"))
    assert (moodle.kind, moodle.people[0].id, moodle.people[0].name) == ("moodle", "S11", "Jane Smith")
    github = read_roster(write(tmp_path / "g.csv", "identifier,github_username,github_id,name\n"
                               "jane@example.org,bob-b,42,Bob B\n"))
    assert (github.kind, github.people[0].platform_id) == ("github", "bob-b")
    plain = read_roster(write(tmp_path / "p.csv", "Matrikel\tVorname\n123\tJane\n"), id_column="matrikel",
                        name_column="Vorname")
    assert [(p.id, p.name) for p in plain.people] == [("123", "Jane")]
    with pytest.raises(ValueError, match=r"--roster-id 'nr': the roster has no such column \(it has: Matrikel, Vorname\)"):
        read_roster(tmp_path / "p.csv", id_column="nr")
    with pytest.raises(ValueError, match="no student id column found"):
        read_roster(write(tmp_path / "x.csv", "a,b\n1,2\n"))
    with pytest.raises(ValueError, match="'1' appears twice"):
        read_roster(write(tmp_path / "d.csv", "id\n1\n1\n"))


def test_roster_gives_missing_rows_and_flags_strangers(tmp_path):
    subs, _ = read_submissions(canvas_download(tmp_path / "canvas"))
    roster = read_roster(write(tmp_path / "r.csv", CANVAS_ROSTER))
    found = {s.student: s for s in apply_roster(subs, roster)}
    assert sorted(found) == ["leeal_1003", "nguyenbo_1004", "parksam_1006", "smithjane_1001", "smithjane_1002",
                             "youngkim_1005"]
    assert found["smithjane_1002"].person.fields["SIS Login ID"] == "jsmith2"  # same name: matched by user id
    assert found["smithjane_1001"].name == "Smith, Jane"
    assert found["youngkim_1005"].notes == [NOT_ON_ROSTER] and found["youngkim_1005"].person is None
    sam = found["parksam_1006"]
    assert sam.missing and sam.problem == "missing (no submission)" and sam.name == "Park, Sam"


def test_two_students_whose_names_give_the_same_id(tmp_path):
    """Folders "Zoë O'Neil" and "Zoe O-Neil" both give Zoe-O-Neil: the second becomes Zoe-O-Neil-2.
    A roster with two people of that name cannot tell them apart: both are flagged, nobody is guessed."""
    d = tmp_path / "subs"
    for name in ("Zoë O'Neil", "Zoe O-Neil", "Ann Bell"):
        (d / name).mkdir(parents=True)
        (d / name / "1_squares.ipynb").write_text("{}")
    subs, _ = read_submissions(d)
    for sub in subs:  # a folder layout has no names; give them the folders' (as Moodle's would)
        sub.name = sub.source
    roster = read_roster(write(tmp_path / "r.csv", "email,name\nz1@x.org,Zoe O'Neil\nz2@x.org,Zoë ONeil\n"
                                                   "ann@x.org,Ann Bell\n"))
    found = {s.student: s for s in apply_roster(subs, roster)}
    assert sorted(found) == ["Ann-Bell", "Zoe-O-Neil", "Zoe-O-Neil-2", "z1-x.org", "z2-x.org"]
    assert found["Ann-Bell"].person.email == "ann@x.org"
    assert found["Zoe-O-Neil"].attention == found["Zoe-O-Neil-2"].attention == [NOT_ON_ROSTER]
    assert found["z1-x.org"].missing and found["z2-x.org"].missing


def test_import_files_need_ids_they_can_use(tmp_path):
    d = tmp_path / "subs"
    (d / "bob").mkdir(parents=True)
    with pytest.raises(ValueError, match="--lms canvas needs Canvas user IDs"):
        autograde(d, solutions=SOLUTIONS, out=tmp_path / "out", lms=("canvas",), log=lambda *_: None)
    with pytest.raises(ValueError, match="--lms moodle needs --roster"):
        autograde(d, solutions=SOLUTIONS, out=tmp_path / "out", lms=("moodle",), log=lambda *_: None)
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- a Canvas class, graded once


@pytest.fixture(scope="module")
def canvas_class(tmp_path_factory):
    root = tmp_path_factory.mktemp("canvas")
    subs = canvas_download(root / "download")
    roster = write(root / "gradebook-export.csv", CANVAS_ROSTER)
    table = autograde(subs, solutions=SOLUTIONS, out=root / "out", roster=roster, lms=("canvas", "moodle"),
                      lms_column="Lab (777)", keep=root / "course",
                      options=options(), log=lambda *_: None)
    return root / "out", table


@pytest.mark.as_user
def test_canvas_class_grades(canvas_class):
    out, _ = canvas_class
    rows = load_csv(out / "grades.csv")
    assert sorted({s for s, _ in rows}) == ["leeal_1003", "nguyenbo_1004", "parksam_1006", "smithjane_1001",
                                            "smithjane_1002", "youngkim_1005"]
    late = rows["smithjane_1001", "1_squares"]
    assert late["total"] == "3" and late["status"] == (
        "graded; graded the newest of 2 versions, 1_squares-1.ipynb (not graded: 1_squares.ipynb); "
        "submitted LATE (Canvas); to grade by hand: why")
    assert rows["smithjane_1002", "2_lists"]["status"] == "missing" and rows["smithjane_1002", "2_lists"]["total"] == "0"
    assert rows["leeal_1003", "2_lists"]["status"] == "graded"  # lab.zip/lab/2_lists.ipynb
    assert rows["parksam_1006", "1_squares"]["status"] == "missing (no submission)"
    assert rows["parksam_1006", "1_squares"]["total"] == "0" and rows["parksam_1006", "1_squares"]["max"] == "4"
    assert rows["youngkim_1005", "2_lists"]["status"] == "graded; not on the roster"


@pytest.mark.as_user
def test_canvas_class_summary_every_row(canvas_class):
    out, _ = canvas_class
    assert rows_of(out / "summary.csv") == [
        ["student", "user_id", "name", "email", "1_squares", "2_lists", "total", "max", "to_grade_by_hand", "late",
         "status"],
        ["leeal_1003", "1003", "Lee, Al", "", "3", "3", "6", "7", "1", "no", "to grade by hand"],
        ["nguyenbo_1004", "1004", "Nguyen, Bo", "", "1", "3", "4", "7", "1", "no", "to grade by hand"],
        ["parksam_1006", "1006", "Park, Sam", "", "0", "0", "0", "7", "0", "no", "missing (no submission)"],
        ["smithjane_1001", "1001", "Smith, Jane", "", "3", "3", "6", "7", "1", "yes",
         "1_squares: newest of 2 versions graded; to grade by hand; late"],
        ["smithjane_1002", "1002", "Smith, Jane", "", "0", "0", "0", "7", "0", "no", "2_lists: missing"],
        ["youngkim_1005", "1005", "youngkim", "", "3", "3", "6", "7", "1", "no",
         "not on the roster; to grade by hand"],
    ]


@pytest.mark.as_user
def test_canvas_class_canvas_import_every_row(canvas_class):
    out, _ = canvas_class
    assert rows_of(out / "canvas-import.csv") == [
        ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Lab (777)"],
        ["Points Possible", "", "", "", "", "7"],
        ["Lee, Al", "1003", "S1003", "alee", "Lab A", "6"],
        ["Nguyen, Bo", "1004", "S1004", "bnguyen", "Lab B", "4"],
        ["Park, Sam", "1006", "S1006", "spark", "Lab A", "0"],
        ["Smith, Jane", "1001", "S1001", "jsmith", "Lab A", "6"],
        ["Smith, Jane", "1002", "S1002", "jsmith2", "Lab B", "0"],
        ["youngkim", "1005", "", "", "", "6"],  # not on the roster: its Canvas ID from the file names
    ]


@pytest.mark.as_user
def test_canvas_class_moodle_import_every_row(canvas_class):
    """The roster's SIS ids are the Moodle ID number and username; the student not on it has neither."""
    out, _ = canvas_class
    assert rows_of(out / "moodle-import.csv") == [
        ["ID number", "Username", "Full name", "Lab (777)"],
        ["S1003", "alee", "Lee, Al", "6"],
        ["S1004", "bnguyen", "Nguyen, Bo", "4"],
        ["S1006", "spark", "Park, Sam", "0"],
        ["S1001", "jsmith", "Smith, Jane", "6"],
        ["S1002", "jsmith2", "Smith, Jane", "0"],
    ]


@pytest.mark.as_user
def test_kept_course_writes_the_same_summary_and_imports(canvas_class, tmp_path):
    """`labkit autograde --from-course` (after the formgrader) writes every file again, the same bytes."""
    from labkit.cli import main

    out, _ = canvas_class
    assert main(["autograde", "--from-course", str(out.parent / "course"), "--out", str(tmp_path)]) == 0
    for name in ("grades.csv", "summary.csv", "canvas-import.csv", "moodle-import.csv"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name


def doc_blocks() -> list[str]:
    """The code blocks of docs/instructors.md, each with its lines' newlines."""
    text = (Path(__file__).parent.parent / "docs" / "instructors.md").read_text()
    return re.findall(r"^```[a-z]*\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)


@pytest.mark.as_user
def test_the_docs_show_the_test_classes(canvas_class, tmp_path):
    """docs/instructors.md's trees, roster and outputs are this file's classes and what grading wrote."""
    blocks = doc_blocks()
    tree = next(b for b in blocks if "smithjane_1001_5001_1_squares.ipynb" in b)
    shown = [line.split()[0] for line in tree.splitlines()[1:]]
    assert sorted(shown) == sorted(p.name for p in canvas_download(tmp_path / "c").iterdir())
    folders = next(b for b in blocks if "assignsubmission_file_" in b)
    for name in ("Jane Smith_11_assignsubmission_file_/", "lab-2-alice/", "lab-2-bob-b/", "carol.zip"):
        assert "\n  " + name in folders
    assert CANVAS_ROSTER in blocks
    out, _ = canvas_class
    assert (out / "summary.csv").read_text() in blocks
    for name in ("canvas-import.csv", "moodle-import.csv"):
        shown = next(b for b in blocks if b.startswith(rows_of(out / name)[0][0]) and "..." in b)
        lines = (out / name).read_text().splitlines()
        assert [line for line in shown.splitlines() if line != "..."] == [
            line for line in lines if line in shown.splitlines()], name
        assert all(line in lines for line in shown.splitlines() if line != "..."), name


# --------------------------------------------------------------------------- a Moodle class, graded once

MOODLE_WORKSHEET = """\
Identifier,Full name,Email address,Status,Grade,Maximum Grade
Participant 11,Jane Smith,jane1@example.org,Submitted for grading,,7
Participant 12,Jane Smith,jane2@example.org,Submitted for grading,,7
Participant 14,Sam Park,sam@example.org,No submission,,7
"""


def moodle_download(folder: Path) -> Path:
    """Moodle's download: two students named Jane Smith, one student not on the worksheet."""
    subs = Submissions(folder)
    for name in ("1_squares", "2_lists"):  # Jane Smith 11: the solutions, nested
        subs.add(f"Jane Smith_11_assignsubmission_file_/lab/{name}.ipynb", notebook("solution", name))
    subs.zip("Jane Smith_12_assignsubmission_file_.zip",  # the other: untouched
             {f"{name}.ipynb": notebook("student", name) for name in ("1_squares", "2_lists")})
    subs.add("Ann Bell_13_assignsubmission_file_/1_squares.ipynb", notebook("solution", "1_squares"))  # not on the worksheet
    return subs.folder


@pytest.mark.as_user
def test_moodle_class_with_its_grading_worksheet(tmp_path):
    """Moodle's download (two students named Jane Smith, one not on the worksheet) and its grading
    worksheet as the roster: every row of summary.csv and moodle-import.csv."""
    subs = moodle_download(tmp_path / "download")
    roster = write(tmp_path / "worksheet.csv", MOODLE_WORKSHEET)
    autograde(subs, solutions=SOLUTIONS, out=tmp_path / "out", roster=roster, lms=("moodle",),
              options=options(), log=lambda *_: None)
    out = tmp_path / "out"
    assert rows_of(out / "summary.csv")[1:] == [
        ["Ann-Bell_13", "13", "Ann Bell", "", "3", "0", "3", "7", "1", "no",
         "not on the roster; 2_lists: missing; to grade by hand"],
        ["Jane-Smith_11", "11", "Jane Smith", "jane1@example.org", "3", "3", "6", "7", "1", "no", "to grade by hand"],
        ["Jane-Smith_12", "12", "Jane Smith", "jane2@example.org", "0", "0", "0", "7", "0", "no", "ok"],
        ["Sam-Park_14", "14", "Sam Park", "sam@example.org", "0", "0", "0", "7", "0", "no", "missing (no submission)"],
    ]
    assert rows_of(out / "moodle-import.csv") == [
        ["Email address", "Full name", "lab"],
        ["jane1@example.org", "Jane Smith", "6"],
        ["jane2@example.org", "Jane Smith", "0"],
        ["sam@example.org", "Sam Park", "0"],
    ]
    assert not (out / "canvas-import.csv").exists()
