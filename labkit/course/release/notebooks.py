"""`labkit release`: the student notebooks in notebooks/, generated from solutions/.

    labkit release                  # regenerate notebooks/ from solutions/, with every check
    labkit release --check          # the same checks, but only say whether notebooks/ is up to date
    labkit release --no-validate    # skip executing the student versions (faster while editing)

solutions/*.ipynb are the instructor's notebooks, with nbgrader markup
(solution regions, visible and hidden tests, manually graded answers); they
are the source of truth. The student versions are made by nbgrader itself:

1. the solutions are copied into ``source/lab/`` of a temporary nbgrader
   course (assignment ``lab``), outside the repository;
2. ``nbgrader generate_assignment lab --no-db`` writes ``release/lab/*.ipynb``
   (no gradebook is needed to release, so none is written);
3. the Colab badge and install cell of each notebook are written from the
   student repository configured in pyproject.toml (:mod:`labkit.course.release.student_repo`),
   and each generated notebook is normalised so that every run writes the same
   bytes: no outputs or execution counts, volatile cell metadata dropped,
   fixed notebook metadata, nbformat 4.5 with stable cell ids, nbformat's own
   JSON layout;
4. checks: no line of solution code, written answer or hidden test survives
   in a student version (:func:`find_leaks`), and ``nbgrader validate
   --invert`` finds no student version that passes a test
   (:func:`validate_student_versions`, run in grading mode, LABKIT_GRADING=1);
5. only then do the notebooks replace ``notebooks/*.ipynb``. When a check
   fails, notebooks/ is left untouched and the command exits non-zero.

Owns: generating (:func:`generate`), normalising (:func:`normalise`), the leak
check (:func:`find_leaks`), validation, comparison and the command itself.
"""
from __future__ import annotations

import difflib
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from labkit import errors
from labkit.cli import add_command
from labkit.course.nbgrader import ASSIGNMENT, run_nbgrader, write_course_config
from labkit.course.paths import require_project_root
from labkit.course.release.leaks import leaks_in_lines, secret_lines
from labkit.course.release.student_repo import StudentRepo, apply_links, link_problems
from labkit.course.release.student_repo import load as load_student_repo

# Cell metadata that survives normalisation; everything else (execution
# timings, collapsed/scrolled state, Colab ids, ...) is editor state.
KEEP_CELL_METADATA = ("nbgrader", "deletable", "editable", "tags", "slideshow")
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}



class ReleaseError(errors.ReleaseError):
    """The student notebooks could not be released; the message says why."""


# --------------------------------------------------------------------------- paths


def default_dirs() -> tuple[Path, Path]:
    """(solutions/, notebooks/) of the checkout."""
    root = require_project_root()
    return root / "solutions", root / "notebooks"


def solution_notebooks(solutions_dir: str | os.PathLike) -> list[Path]:
    paths = sorted(Path(solutions_dir).glob("*.ipynb"))
    if not paths:
        raise ReleaseError(f"no notebooks in {solutions_dir}")
    return paths


# --------------------------------------------------------------------------- nbgrader course


def write_course(course_dir: str | os.PathLike, solutions_dir: str | os.PathLike,
                 db_path: str | os.PathLike | None = None) -> Path:
    """A minimal nbgrader course in ``course_dir``: ``nbgrader_config.py`` and the solutions
    copied into ``source/lab/``. The gradebook goes to ``db_path`` (default: ``gradebook.db``
    in ``course_dir``; keep it out of the repository). Returns the course folder."""
    course = Path(course_dir)
    source = course / "source" / ASSIGNMENT
    source.mkdir(parents=True, exist_ok=True)
    for path in solution_notebooks(solutions_dir):
        shutil.copyfile(path, source / path.name)
    db = Path(db_path) if db_path is not None else course / "gradebook.db"
    write_course_config(course, db)
    return course


# --------------------------------------------------------------------------- normalisation


def normalise(nb) -> str:
    """The notebook as the exact text labkit writes: same input, same bytes."""
    import nbformat

    nb = nbformat.from_dict(nb)
    nb.nbformat, nb.nbformat_minor = 4, 5
    nb.metadata = nbformat.from_dict({"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}})
    seen: set[str] = set()
    for i, cell in enumerate(nb.cells):
        cell.metadata = nbformat.from_dict({k: cell.metadata[k] for k in KEEP_CELL_METADATA if k in cell.metadata})
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell_id = cell.get("id")
        if not cell_id or cell_id in seen or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", cell_id):
            cell_id = f"cell-{i}"
            while cell_id in seen:
                cell_id += "-"
        seen.add(cell_id)
        cell.id = cell_id
    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


# --------------------------------------------------------------------------- generation


def generate(solutions_dir: str | os.PathLike, out_dir: str | os.PathLike,
             repo: StudentRepo | None = None) -> list[Path]:
    """Write the student version of every ``solutions_dir/*.ipynb`` into ``out_dir``.

    Runs ``nbgrader generate_assignment`` in a temporary course (its gradebook
    included), writes each notebook's Colab badge and install cell from
    ``repo`` (default: the checkout's configuration) and normalises the
    result (:func:`normalise`). Only the
    generated notebooks are written; nothing is checked here (see
    :func:`find_leaks` and :func:`validate_student_versions`).
    """
    import nbformat

    sources = solution_notebooks(solutions_dir)
    repo = load_student_repo() if repo is None else repo
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="labkit-release-") as tmp:
        course = write_course(Path(tmp) / "course", solutions_dir, Path(tmp) / "gradebook.db")
        # --no-db: releasing needs no gradebook (nbgrader would spend seconds creating one)
        run_nbgrader(["generate_assignment", ASSIGNMENT, "--force", "--no-db"], cwd=course)
        written = []
        for src in sources:
            generated = course / "release" / ASSIGNMENT / src.name
            if not generated.is_file():
                raise ReleaseError(f"nbgrader wrote no student version of {src.name}")
            nb = apply_links(nbformat.read(generated, as_version=4), repo, src.stem)
            target = out / src.name
            target.write_bytes(normalise(nb).encode("utf-8"))
            written.append(target)
    return written


# --------------------------------------------------------------------------- leak check


def find_leaks(solutions_dir: str | os.PathLike, student_dir: str | os.PathLike) -> list[str]:
    """Lines of solution code, written answers or hidden tests that a student version still shows.

    A line of ``solutions_dir/X.ipynb`` is secret when it lies in a solution
    region, a hidden-test region or a solution cell without regions. It
    leaks when ``student_dir/X.ipynb`` contains it (whitespace-normalised)
    although no visible part of the instructor's notebook does. Any line that
    looks like an nbgrader delimiter (misspelt ones too) is a leak as well,
    and so is a missing student version. Returns one message per problem;
    empty means clean.
    """
    import nbformat

    problems = []
    student_dir = Path(student_dir)
    for src in solution_notebooks(solutions_dir):
        student = student_dir / src.name
        if not student.is_file():
            problems.append(f"{student}: missing (no student version of {src})")
            continue
        secret, _ = secret_lines([src])
        for index, cell in enumerate(nbformat.read(student, as_version=4).cells):
            problems += leaks_in_lines(f"{student.name}, cell {index}", cell.source.split("\n"), secret)
    return problems


# --------------------------------------------------------------------------- validation


def validate_student_versions(student_dir: str | os.PathLike, *, timeout: float | None = 900) -> list[str]:
    """Run ``nbgrader validate --invert`` on the student notebooks, in grading mode.

    Every autograded test must fail in a notebook whose solutions are still
    stubs; a test that passes there checks nothing. The notebooks are
    executed in a scratch copy (nothing they write lands beside them), with
    LABKIT_GRADING=1. Returns a list of problems; empty means clean.
    """
    paths = sorted(Path(student_dir).glob("*.ipynb"))
    if not paths:
        return [f"no notebooks in {student_dir}"]
    env = {"LABKIT_GRADING": "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory(prefix="labkit-validate-") as tmp:
        for path in paths:
            shutil.copyfile(path, Path(tmp) / path.name)
        # one nbgrader process for all notebooks: its start-up alone takes seconds
        proc = run_nbgrader(["validate", "--invert", *(p.name for p in paths)], cwd=tmp, check=False,
                            timeout=timeout, env=env)
    output = (proc.stdout + "\n" + proc.stderr).strip()
    successes = proc.stdout.count("Success! The notebook does not pass any tests.")
    if proc.returncode == 0 and successes == len(paths):
        return []
    tail = "\n".join("    " + line for line in output.splitlines()[-40:])
    return [f"`nbgrader validate --invert` reported {successes} of {len(paths)} notebooks failing every test "
            f"(exit {proc.returncode}); a test that passes before the student solved anything checks nothing:\n{tail}"]


# --------------------------------------------------------------------------- comparison


def compare(generated_dir: str | os.PathLike, notebooks_dir: str | os.PathLike) -> list[str]:
    """How ``notebooks_dir`` differs from the freshly generated notebooks (empty: up to date)."""
    generated_dir, notebooks_dir = Path(generated_dir), Path(notebooks_dir)
    new = {p.name for p in generated_dir.glob("*.ipynb")}
    old = {p.name for p in notebooks_dir.glob("*.ipynb")} if notebooks_dir.is_dir() else set()
    changes = []
    for name in sorted(new | old):
        if name not in old:
            changes.append(f"{name}: missing from {notebooks_dir.name}/")
        elif name not in new:
            changes.append(f"{name}: in {notebooks_dir.name}/ but has no solution notebook")
        elif (generated_dir / name).read_bytes() != (notebooks_dir / name).read_bytes():
            a = (notebooks_dir / name).read_text(encoding="utf-8").splitlines()
            b = (generated_dir / name).read_text(encoding="utf-8").splitlines()
            n = sum(1 for line in difflib.unified_diff(a, b, n=0) if line[:1] in "+-" and line[:3] not in ("+++", "---"))
            changes.append(f"{name}: stale ({n} changed lines)")
    return changes


def _stale_links(notebooks_dir: Path, names: list[str], repo: StudentRepo) -> list[str]:
    """How the Colab links of the notebooks in ``notebooks_dir`` disagree with ``repo``."""
    import nbformat

    problems = []
    for name in names:
        if (notebooks_dir / name).is_file():
            problems += link_problems(nbformat.read(notebooks_dir / name, as_version=4), repo, Path(name).stem)
    return problems


# --------------------------------------------------------------------------- release


def release(
    solutions_dir: str | os.PathLike | None = None,
    notebooks_dir: str | os.PathLike | None = None,
    *,
    check: bool = False,
    validate: bool = True,
    repo: StudentRepo | None = None,
    log=print,
) -> list[str]:
    """Generate, check and (unless ``check``) install the student notebooks.

    ``repo`` is the student repository the Colab links point at (default: the
    checkout's ``[tool.labkit]``). Returns the differences between notebooks/
    and solutions/ found before installing (empty: notebooks/ was already up
    to date); a notebook whose links disagree with ``repo`` is one of them. Raises
    :class:`ReleaseError`, leaving notebooks/ untouched, when a check fails.
    """
    default_solutions, default_notebooks = (None, None)
    if solutions_dir is None or notebooks_dir is None:
        try:
            default_solutions, default_notebooks = default_dirs()
        except RuntimeError as e:  # an installed wheel: no solutions/ to release from
            raise ReleaseError(str(e)) from None
    solutions_dir = Path(solutions_dir or default_solutions)
    notebooks_dir = Path(notebooks_dir or default_notebooks)

    with tempfile.TemporaryDirectory(prefix="labkit-release-") as tmp:
        staged = Path(tmp) / "notebooks"
        repo = load_student_repo() if repo is None else repo
        names = [p.name for p in generate(solutions_dir, staged, repo)]
        log(f"generated {len(names)} student notebooks from {solutions_dir}/ with nbgrader")
        _check_staged(solutions_dir, staged, notebooks_dir, validate, log)
        changes = compare(staged, notebooks_dir) + _stale_links(notebooks_dir, names, repo)
        if check:
            _report_check(changes, solutions_dir, notebooks_dir, log)
        else:
            _install(staged, notebooks_dir, names, changes, log)
        return changes


def _check_staged(solutions_dir: Path, staged: Path, notebooks_dir: Path, validate: bool, log) -> None:
    """Raise :class:`ReleaseError` when a staged student notebook leaks a solution or hidden test,
    or (``validate``) passes a test before it is solved."""
    leaks = find_leaks(solutions_dir, staged)
    if leaks:
        raise ReleaseError(
            "refusing to release: solution or hidden-test text would reach the students "
            f"({notebooks_dir} left untouched):\n  " + "\n  ".join(leaks)
        )
    log("checked: no solution code, written answer or hidden test in any student notebook")
    if validate:
        log("running `nbgrader validate --invert` on every student notebook (grading mode) ...")
        failures = validate_student_versions(staged)
        if failures:
            raise ReleaseError(
                "refusing to release: a student notebook passes a test before it is solved "
                f"({notebooks_dir} left untouched):\n" + "\n".join(failures)
            )
        log("checked: every test fails in every unsolved student notebook")


def _report_check(changes: list[str], solutions_dir: Path, notebooks_dir: Path, log) -> None:
    """``labkit release --check``: say whether notebooks/ is up to date, and how it is not."""
    if changes:
        log(f"{notebooks_dir}/ is out of date with {solutions_dir}/ (run `labkit release`):")
        for change in changes:
            log(f"  {change}")
    else:
        log(f"{notebooks_dir}/ is up to date with {solutions_dir}/")


def _install(staged: Path, notebooks_dir: Path, names: list[str], changes: list[str], log) -> None:
    """Copy the staged notebooks into notebooks/ (atomically per file); remove those without a solution."""
    notebooks_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        target = notebooks_dir / name
        partial = notebooks_dir / f".{name}.tmp"
        shutil.copyfile(staged / name, partial)
        os.replace(partial, target)  # atomic per file
    for stale in sorted(set(p.name for p in notebooks_dir.glob("*.ipynb")) - set(names)):
        (notebooks_dir / stale).unlink()
        log(f"removed {notebooks_dir.name}/{stale} (no solution notebook)")
    if changes:
        log(f"updated {notebooks_dir}/: " + "; ".join(changes))
    else:
        log(f"{notebooks_dir}/ was already up to date; no byte changed")


# --------------------------------------------------------------------------- command


def _cmd_release(args) -> int:
    try:
        changes = release(args.solutions, args.notebooks, check=args.check, validate=not args.no_validate)
    except ReleaseError as e:
        print(f"labkit release: {e}", file=sys.stderr)
        return 2
    return 1 if (args.check and changes) else 0


def register(subparsers) -> None:
    p = add_command(subparsers, "release", doc=__doc__,
                    help="generate the student notebooks (notebooks/) from solutions/ with nbgrader")
    p.add_argument("--check", action="store_true",
                   help="do every check but write nothing; exit 1 when notebooks/ is out of date")
    p.add_argument("--no-validate", action="store_true",
                   help="skip `nbgrader validate --invert` (executing the student notebooks)")
    p.add_argument("--solutions", type=Path, default=None, metavar="DIR", help="instructor notebooks (default: solutions/)")
    p.add_argument("--notebooks", type=Path, default=None, metavar="DIR", help="student notebooks (default: notebooks/)")
    p.set_defaults(func=_cmd_release)
