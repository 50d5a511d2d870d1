"""The assignment as nbgrader sees it: the template course every student's grading starts from.

Owns: :class:`Template` (expected notebooks, their released and instructor
versions, graded cells and points), :func:`build_template` (``nbgrader
generate_assignment`` once per run), :func:`read_template` and :func:`regenerate`
(a term's template reused, or generated again from changed solutions with the same
gradebook ids), :func:`template_from_course` (the same facts read back from a kept
course) and :func:`copy_course`.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from labkit.course.intake.repair import nbgrader_meta
from labkit.course.nbgrader import jupyter_env, run_nbgrader, write_course_config
from labkit.errors import OptionError


@dataclass
class Template:
    """The assignment as nbgrader sees it, built once per run."""

    course: Path
    assignment: str
    notebooks: list[str]          # expected notebook names, without .ipynb, sorted
    release: dict[str, object]    # name -> student version (nbformat node)
    source: dict[str, object]     # name -> instructor's version
    cells: dict[str, list[str]]   # name -> graded cells' grade ids, in notebook order
    max_score: dict[str, dict[str, float]]


def _read_course(course: Path, assignment: str, names: list[str], with_source: bool) -> Template:
    import nbformat

    release, source, cells, max_score = {}, {}, {}, {}
    for name in names:
        if with_source:
            source[name] = nbformat.read(course / "source" / assignment / f"{name}.ipynb", as_version=4)
        nb = nbformat.read(course / "release" / assignment / f"{name}.ipynb", as_version=4)
        release[name] = nb
        cells[name], max_score[name] = [], {}
        for cell in nb.cells:
            meta = nbgrader_meta(cell)
            if meta and meta.get("grade"):
                cells[name].append(meta["grade_id"])
                max_score[name][meta["grade_id"]] = float(meta.get("points", 0))
    return Template(course, assignment, names, release, source, cells, max_score)


def build_template(run: Path, solutions: Path, assignment: str) -> Template:
    """``run/template``: the solutions in ``source/<assignment>/``, then ``nbgrader generate_assignment``."""
    sources = sorted(solutions.glob("*.ipynb"))
    if not sources:
        raise OptionError(f"no notebooks in {solutions}")
    course = run / "template"
    (course / "source" / assignment).mkdir(parents=True)
    for path in sources:
        shutil.copyfile(path, course / "source" / assignment / path.name)
    write_course_config(course, course / "gradebook.db")
    run_nbgrader(["generate_assignment", assignment, "--force"], cwd=course, env=jupyter_env(run, course))
    return _read_course(course, assignment, [p.stem for p in sources], with_source=True)


def read_template(course: Path, assignment: str) -> Template:
    """The template an earlier :func:`build_template` made in ``course`` (the term's, reused)."""
    names = sorted(p.stem for p in (course / "source" / assignment).glob("*.ipynb"))
    return _read_course(course, assignment, names, with_source=True)


def regenerate(course: Path, run: Path, solutions: Path, assignment: str) -> Template:
    """``course`` (a template :func:`build_template` made) with the current ``solutions`` in its
    ``source/``, generated again: nbgrader updates its gradebook's cells in place, same ids."""
    folder = course / "source" / assignment
    for old in folder.glob("*.ipynb"):
        old.unlink()
    for path in sorted(solutions.glob("*.ipynb")):
        shutil.copyfile(path, folder / path.name)
    write_course_config(course, course / "gradebook.db")
    run_nbgrader(["generate_assignment", assignment, "--force"], cwd=course, env=jupyter_env(run, course))
    return read_template(course, assignment)


def template_from_course(course: Path) -> Template:
    """The template of a course kept with ``--keep`` (its one assignment; no instructor versions)."""
    assignments = [p.name for p in (course / "source").iterdir() if p.is_dir()]
    if len(assignments) != 1:
        raise OptionError(f"{course}/source/ must hold exactly one assignment")
    names = sorted(p.stem for p in (course / "release" / assignments[0]).glob("*.ipynb"))
    return _read_course(course, assignments[0], names, with_source=False)


def copy_course(template: Template, course: Path) -> None:
    """A fresh course in ``course``: the template's sources, release and gradebook."""
    course.mkdir(parents=True, exist_ok=True)
    shutil.copytree(template.course / "source", course / "source")
    shutil.copytree(template.course / "release", course / "release")
    shutil.copyfile(template.course / "gradebook.db", course / "gradebook.db")
