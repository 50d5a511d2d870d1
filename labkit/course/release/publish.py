"""`labkit publish DIR`: the public student repository, written from this checkout without the solutions.

    labkit publish ../lab-students            # write (or rewrite) the student repository in that folder
    labkit publish ../lab-students --no-validate   # the release check without executing the notebooks

The instructor's repository (this one) stays private: it holds solutions/,
every hidden test and the grading tools. Students get a second repository
that holds what they need and nothing else (:func:`student_tree`):

- ``notebooks/``      the released student notebooks, checked up to date with
                      solutions/ first, as ``labkit release --check`` does;
- ``labkit/``         the package without ``labkit/course/``: releasing and
                      grading need solutions/ and nbgrader, which a student
                      repository has not, so its commands could only fail there;
- ``tests/``          the package's own tests (``conftest.py`` and every
                      ``tests/test_*.py`` that never mentions solutions or
                      ``labkit.course``), to check an installation;
- ``README.md``       rendered from ``docs/student-README.md`` with the configured
                      repository (set-up on a laptop, on Colab, in a computer room;
                      where the data come from);
- ``pyproject.toml``  the same distribution (``labkit-vae``) and dependencies,
                      without the grading extra; ``environment.yml`` derived from it;
- ``LICENSE``, ``data/README.md`` and a ``.gitignore`` that keeps data out of git.

Never solutions/, docs/, benchmarks/, the tests of the notebooks or of the
grading, a gradebook, data or the instructor's git history.

Every file is built in memory and scanned (:func:`scan`) before anything is
written: no line of a solution region, written model answer or hidden test
(``labkit.course.release.leaks``) may appear in any of them, unless
``solutions/public-lines.toml`` lists it as a line the ``labkit`` package
already shows. On a leak nothing is written and the file and line are named.
DIR is created, or is empty, or is a git checkout of the student repository:
its tracked files are replaced, its ``.git`` is never touched, untracked files
are left alone. The same sources give the same bytes.

Owns: :func:`student_tree`, :func:`scan`, :func:`write_tree`, :func:`publish`, the command.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from labkit.cli import add_command
from labkit.course.paths import require_project_root
from labkit.course.release import notebooks as release
from labkit.course.release.leaks import leaks_in_lines, line_key, secret_lines
from labkit.course.release.student_repo import DISTRIBUTION, HOW_TO_SET, StudentRepo, badge, tomllib
from labkit.course.release.student_repo import load as load_student_repo
from labkit.errors import ReleaseError

README_TEMPLATE = "docs/student-README.md"
PUBLIC_LINES = "solutions/public-lines.toml"
# Installed from PyPI by pip inside a conda environment (conda-forge's builds differ).
PIP_ONLY = {"torch", "torchvision"}
GITIGNORE = """\
# environments and build output
.venv/
__pycache__/
*.egg-info/
build/
dist/
.pytest_cache/
.ipynb_checkpoints/

# data: MNIST is downloaded here; never commit it
data/*
!data/README.md

# labkit lab's report
results/
"""


class PublishError(ReleaseError):
    """The student repository could not be published; the message says why and what to do."""


# --------------------------------------------------------------------------- what a student gets


def _shipped_tests(root: Path) -> list[Path]:
    """conftest.py and the tests that need none of solutions/, scripts/, docs/ or the instructor's tools
    (none of which the student repository holds)."""
    tests = sorted((root / "tests").glob("test_*.py"))
    keep = [p for p in tests if not re.search(r"solutions|labkit\.course|\bscripts\b|\bdocs/", p.read_text(encoding="utf-8"))]
    conftest = root / "tests" / "conftest.py"
    return ([conftest] if conftest.is_file() else []) + keep


def _package_files(root: Path) -> list[Path]:
    """Every .py file of labkit/ except labkit/course/."""
    package = root / "labkit"
    return sorted(p for p in package.rglob("*.py")
                  if "__pycache__" not in p.parts and p.relative_to(package).parts[0] != "course")


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a TOML basic string
    if isinstance(value, list):
        items = [_toml_value(v) for v in value]
        one_line = "[" + ", ".join(items) + "]"
        return one_line if len(one_line) <= 80 else "[\n" + "".join(f"    {i},\n" for i in items) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def _toml(tables: dict[str, dict]) -> str:
    """``{"project": {...}, "project.urls": {...}}`` as TOML text, in the given order."""
    blocks = []
    for name, table in tables.items():
        lines = [f"[{name}]"]
        for key, value in table.items():
            bare = re.fullmatch(r"[A-Za-z0-9_-]+", key)
            lines.append(f"{key if bare else json.dumps(key)} = {_toml_value(value)}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def student_pyproject(config: dict, repo: StudentRepo) -> str:
    """The student repository's pyproject.toml, from the instructor's (parsed) one."""
    project = config["project"]
    extras = project.get("optional-dependencies", {})
    tables = {
        "build-system": config["build-system"],
        "project": {k: project[k] for k in ("name", "version", "description", "readme", "requires-python",
                                            "license", "dependencies") if k in project},
        "project.optional-dependencies": {k: extras[k] for k in ("notebooks", "test") if k in extras},
        "project.scripts": project.get("scripts", {}),
    }
    if repo.configured:
        tables["project.urls"] = {"Homepage": repo.url}
    tables["tool.setuptools.packages.find"] = {"include": ["labkit*"]}
    pytest_cfg = config.get("tool", {}).get("pytest", {}).get("ini_options", {})
    tables["tool.pytest.ini_options"] = {"testpaths": ["tests"], "addopts": "-ra",
                                         **({"markers": pytest_cfg["markers"]} if "markers" in pytest_cfg else {})}
    text = ("# The student repository of the lab, written by `labkit publish` from the instructor's repository.\n"
            + _toml(tables))
    tomllib.loads(text)  # what we write must parse
    return text


def student_environment(config: dict) -> str:
    """A conda environment.yml equal to ``pip install -e ".[notebooks]"``."""
    project = config["project"]
    requirements = list(project["dependencies"]) + list(project.get("optional-dependencies", {}).get("notebooks", []))
    conda, pip = [], []
    for req in requirements:
        name = re.match(r"[A-Za-z0-9_.-]+", req).group(0).lower()
        (pip if name in PIP_ONLY or ";" in req else conda).append(req)
    python = project.get("requires-python", ">=3.10").replace(" ", "")
    lines = ["# conda env create -f environment.yml && conda activate labkit",
             '# The same environment as `pip install -e ".[notebooks]"` (pyproject.toml).',
             "name: labkit", "channels:", "  - conda-forge", "dependencies:", f"  - python{python}", "  - pip"]
    lines += [f"  - {r}" for r in conda] + ["  - pip:"] + [f"      - {r}" for r in pip] + ["      - -e ."]
    return "\n".join(lines) + "\n"


def _title(notebook: Path) -> str:
    import nbformat

    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type == "markdown":
            first = cell.source.strip().split("\n")[0]
            return first.lstrip("#").strip() if first.startswith("#") else notebook.stem
    return notebook.stem


def student_readme(template: str, notebooks: list[Path], repo: StudentRepo) -> str:
    """``docs/student-README.md`` with its ``{{placeholders}}`` filled in."""
    folder = repo.url.rsplit("/", 1)[-1] if repo.configured else "REPOSITORY"
    rows = ["| notebook | what it covers |" + (" Colab |" if repo.configured else ""),
            "| --- | --- |" + (" --- |" if repo.configured else "")]
    for path in notebooks:
        link = f" {badge(repo, path.stem)} |" if repo.configured else ""
        rows.append(f"| `notebooks/{path.name}` | {_title(path)} |{link}")
    values = {
        "clone": (f"git clone {repo.url} && cd {folder}" if repo.configured
                  else "git clone ADDRESS-OF-THIS-REPOSITORY REPOSITORY && cd REPOSITORY"),
        "distribution": DISTRIBUTION,
        "notebooks": "\n".join(rows),
        "colab": ("Open a notebook with its *Open in Colab* badge in the table above."
                  if repo.configured else
                  "Your instructor gives you the Colab links once the course's repository is online."),
    }

    def fill(match):
        name = match.group(1)
        if name not in values:
            raise PublishError(f"{README_TEMPLATE}: unknown placeholder {{{{{name}}}}} "
                               f"(known: {', '.join(sorted(values))})")
        return values[name]

    return re.sub(r"\{\{\s*(\w+)\s*\}\}", fill, template)


def student_tree(root: str | os.PathLike, repo: StudentRepo | None = None) -> dict[str, bytes]:
    """Every file of the student repository: relative POSIX path -> bytes, sorted by path."""
    root = Path(root)
    repo = load_student_repo(root) if repo is None else repo
    for needed in ("pyproject.toml", "LICENSE", README_TEMPLATE, "notebooks", "labkit"):
        if not (root / needed).exists():
            raise PublishError(f"{root / needed} is missing; publish writes the student repository from it")
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    notebooks = sorted((root / "notebooks").glob("*.ipynb"))
    files: dict[str, bytes] = {}
    for path in notebooks + _package_files(root) + _shipped_tests(root) + [root / "LICENSE"]:
        files[path.relative_to(root).as_posix()] = path.read_bytes()
    if (root / "data" / "README.md").is_file():
        files["data/README.md"] = (root / "data" / "README.md").read_bytes()
    template = (root / README_TEMPLATE).read_text(encoding="utf-8")
    files["README.md"] = student_readme(template, notebooks, repo).encode("utf-8")
    files["pyproject.toml"] = student_pyproject(config, repo).encode("utf-8")
    files["environment.yml"] = student_environment(config).encode("utf-8")
    files[".gitignore"] = GITIGNORE.encode("utf-8")
    return dict(sorted(files.items()))


# --------------------------------------------------------------------------- the leak scan


def public_lines(root: str | os.PathLike, files: dict[str, bytes]) -> dict[str, str]:
    """``solutions/public-lines.toml``: solution lines the labkit package already shows (key -> why).

    Each entry must occur in the published ``labkit/`` package: the list can
    only excuse what the package already makes public.
    """
    path = Path(root) / PUBLIC_LINES
    if not path.is_file():
        return {}
    entries = tomllib.loads(path.read_text(encoding="utf-8")).get("line", [])
    package = {line_key(line) for rel, data in files.items() if rel.startswith("labkit/")
               for line in data.decode("utf-8").split("\n")}
    public = {}
    for entry in entries:
        key = line_key(entry.get("text", ""))
        if not key or not entry.get("why"):
            raise PublishError(f"{path}: every [[line]] needs a text and a why: {entry!r}")
        if key not in package:
            raise PublishError(f"{path}: {key!r} is not in the labkit package; only a line the package "
                               "already shows can be public (remove the entry)")
        public[key] = entry["why"]
    return public


def scan(root: str | os.PathLike, files: dict[str, bytes]) -> list[str]:
    """Secret lines (and nbgrader delimiters) in ``files``, one message each naming file and line."""
    import nbformat

    root = Path(root)
    secret, _ = secret_lines(release.solution_notebooks(root / "solutions"))
    for key in public_lines(root, files):
        secret.pop(key, None)
    problems = []
    for rel, data in files.items():
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            problems.append(f"{rel}: not UTF-8 text, so it cannot be scanned; publish ships text files only")
            continue
        if rel.endswith(".ipynb"):
            for index, cell in enumerate(nbformat.reads(text, as_version=4).cells):
                problems += leaks_in_lines(f"{rel}, cell {index}", cell.source.split("\n"), secret)
        else:
            problems += leaks_in_lines(rel, text.split("\n"), secret)
    return problems


# --------------------------------------------------------------------------- writing


def _tracked(dest: Path) -> list[str]:
    try:
        out = subprocess.run(["git", "-C", str(dest), "ls-files", "-z"], capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise PublishError(f"{dest} has a .git but `git ls-files` failed there ({e}); is git installed?") from None
    return [p for p in out.decode("utf-8").split("\0") if p]


def write_tree(dest: str | os.PathLike, files: dict[str, bytes]) -> list[str]:
    """Make ``dest`` hold ``files``: tracked files that are no longer published are removed;
    ``.git`` and untracked files are left alone. Returns the paths removed."""
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise PublishError(f"{dest} is a file; give a folder for the student repository")
    removed = []
    if dest.is_dir() and any(dest.iterdir()):
        if not (dest / ".git").exists():
            raise PublishError(f"{dest} is neither empty nor a git checkout, so publish cannot tell its files "
                               "from yours; publish into an empty folder or into a clone of the student "
                               "repository (to rewrite a folder an earlier publish wrote, commit it first: "
                               "git init && git add -A && git commit)")
        for rel in _tracked(dest):
            if rel not in files and (dest / rel).is_file():
                (dest / rel).unlink()
                removed.append(rel)
                parent = (dest / rel).parent
                while parent != dest and not any(parent.iterdir()):
                    parent.rmdir()
                    parent = parent.parent
    for rel, data in files.items():
        if rel.split("/")[0] == ".git" or ".." in rel.split("/"):
            raise PublishError(f"refusing to write {rel!r}")
        target = dest / rel
        if target.is_file() and target.read_bytes() == data:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(partial, 0o644)
        os.replace(partial, target)
    return removed


def publish(dest: str | os.PathLike, *, root: str | os.PathLike | None = None, release_check: bool = True,
            validate: bool = True, repo: StudentRepo | None = None, force: bool = False,
            log=print) -> dict[str, bytes]:
    """Check, build, scan and write the student repository into ``dest``; returns its files.

    ``release_check``: first make sure notebooks/ is what ``labkit release``
    would write (``validate``: executing the unsolved notebooks too). With no
    student repository configured it refuses unless ``force`` (then warns). Raises
    :class:`PublishError`, writing nothing, when a check fails.
    """
    root = Path(root) if root is not None else require_project_root()
    dest = Path(dest).resolve()
    if dest == root.resolve() or root.resolve() in dest.parents:
        raise PublishError(f"{dest} lies inside the instructor's checkout {root}; publish outside it "
                           "(the student repository is a separate repository)")
    repo = load_student_repo(root) if repo is None else repo
    if not repo.configured and not force:
        raise PublishError("no student repository is configured: the notebooks would carry no Colab badge, and "
                           f"students on Colab could not install labkit. {HOW_TO_SET[0].upper()}{HOW_TO_SET[1:]}, "
                           "or publish anyway with --force; nothing written")
    if release_check:
        try:
            stale = release.release(root / "solutions", root / "notebooks", check=True, validate=validate,
                                    repo=repo, log=log)
        except release.ReleaseError as e:
            raise PublishError(f"the release check failed, nothing written: {e}") from None
        if stale:
            raise PublishError("notebooks/ is out of date with solutions/ (run `labkit release`, commit, "
                               "then publish); nothing written:\n  " + "\n  ".join(stale))
    files = student_tree(root, repo)
    leaks = scan(root, files)
    if leaks:
        raise PublishError(f"refusing to publish: secret lines would reach the students ({dest} left untouched). "
                           f"Remove them, or, for a line the labkit package already shows, list it in {PUBLIC_LINES}:"
                           "\n  " + "\n  ".join(leaks))
    log(f"scanned {len(files)} files: no solution line, written answer or hidden test in any of them")
    if not repo.configured:
        log("WARNING: published with --force but no student repository configured ([tool.labkit] "
            "student-repository in pyproject.toml): no Colab badge, and on Colab the install cell only tells the "
            "student to ask for the repository's address")
    removed = write_tree(dest, files)
    size = sum(len(data) for data in files.values())
    log(f"wrote {len(files)} files ({size / 1024:.0f} KiB) to {dest}"
        + (f"; removed {len(removed)} that are no longer published: {', '.join(removed)}" if removed else ""))
    return files


# --------------------------------------------------------------------------- command


def _cmd_publish(args) -> int:
    t0 = time.perf_counter()
    try:
        publish(args.dir, validate=not args.no_validate, force=args.force)
    except PublishError as e:
        print(f"labkit publish: {e}", file=sys.stderr)
        return 2
    print(f"published in {time.perf_counter() - t0:.1f} s")
    return 0


def register(subparsers) -> None:
    p = add_command(subparsers, "publish", doc=__doc__,
                    help="write the public student repository (notebooks, package, README) without the solutions")
    p.add_argument("dir", type=Path, metavar="DIR",
                   help="the student repository: a new or empty folder, or a git checkout of it")
    p.add_argument("--no-validate", action="store_true",
                   help="in the release check, skip executing the unsolved notebooks (nbgrader validate --invert)")
    p.add_argument("--force", action="store_true",
                   help="publish even while no student repository is configured (no Colab badge or install)")
    p.set_defaults(func=_cmd_publish)
