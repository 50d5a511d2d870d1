"""`labkit autograde`: grade a class's submissions with nbgrader, every student in a sandbox.

    labkit autograde SUBMISSIONS                 # grades/grades.csv and grades/feedback/<student>/*.html
    labkit autograde SUBMISSIONS --jobs 2 --keep grades/course
    labkit autograde SUBMISSIONS --roster roster.csv --lms canvas   # + summary.csv, canvas-import.csv
    labkit autograde --from-course grades/course # after grading written answers in the formgrader
    labkit autograde SUBMISSIONS --course term/  # the term's course: later runs grade only what is new
    labkit autograde SUBMISSIONS --course term/ --regrade 2_ppca   # after fixing a test in solutions/

SUBMISSIONS holds one folder or one .zip per student (Moodle, GitHub Classroom;
the student id is the folder's or zip's name, made safe:
``Alice Smith_12345_assignsubmission_file_`` -> ``Alice-Smith_12345``), or
Canvas's flat download (``smithjane_LATE_12345_67890_1_pca-1.ipynb``: student
``smithjane_12345``, the newest version of each notebook graded); --layout
forces one. Notebooks may be nested (``alice/lab/1_pca.ipynb``, a zip with a
top folder). With --roster every student on the class list gets rows; with
--lms the platform's gradebook import file is written beside summary.csv.

How a class is graded:

1. a template nbgrader course in a throwaway folder: the solutions in
   ``source/<assignment>/``, then ``nbgrader generate_assignment`` (gradebook
   and student versions);
2. per student (``--jobs`` at a time), a copy of the template with its own
   gradebook: the submission's notebooks are matched to the expected ones
   (misnamed copies such as ``1_PCA (1).ipynb`` when unambiguous), checked
   and repaired into ``submitted/<student>/<assignment>/`` (invalid JSON,
   duplicated cells and grade ids, deleted graded cells restored, edited
   locked cells noted: nbgrader puts the originals back), and
   ``nbgrader autograde`` runs them with a per-cell timeout, each notebook in
   a fresh kernel confined by :mod:`labkit.course.sandbox`. A notebook that kills
   its kernel is set aside (zero, with the reason) and the others are graded;
3. the students' gradebooks are merged into one class course (kept with
   ``--keep`` for nbgrader's formgrader), :mod:`labkit.course.report` writes
   the feedback pages and the class report, and ``grades.csv`` gets one row per student and notebook:
   the points of every graded cell, total, max and a status (``graded``,
   ``timeout``, ``memory limit``, ``invalid notebook: ...``, ``missing``, ...).

The submissions are never modified; running twice gives the same grades.csv.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import tempfile
import time
from pathlib import Path

from labkit.course.grading import kept, term, termout
from labkit.course.grading.assignment import Template, build_template
from labkit.course.grading.executors import executor_for
from labkit.course.grading.exports import check_lms, write_outputs
from labkit.course.grading.gradebook import (build_class_course, grade_columns, line_as_csv, make_private,
                                             write_grades)
from labkit.course.grading.records import Options, Row, Run, Settings, StudentResult
from labkit.course.grading.runsetup import hidden_paths, prepare_run, start_mnist, warm_mnist
from labkit.course.intake.layouts import LAYOUTS, read_submissions
from labkit.course.intake.roster import apply_roster, read_roster
from labkit.course.intake.submissions import Submission
from labkit.course.nbgrader import ASSIGNMENT
from labkit.course.sandbox import prepare as sandbox
from labkit.errors import OptionError


def autograde(
    submissions: str | os.PathLike,
    *,
    solutions: str | os.PathLike | None = None,
    out: str | os.PathLike = "grades",
    keep: str | os.PathLike | None = None,
    options: Options | None = None,
    log=print,
    layout: str = "auto",
    roster: str | os.PathLike | None = None,
    roster_columns: dict[str, str | None] | None = None,
    lms: tuple[str, ...] = (),
    lms_column: str | None = None,
    scheduler: str | None = None,
    tls: str | os.PathLike | None = None,
    course: str | os.PathLike | None = None,
    regrade: tuple[str, ...] = (),
) -> list[list[str]]:
    """Grade every submission in ``submissions`` (read in ``layout``: auto, folders, moodle, canvas);
    write ``out/grades.csv``, ``out/summary.csv``, ``out/<lms>-import.csv`` for each of ``lms``,
    ``out/feedback/`` and ``out/logs/``. ``roster``: a CSV of the class (``roster_columns``: its
    ``id_column``, ``name_column``, ``email_column`` where not detected); every student on it gets
    rows. ``scheduler``: a Dask scheduler's address; each student is graded on its workers
    (:mod:`labkit.course.grading.cluster`) instead of ``options.jobs`` at a time here; ``tls``: the
    folder of the cluster's certificates (``labkit cluster-certs``), required with it.
    ``course``: the term's class course (:mod:`labkit.course.grading.term`), made on the first run and
    updated on each later one: only new and changed submissions are graded (and, for every student,
    the notebooks that ``regrade`` names), and ``out`` describes the whole course. Returns grades.csv's rows
    (without the header). The parameters become one frozen
    :class:`~labkit.course.grading.records.Settings`, checked once; :func:`grade_class` grades it."""
    return grade_class(Settings.build(
        submissions, solutions=solutions, out=out, keep=keep, options=options, layout=layout, roster=roster,
        roster_columns=roster_columns, lms=lms, lms_column=lms_column, scheduler=scheduler, tls=tls, course=course,
        regrade=regrade), log)


def grade_class(settings: Settings, log=print) -> list[list[str]]:
    """The stages of a run: intake, set-up, every student (here or on a cluster), the class's outputs;
    with a term's course, under its lock. Returns grades.csv's rows (without the header)."""
    if settings.course is None:
        return _grade(settings, None, log)
    with term.locked(settings.course, log):
        return _grade(settings, term.Term(settings.course, log), log)


def _grade(settings: Settings, course: term.Term | None, log) -> list[list[str]]:
    subs, layout = take_in(settings)
    executor = executor_for(settings.scheduler, settings.tls)
    mode, why_not = sandbox.choose_mode(settings.options.sandbox)
    started = time.perf_counter()
    old_umask = os.umask(0o077)  # everything in the run: private to the instructor
    run_dir = Path(tempfile.mkdtemp(prefix="labkit-autograde-"))
    try:
        run, config = set_up(settings, run_dir, mode, executor.local, log, course)
        log(f"labkit autograde: {len(subs)} submissions in {settings.submissions} ({layout} layout), notebooks "
            + ", ".join(run.template.notebooks) + f"; {run.options.jobs} at a time")
        if executor.local:  # on a cluster each worker says what it isolates, in its students' logs
            log(f"isolation: {sandbox.describe(config, why_not)}")
        if course is None:
            return write_class(settings, subs, layout, run, executor.grade(subs, run, log), started, log)
        todo, before = course.decide(subs, run.template, settings.regrade), termout.scores(course, run)
        if todo:
            executor.grade(todo, run, log, done=lambda i, result: course.commit(i, result, run.template))
        return termout.write_term(course, settings, layout, run, before, started, log)
    finally:
        os.umask(old_umask)
        shutil.rmtree(run_dir, ignore_errors=True)


def take_in(settings: Settings) -> tuple[list[Submission], str]:
    """Intake: the submissions read in their layout, the roster applied, the import files checked
    before anything is graded. Returns the submissions and the layout they were read in."""
    expected = sorted(p.stem for p in settings.solutions.glob("*.ipynb"))
    subs, layout = read_submissions(settings.submissions, settings.layout, expected)
    class_roster = read_roster(settings.roster, **settings.roster_columns) if settings.roster is not None else None
    check_lms(settings.lms, layout, class_roster.kind if class_roster else None)
    if class_roster is not None:
        subs = apply_roster(subs, class_roster)
    return subs, layout


def set_up(settings: Settings, run_dir: Path, mode: str, local: bool, log,
           course: term.Term | None = None) -> tuple[Run, dict]:
    """The run in ``run_dir``: the sandbox probed (when the students are graded here), the template
    course built (or the term's ``course``'s reused) while MNIST is decoded into a cache the kernels
    read. Returns the run and the sandbox config the probe used."""
    hidden = hidden_paths(settings.solutions, settings.submissions, settings.out, settings.keep, settings.course,
                          run_dir)
    run, config = prepare_run(run_dir, settings.options, mode, hidden, log, probe=local)
    texts = [p.read_text(errors="replace") for p in settings.solutions.glob("*.ipynb")] if local else []
    prewarm = start_mnist(run, texts)  # on a cluster, each worker has its own cache
    name = run.options.assignment
    template = (course.template(run_dir, settings.solutions, name, build_template) if course is not None
                else build_template(run_dir, settings.solutions, name))
    run = dataclasses.replace(run, template=template)
    return warm_mnist(run, prewarm, log), config


def write_class(settings: Settings, subs: list[Submission], layout: str, run: Run, results: dict[int, StudentResult],
                started: float, log) -> list[list[str]]:
    """The class's outputs: the class course (kept with ``--keep``), the logs, grades.csv,
    summary.csv and the import files, the feedback pages. Returns grades.csv's rows."""
    template, out = run.template, settings.out
    rows = [row for i in sorted(results) for row in results[i].rows]
    graded = [(subs[i].student, results[i].course) for i in sorted(results) if results[i].course is not None]
    class_course, gradebooks = _class_course(settings, template, rows, graded, subs, layout, run.dir, log)
    out.mkdir(parents=True, exist_ok=True)  # still under umask 077
    os.chmod(out, 0o700)  # also when it was there before: what goes in is private at once
    logs = out / "logs"
    if logs.exists():
        shutil.rmtree(logs)
    logs.mkdir()
    for i in sorted(results):
        (logs / f"{subs[i].student}.txt").write_text(results[i].log, encoding="utf-8", errors="replace")
    lines = write_grades(gradebooks, template, rows, out / "grades.csv")
    written = write_outputs(lines, subs, template, out, settings.lms, settings.lms_column, layout, log)
    from labkit.course.report import write_reports  # feedback pages, class report, returns: report/ builds on grading/
    n = write_reports(class_course, out, lines, log) if class_course else 0
    log(f"wrote {', '.join(str(p) for p in [out / 'grades.csv', *written])} ({len(lines)} rows) "
        f"and {n} feedback pages in {out / 'feedback'} "
        f"({time.perf_counter() - started:.0f} s)")
    make_private(out, settings.keep)  # hidden tests, grades and logs: the instructor's eyes only
    if settings.keep is not None:
        log(f"kept the class course in {settings.keep} (nbgrader's formgrader: see docs/instructors.md)")
    return [line_as_csv(line, grade_columns(template)) for line in lines]


def _class_course(settings: Settings, template: Template, rows: list[Row], graded: list[tuple[str, Path]],
                  subs: list[Submission], layout: str, run_dir: Path, log) -> tuple[Path | None, list[Path]]:
    """The class course (every student's gradebook merged, what ``--from-course`` reads kept in it)
    and the gradebooks grades.csv is read from; without a class course when it cannot be built."""
    class_course = settings.keep or run_dir / "class"
    try:
        build_class_course(class_course, template, graded)
        kept.save(class_course, rows, subs, layout, settings.lms, settings.lms_column)
        return class_course, [class_course / "gradebook.db"]
    except Exception as e:  # the class's grading must not be lost with it
        log(f"labkit autograde: warning: the class course could not be built ({type(e).__name__}: {e}); "
            "grades.csv comes from each student's own gradebook, and there is no feedback"
            + (f" and no usable kept course in {settings.keep}" if settings.keep else ""))
        return None, [src / "gradebook.db" for _, src in graded]


def _cmd_autograde(args) -> int:
    if args.from_course:
        if args.submissions:
            raise OptionError("give either SUBMISSIONS or --from-course, not both")
        lines = kept.export(args.from_course, args.out)
        for path in kept.outputs(args.from_course, args.out, lines):
            print(f"wrote {path}")
        return 0
    if not args.submissions:
        raise OptionError("SUBMISSIONS is required (a folder with one folder or .zip per student)")
    options = Options(assignment=args.assignment, timeout=args.timeout, memory_mb=args.memory,
                      cpu_seconds=args.cpu_limit, jobs=args.jobs, sandbox=args.sandbox, output_mb=args.max_output)
    columns = {"id_column": args.roster_id, "name_column": args.roster_name, "email_column": args.roster_email}
    autograde(args.submissions, solutions=args.solutions, out=args.out, keep=args.keep, options=options,
              layout=args.layout, roster=args.roster, roster_columns=columns, lms=tuple(args.lms or ()),
              lms_column=args.lms_column, scheduler=args.scheduler, tls=args.tls, course=args.course,
              regrade=tuple(args.regrade or ()))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "autograde",
        help="grade a class's submissions with nbgrader, each student in a sandbox",
        description=__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("submissions", nargs="?", type=Path, metavar="SUBMISSIONS",
                   help="folder with one folder or .zip of notebooks per student, or Canvas's download")
    p.add_argument("--out", type=Path, default=Path("grades"), metavar="DIR",
                   help="where grades.csv, feedback/ and logs/ go (default: grades/)")
    p.add_argument("--solutions", type=Path, default=None, metavar="DIR",
                   help="the instructor's notebooks (default: the checkout's solutions/)")
    p.add_argument("--assignment", default=ASSIGNMENT, help="nbgrader assignment name (default: lab)")
    p.add_argument("--timeout", type=int, default=Options.timeout, metavar="S",
                   help="seconds a cell may run (default: 120)")
    p.add_argument("--memory", type=int, default=Options.memory_mb, metavar="MB",
                   help="address-space limit of a kernel in MB (default: 8192; torch reserves about 3500)")
    p.add_argument("--cpu-limit", type=int, default=Options.cpu_seconds, metavar="S",
                   help="processor seconds a notebook's kernel may use (default: 600)")
    p.add_argument("--max-output", type=int, default=Options.output_mb, metavar="MB",
                   help="output a notebook may keep, all cells together; errors are always kept (default: 10)")
    p.add_argument("--jobs", "-j", type=int, default=1, metavar="N", help="students graded at once (default: 1)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="grade on the workers of a running TLS Dask cluster (tls://host:8786, with --tls; needs "
                        "labkit[cluster]); without it, --jobs students at a time on this machine")
    p.add_argument("--tls", type=Path, default=None, metavar="DIR",
                   help="with --scheduler: the cluster's certificates (labkit cluster-certs DIR)")
    p.add_argument("--sandbox", choices=("auto", "bwrap", "basic"), default="auto",
                   help="kernel isolation: bwrap (bubblewrap), basic (limits only), auto (bwrap when it works)")
    p.add_argument("--layout", choices=LAYOUTS, default="auto",
                   help="how SUBMISSIONS is laid out: folders (one folder or zip per student; moodle is the same), "
                        "canvas (Canvas's flat download, or its zip), auto (default: canvas when its file names say so)")
    p.add_argument("--roster", type=Path, default=None, metavar="CSV",
                   help="the class list: every student on it gets a row (missing: zero); others are flagged")
    p.add_argument("--roster-id", default=None, metavar="COLUMN", help="the roster's student id column (default: detected)")
    p.add_argument("--roster-name", default=None, metavar="COLUMN", help="the roster's name column (default: detected)")
    p.add_argument("--roster-email", default=None, metavar="COLUMN", help="the roster's email column (default: detected)")
    p.add_argument("--lms", action="append", choices=("canvas", "moodle"), default=None,
                   help="also write canvas-import.csv or moodle-import.csv, the platform's gradebook import "
                        "(repeat for both)")
    p.add_argument("--lms-column", default=None, metavar="NAME",
                   help="the grade column in the import files (default: the assignment name; Canvas: "
                        "'Lab 3 (12345)' updates assignment 12345, a plain name creates an assignment)")
    p.add_argument("--keep", type=Path, default=None, metavar="DIR",
                   help="keep the class's nbgrader course in DIR (for the formgrader)")
    p.add_argument("--course", type=Path, default=None, metavar="DIR",
                   help="the term's class course: made on the first run, updated on each later one (only new and "
                        "changed submissions are graded; --out describes the whole course); see docs/instructors.md")
    p.add_argument("--regrade", action="append", default=None, metavar="NOTEBOOK|GRADE_ID",
                   help="with --course: grade that notebook (or the notebook of that graded cell) again for every "
                        "student, against the current solutions (repeatable); changes.csv says what changed")
    p.add_argument("--from-course", type=Path, default=None, metavar="DIR",
                   help="grade nothing: rewrite grades.csv and feedback from a course kept with --keep")
    p.set_defaults(func=_cmd_autograde)
