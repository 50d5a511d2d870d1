"""`labkit publish`: the student repository holds what a student needs and no secret, builds,
and runs on its own; the Colab links follow the one configured student repository.

The secret lines are found here by reading the solution notebooks directly (nbgrader's
delimiters and solution cells), independently of publish's own scan.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import nbformat
import pytest

from labkit.course.release import notebooks as release
from labkit.course.release import publish as pub
from labkit.course.release.student_repo import ConfigError, StudentRepo, install_cell, link_problems, load

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
REPO = StudentRepo("https://github.com/example-org/vae-lab-students", "spring-2027")
MADE_UP_ORG = "labkit-" + "course"  # the organisation the old links named (spelt so that this file does not hold it)
STUBS = {"# YOUR CODE HERE", "raise NotImplementedError()", "YOUR ANSWER HERE"}


def key(line: str) -> str:
    return " ".join(line.split())


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file() and ".git" not in p.relative_to(folder).parts}


def independent_secrets() -> set[str]:
    """Lines in solution/hidden-test regions or regionless solution cells, not shown anywhere else."""
    secret, visible = set(), set()
    for path in sorted(SOLUTIONS.glob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            lines = source.split("\n")
            if cell["metadata"].get("nbgrader", {}).get("solution") and "BEGIN SOLUTION" not in source:
                secret.update(key(x) for x in lines)
                continue
            inside = False
            for line in lines:
                if "BEGIN SOLUTION" in line or "BEGIN HIDDEN TESTS" in line:
                    inside = True
                elif "END SOLUTION" in line or "END HIDDEN TESTS" in line:
                    inside = False
                else:
                    (secret if inside else visible).add(key(line))
    return secret - visible - STUBS - {""}


def _a_solution_line() -> str:
    """A line of the solution code of 1_pca (its fit_pca cell), secret by construction: the first line
    of its solution region that no visible part of any notebook shows."""
    secret = independent_secrets()
    cell = next(c for c in nbformat.read(SOLUTIONS / "1_pca.ipynb", as_version=4).cells
                if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "pca-fit")
    region = cell.source.split("BEGIN SOLUTION", 1)[1].split("END SOLUTION", 1)[0].split("\n")[1:]
    return next(line.strip() for line in region if key(line) in secret and len(key(line)) > 12)


SOLUTION_LINE = _a_solution_line()


def public_entries() -> set[str]:
    import tomllib

    data = tomllib.loads((SOLUTIONS / "public-lines.toml").read_text(encoding="utf-8"))
    return {key(e["text"]) for e in data["line"]}


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    """The student repository, published (release check included, without executing notebooks)."""
    dest = tmp_path_factory.mktemp("published") / "students"
    pub.publish(dest, release_check=True, validate=False, force=True, log=lambda *a: None)
    return dest


# --------------------------------------------------------------------------- contents


@pytest.mark.as_user
def test_the_tree_holds_what_a_student_needs_and_nothing_else(published):
    files = set(tree(published))
    for needed in ("README.md", "pyproject.toml", "environment.yml", "LICENSE", ".gitignore",
                   "labkit/__init__.py", "labkit/models/vae.py", "tests/test_pca.py"):
        assert needed in files
    assert {f for f in files if f.startswith("notebooks/")} == {
        f"notebooks/{p.name}" for p in (ROOT / "notebooks").glob("*.ipynb")}
    for name in files:
        top = name.split("/")[0]
        assert top in {"notebooks", "labkit", "tests", "data", "README.md", "pyproject.toml",
                       "environment.yml", "LICENSE", ".gitignore"}, name
        assert not name.startswith("labkit/course/"), name
        assert not name.startswith("data/") or name == "data/README.md", name
        assert not name.endswith((".db", ".sqlite", ".pt", ".gz", "-ubyte")), name
    assert "tests/test_notebooks.py" not in files and "tests/test_grading.py" not in files
    for name in files:  # byte-identical copies of the checkout's files
        if name.startswith(("notebooks/", "labkit/", "tests/")) or name == "LICENSE":
            assert (published / name).read_bytes() == (ROOT / name).read_bytes(), name


@pytest.mark.as_user
def test_no_secret_line_anywhere_in_the_published_tree(published):
    secret = independent_secrets()
    assert key(SOLUTION_LINE) in secret and len(secret) > 100  # the check has something to find
    package = {key(x) for p in (published / "labkit").rglob("*.py") for x in p.read_text().split("\n")}
    public = public_entries()
    assert public <= package, "public-lines.toml may only excuse lines the labkit package shows"
    secret -= public
    found = []
    for name, data in tree(published).items():
        text = data.decode("utf-8")
        if name.endswith(".ipynb"):
            lines = [x for c in nbformat.reads(text, as_version=4).cells for x in c.source.split("\n")]
        else:
            lines = text.split("\n")
        found += [f"{name}: {x.strip()}" for x in lines if key(x) in secret]
        assert not re.search(r"BEGIN (SOLUTION|HIDDEN)", text), name
    assert found == []
    assert pub.scan(ROOT, tree(published)) == []


@pytest.mark.as_user
def test_the_published_tree_builds_offline_and_its_command_lacks_the_instructor_tools(published, tmp_path):
    published = shutil.copytree(published, tmp_path / "students")  # building writes build/ beside it
    out = tmp_path / "wheel"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "-q", "-w", str(out), str(published)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = out.glob("labkit_vae-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "labkit/models/vae.py" in names and "labkit/cli.py" in names
    assert not any(n.startswith("labkit/course/") for n in names)
    # the command works without labkit.course: `data` and `lab` only
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(published), sysconfig.get_paths()["purelib"]])}
    code = ("import labkit, labkit.cli as c; print(labkit.__file__); "
            "print(sorted(c.build_parser()._subparsers._group_actions[0].choices))")
    proc = subprocess.run([sys.executable, "-S", "-c", code], cwd=published, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    file, commands = proc.stdout.strip().split("\n")
    assert Path(file).resolve().is_relative_to(published.resolve())
    assert commands == "['data', 'lab']"


# --------------------------------------------------------------------------- the student repository runs alone


def fill_in(student_nb, solution_nb):
    """The student notebook with each solution cell replaced by the instructor's solution."""
    solutions = {c.metadata["nbgrader"]["grade_id"]: c for c in solution_nb.cells
                 if c.metadata.get("nbgrader", {}).get("solution")}
    filled = 0
    for cell in student_nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            source = solutions[meta["grade_id"]].source.split("\n")
            cell.source = "\n".join(x for x in source if "BEGIN SOLUTION" not in x and "END SOLUTION" not in x)
            filled += 1
    assert filled, "no solution cell to fill in"
    return student_nb


@pytest.mark.as_user
@pytest.mark.mnist
@pytest.mark.slow
def test_published_notebooks_run_alone_with_the_solutions_filled_in(published, tmp_path, mnist_root, monkeypatch):
    from nbclient import NotebookClient

    work = tmp_path / "students"
    shutil.copytree(published, work)
    # A kernel that imports labkit from the student repository only: no site processing (so the
    # checkout's editable install is not on the path), third-party packages from the environment.
    site_packages = sysconfig.get_paths()["purelib"]
    spec = tmp_path / "jupyter" / "kernels" / "students"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-S", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "student repository", "language": "python",
        "env": {"PYTHONPATH": os.pathsep.join([str(work), site_packages]), "LABKIT_DATA": str(mnist_root),
                "LABKIT_GRADING": "1", "MPLBACKEND": "Agg"},
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    probe = ("import json, os, sys, importlib.util, labkit\n"
             "print(json.dumps({'file': labkit.__file__, 'cwd': os.getcwd(), 'path': sys.path,\n"
             "                  'course': importlib.util.find_spec('labkit.course') is not None}))")
    for path in sorted((work / "notebooks").glob("*.ipynb")):
        nb = fill_in(nbformat.read(path, as_version=4), nbformat.read(SOLUTIONS / path.name, as_version=4))
        nb.cells.append(nbformat.v4.new_code_cell(probe))
        NotebookClient(nb, kernel_name="students", timeout=600,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        seen = json.loads(nb.cells[-1].outputs[0]["text"])
        assert Path(seen["file"]).resolve().is_relative_to(work.resolve()), seen["file"]
        assert Path(seen["cwd"]).resolve() == path.parent.resolve()
        assert not seen["course"]
        for entry in seen["path"]:  # of the checkout, only the environment's third-party packages
            resolved = Path(seen["cwd"], entry).resolve()
            if resolved.is_relative_to(ROOT):
                assert resolved.is_relative_to(Path(site_packages).resolve().parent.parent.parent), entry


# --------------------------------------------------------------------------- same bytes, .git untouched


@pytest.mark.as_user
def test_two_publishes_are_byte_identical(published, tmp_path):
    again = tmp_path / "again"
    pub.publish(again, release_check=False, force=True, log=lambda *a: None)
    assert tree(again) == tree(published)


@pytest.mark.as_user
def test_publishing_into_a_git_checkout_replaces_tracked_files_and_leaves_git_alone(published, tmp_path):
    dest = tmp_path / "clone"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-C", str(dest)]
    subprocess.run(["git", "init", "-q", str(dest)], check=True)
    (dest / "notebooks").mkdir()
    (dest / "notebooks" / "old.ipynb").write_text("{}")
    (dest / "README.md").write_text("old\n")
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "last term"], check=True)
    (dest / "notes.txt").write_text("untracked, mine\n")
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (dest / ".git").rglob("*") if p.is_file()}

    pub.publish(dest, release_check=False, force=True, log=lambda *a: None)

    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (dest / ".git").rglob("*") if p.is_file()}
    assert after == before
    assert (dest / "notes.txt").read_text() == "untracked, mine\n"
    assert not (dest / "notebooks" / "old.ipynb").exists()
    assert {k: v for k, v in tree(dest).items() if k != "notes.txt"} == tree(published)


def test_publish_refuses_a_folder_that_is_neither_empty_nor_a_checkout(tmp_path):
    (tmp_path / "x.txt").write_text("mine")
    with pytest.raises(pub.PublishError, match="neither empty nor a git checkout"):
        pub.publish(tmp_path, release_check=False, force=True, log=lambda *a: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]


# --------------------------------------------------------------------------- planted leaks


@pytest.fixture
def source_copy(tmp_path) -> Path:
    """The parts of the checkout that publish reads, copied (so that a test can plant a leak)."""
    root = tmp_path / "instructor"
    ignore = shutil.ignore_patterns("__pycache__")
    for folder in ("solutions", "notebooks", "labkit", "tests"):
        shutil.copytree(ROOT / folder, root / folder, ignore=ignore)
    for name in ("pyproject.toml", "LICENSE", pub.README_TEMPLATE, "data/README.md"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, root / name)
    return root


@pytest.mark.parametrize("planted", ["labkit/models/pca.py", "tests/test_pca.py", pub.README_TEMPLATE])
def test_a_planted_solution_line_makes_publish_refuse_naming_the_file(source_copy, tmp_path, planted):
    with open(source_copy / planted, "a", encoding="utf-8") as f:
        f.write(f"\n    {SOLUTION_LINE}\n")
    dest = tmp_path / "out"
    with pytest.raises(pub.PublishError) as info:
        pub.publish(dest, root=source_copy, release_check=False, force=True, log=lambda *a: None)
    shown = "README.md" if planted == pub.README_TEMPLATE else planted
    assert re.search(rf"{re.escape(shown)}, line \d+: solution or hidden-test text from \w+\.ipynb, cell",
                     str(info.value)), str(info.value)
    assert not dest.exists()


def test_a_planted_delimiter_and_a_bogus_public_line_are_refused(source_copy, tmp_path):
    with open(source_copy / "labkit" / "train.py", "a", encoding="utf-8") as f:
        f.write("\n# ### BEGIN HIDDEN TESTS\n")
    with pytest.raises(pub.PublishError, match=r"labkit/train\.py, line \d+: nbgrader delimiter"):
        pub.publish(tmp_path / "out", root=source_copy, release_check=False, force=True, log=lambda *a: None)
    with open(source_copy / pub.PUBLIC_LINES, "a", encoding="utf-8") as f:
        f.write(f'\n[[line]]\ntext = "{SOLUTION_LINE}"\nwhy = "to hide a leak"\n')
    with pytest.raises(pub.PublishError, match="not in the labkit package"):
        pub.publish(tmp_path / "out", root=source_copy, release_check=False, force=True, log=lambda *a: None)


def test_publish_refuses_stale_notebooks(source_copy, tmp_path):
    path = source_copy / "notebooks" / "1_pca.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source += "\nedited by hand"
    nbformat.write(nb, path)
    with pytest.raises(pub.PublishError, match="out of date"):
        pub.publish(tmp_path / "out", root=source_copy, validate=False, force=True, log=lambda *a: None)
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- one configured home


def test_badges_and_install_cells_follow_the_configured_repository(tmp_path):
    generated = tmp_path / "notebooks"
    release.generate(SOLUTIONS, generated, REPO)
    calls = []
    for path in sorted(generated.glob("*.ipynb")):
        cells = nbformat.read(path, as_version=4).cells
        url = f"https://colab.research.google.com/github/example-org/vae-lab-students/blob/spring-2027/notebooks/{path.name}"
        assert f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})" in cells[0].source
        cell = next(c for c in cells if c.cell_type == "code")
        # on Colab (a fake one) it installs from the configured repository and branch
        ipython = type("IP", (), {"run_line_magic": staticmethod(lambda *a: calls.append(a))})()
        exec(cell.source.replace("import sys\n", ""),  # noqa: S102
             {"sys": type("S", (), {"modules": {"google.colab": 1}}), "get_ipython": lambda: ipython})
        assert link_problems(nbformat.read(path, as_version=4), REPO, path.stem) == []
    assert calls and all(c == ("pip", 'install -q "labkit-vae @ git+https://github.com/example-org/vae-lab-students@spring-2027"')
                         for c in calls)


def test_release_check_fails_on_a_hand_edited_badge(tmp_path):
    notebooks = tmp_path / "notebooks"
    release.generate(SOLUTIONS, notebooks, REPO)
    assert release.release(SOLUTIONS, notebooks, check=True, validate=False, repo=REPO, log=lambda *a: None) == []
    path = notebooks / "2_ppca.ipynb"
    path.write_text(path.read_text(encoding="utf-8").replace("example-org/vae-lab-students", "someone/else"),
                    encoding="utf-8")
    changes = release.release(SOLUTIONS, notebooks, check=True, validate=False, repo=REPO, log=lambda *a: None)
    assert any("2_ppca" in c and "Colab badge" in c and "someone/else" in c for c in changes), changes
    # the notebooks of another configuration disagree too
    other = StudentRepo("https://github.com/example-org/vae-lab-students", "main")
    changes = release.release(SOLUTIONS, notebooks, check=True, validate=False, repo=other, log=lambda *a: None)
    assert any("1_pca" in c and "install cell" in c for c in changes), changes


def test_unset_repository_gives_no_badge_and_an_install_cell_that_says_how_to_set_it(tmp_path):
    release.generate(SOLUTIONS, tmp_path, StudentRepo())
    for path in sorted(tmp_path.glob("*.ipynb")):
        cells = nbformat.read(path, as_version=4).cells
        assert "Open In Colab" not in cells[0].source and "colab.research.google.com" not in path.read_text()
    src = install_cell(StudentRepo())
    assert "instructor" not in src and "pyproject" not in src and "raise" not in src  # nothing for the instructor
    printed = []
    colab = type("S", (), {"modules": {"google.colab": 1}})
    exec(src.replace("import sys\n", ""), {"sys": colab, "print": printed.append})  # noqa: S102
    assert len(printed) == 1 and "Ask your teacher" in printed[0] and "%pip install" in printed[0]
    printed.clear()
    exec(src.replace("import sys\n", ""), {"sys": type("S", (), {"modules": {}}), "print": printed.append})  # noqa: S102
    assert printed == []  # anywhere but Colab the cell does nothing


def test_publish_refuses_while_no_student_repository_is_configured_unless_forced(tmp_path):
    with pytest.raises(pub.PublishError, match=r"no student repository is configured.*student-repository.*--force"):
        pub.publish(tmp_path / "out", release_check=False, repo=StudentRepo(), log=lambda *a: None)
    assert not (tmp_path / "out").exists()
    said = []
    pub.publish(tmp_path / "out", release_check=False, repo=StudentRepo(), force=True, log=said.append)
    assert (tmp_path / "out" / "README.md").is_file() and any(line.startswith("WARNING") for line in said)


def test_the_checked_in_notebooks_follow_the_checkout_configuration():
    repo = load(ROOT)
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert link_problems(nbformat.read(path, as_version=4), repo, path.stem) == [], path.name


def test_configuration_errors_name_the_setting_and_the_fix(tmp_path):
    with pytest.raises(ConfigError, match="GitHub"):
        StudentRepo("https://gitlab.com/org/repo")
    with pytest.raises(ConfigError, match="GitHub"):
        StudentRepo("https://github.com/org/repo.git/")
    (tmp_path / "pyproject.toml").write_text('[tool.labkit]\nstudent-repo = "https://github.com/a/b"\n')
    with pytest.raises(ConfigError, match="unknown setting.*student-repo"):
        load(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.labkit]\nstudent-repository = "https://github.com/a/b"\n')
    assert load(tmp_path) == StudentRepo("https://github.com/a/b", "main")


def test_no_made_up_organisation_left_in_the_checkout():
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    for name in listed.stdout.split("\n"):
        path = ROOT / name
        if name and path.is_file() and path.suffix in {".md", ".ipynb", ".py", ".toml", ".yml", ""}:
            assert MADE_UP_ORG not in path.read_text(encoding="utf-8", errors="replace"), name


def test_readme_of_a_configured_repository_gives_the_clone_command_and_the_badges(source_copy):
    files = pub.student_tree(source_copy, REPO)
    readme = files["README.md"].decode()
    assert "git clone https://github.com/example-org/vae-lab-students && cd vae-lab-students" in readme
    assert readme.count("colab.research.google.com/github/example-org/vae-lab-students/blob/spring-2027/") == \
        len(list((source_copy / "notebooks").glob("*.ipynb")))
    assert 'Homepage = "https://github.com/example-org/vae-lab-students"' in files["pyproject.toml"].decode()
    assert "{{" not in readme
