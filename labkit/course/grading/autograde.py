"""`labkit autograde`: grade a class's submissions with nbgrader, every student in a sandbox.

    labkit autograde SUBMISSIONS                 # grades/grades.csv and grades/feedback/<student>/*.html
    labkit autograde SUBMISSIONS --jobs 2 --keep grades/course
    labkit autograde SUBMISSIONS --roster roster.csv --lms canvas   # + summary.csv, canvas-import.csv
    labkit autograde --from-course grades/course # after grading written answers in the formgrader

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
   ``--keep`` for nbgrader's formgrader), ``nbgrader generate_feedback`` writes
   the HTML feedback, and ``grades.csv`` gets one row per student and notebook:
   the points of every graded cell, total, max and a status (``graded``,
   ``timeout``, ``memory limit``, ``invalid notebook: ...``, ``missing``, ...).

The submissions are never modified; running twice gives the same grades.csv.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

from labkit.course.grading.assignment import build_template
from labkit.course.grading.exports import check_lms, outputs_from_course, save_students, write_outputs
from labkit.course.grading.gradebook import ROWS_FILE, build_class_course, export, make_private, write_feedback, write_grades
from labkit.course.grading.progress import Progress
from labkit.course.grading.records import Options, Row, Run
from labkit.course.grading.runsetup import hidden_paths, prepare_run, start_mnist, warm_mnist
from labkit.course.grading.student import grade_student
from labkit.course.intake.layouts import LAYOUTS, read_submissions
from labkit.course.intake.roster import apply_roster, read_roster
from labkit.course.intake.submissions import Submission
from labkit.course.nbgrader import ASSIGNMENT
from labkit.course.paths import require_project_root
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
) -> list[list[str]]:
    """Grade every submission in ``submissions`` (read in ``layout``: auto, folders, moodle, canvas);
    write ``out/grades.csv``, ``out/summary.csv``, ``out/<lms>-import.csv`` for each of ``lms``,
    ``out/feedback/`` and ``out/logs/``. ``roster``: a CSV of the class (``roster_columns``: its
    ``id_column``, ``name_column``, ``email_column`` where not detected); every student on it gets
    rows. ``scheduler``: a Dask scheduler's address; each student is graded on its workers
    (:mod:`labkit.course.grading.cluster`) instead of ``options.jobs`` at a time here.
    Returns grades.csv's rows (without the header)."""
    options = options or Options()
    if options.timeout < 1 or options.jobs < 1 or options.memory_mb < 256 or options.cpu_seconds < 1 \
            or options.output_mb < 1:
        raise OptionError("--timeout, --jobs, --cpu-limit and --max-output must be positive "
                         "and --memory at least 256 (MB)")
    if solutions is None:
        solutions = require_project_root() / "solutions"
    solutions, out = Path(solutions).resolve(), Path(out).resolve()
    submissions = Path(submissions).resolve()
    if not solutions.is_dir():
        raise OptionError(f"no solutions folder {solutions}")
    subs, layout = read_submissions(submissions, layout, sorted(p.stem for p in solutions.glob("*.ipynb")))
    class_roster = read_roster(roster, **(roster_columns or {})) if roster is not None else None
    check_lms(tuple(lms), layout, class_roster.kind if class_roster else None)
    if class_roster is not None:
        subs = apply_roster(subs, class_roster)
    keep_dir = Path(keep).resolve() if keep else None
    if keep_dir is not None and keep_dir.exists() and any(keep_dir.iterdir()):
        raise OptionError(f"--keep {keep_dir}: the folder exists and is not empty")
    for path, what in ((out, "--out"), (keep_dir, "--keep")):
        if path is not None and (path == submissions or submissions in path.parents):
            raise OptionError(f"{what} {path} lies inside the submissions folder {submissions}")
    mode, why_not = sandbox.choose_mode(options.sandbox)
    started = time.perf_counter()
    old_umask = os.umask(0o077)  # everything in the run: private to the instructor
    run_dir = Path(tempfile.mkdtemp(prefix="labkit-autograde-"))
    try:
        hidden = hidden_paths(solutions, submissions, out, keep_dir, run_dir)
        run, config = prepare_run(run_dir, options, mode, hidden, log, probe=not scheduler)
        options = run.options
        # the template course, while MNIST is loaded into a cache the kernels read
        texts = [] if scheduler else [p.read_text(errors="replace") for p in solutions.glob("*.ipynb")]
        prewarm = start_mnist(run, texts)  # on a cluster, each worker has its own cache
        template = run.template = build_template(run_dir, solutions, options.assignment)
        warm_mnist(run, prewarm, log)
        log(f"labkit autograde: {len(subs)} submissions in {submissions} ({layout} layout), notebooks "
            + ", ".join(template.notebooks) + f"; {options.jobs} at a time")
        if not scheduler:  # on a cluster each worker says what it isolates, in its students' logs
            log(f"isolation: {sandbox.describe(config, why_not)}")

        if scheduler:
            from labkit.course.grading.cluster import grade_on_cluster

            results = grade_on_cluster(scheduler, subs, run, log)
        else:
            results = _grade_locally(subs, run, log)
        rows = [row for i in sorted(results) for row in results[i][0]]
        graded = [(subs[i].student, results[i][1]) for i in sorted(results) if results[i][1] is not None]
        class_course = keep_dir or run_dir / "class"
        try:
            build_class_course(class_course, template, graded)
            (class_course / ROWS_FILE).write_text(json.dumps([asdict(r) for r in rows], indent=1) + "\n")
            save_students(class_course, subs, layout, tuple(lms), lms_column)
            gradebooks = [class_course / "gradebook.db"]
        except Exception as e:  # the class's grading must not be lost with it
            log(f"labkit autograde: warning: the class course could not be built ({type(e).__name__}: {e}); "
                "grades.csv comes from each student's own gradebook, and there is no feedback"
                + (f" and no usable kept course in {keep_dir}" if keep_dir else ""))
            gradebooks, class_course = [src / "gradebook.db" for _, src in graded], None
        out.mkdir(parents=True, exist_ok=True)  # still under umask 077
        os.chmod(out, 0o700)  # also when it was there before: what goes in is private at once
        logs = out / "logs"
        if logs.exists():
            shutil.rmtree(logs)
        logs.mkdir()
        for i in sorted(results):
            (logs / f"{subs[i].student}.txt").write_text(results[i][2], encoding="utf-8", errors="replace")
        table = write_grades(gradebooks, template, rows, out / "grades.csv")
        written = write_outputs(table, subs, template, out, tuple(lms), lms_column, layout, log)
        n = write_feedback(class_course, run_dir, template.assignment, out / "feedback", log) if class_course else 0
        log(f"wrote {', '.join(str(p) for p in [out / 'grades.csv', *written])} ({len(table)} rows) "
            f"and {n} feedback pages in {out / 'feedback'} "
            f"({time.perf_counter() - started:.0f} s)")
        make_private(out, keep_dir)  # hidden tests, grades and logs: the instructor's eyes only
        if keep_dir is not None:
            log(f"kept the class course in {keep_dir} (nbgrader's formgrader: see docs/instructors.md)")
        return table
    finally:
        os.umask(old_umask)
        shutil.rmtree(run_dir, ignore_errors=True)


def _grade_locally(subs: list[Submission], run: Run, log) -> dict[int, tuple[list[Row], Path | None, str]]:
    """Every student graded here, ``run.options.jobs`` at a time: {index: (rows, course or None, log)}."""
    results: dict[int, tuple[list[Row], Path | None, str]] = {}
    lock = threading.Lock()
    progress = Progress(len(subs))

    def job(i: int, sub: Submission):
        t0 = time.perf_counter()
        progress.start()
        result = grade_student(sub, i, run)
        with lock:
            results[i] = result
            progress.finish()
            outcome = ", ".join(f"{r.notebook}: {r.status.split(';')[0]}" for r in result[0])
            progress.write(f"  {sub.student}: {outcome} ({time.perf_counter() - t0:.0f} s)", log)

    try:
        with ThreadPoolExecutor(max_workers=run.options.jobs) as pool:
            for f in [pool.submit(job, i, sub) for i, sub in enumerate(subs)]:
                f.result()
    finally:
        progress.close()
    return results


def _cmd_autograde(args) -> int:
    if args.from_course:
        if args.submissions:
            raise OptionError("give either SUBMISSIONS or --from-course, not both")
        table = export(args.from_course, args.out)
        for path in outputs_from_course(args.from_course, args.out, table):
            print(f"wrote {path}")
        return 0
    if not args.submissions:
        raise OptionError("SUBMISSIONS is required (a folder with one folder or .zip per student)")
    options = Options(assignment=args.assignment, timeout=args.timeout, memory_mb=args.memory,
                      cpu_seconds=args.cpu_limit, jobs=args.jobs, sandbox=args.sandbox, output_mb=args.max_output)
    columns = {"id_column": args.roster_id, "name_column": args.roster_name, "email_column": args.roster_email}
    autograde(args.submissions, solutions=args.solutions, out=args.out, keep=args.keep, options=options,
              layout=args.layout, roster=args.roster, roster_columns=columns, lms=tuple(args.lms or ()),
              lms_column=args.lms_column, scheduler=args.scheduler)
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
                   help="grade on the workers of a running Dask cluster (tcp://host:8786; needs labkit[cluster]); "
                        "without it, --jobs students at a time on this machine")
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
    p.add_argument("--from-course", type=Path, default=None, metavar="DIR",
                   help="grade nothing: rewrite grades.csv and feedback from a course kept with --keep")
    p.set_defaults(func=_cmd_autograde)
