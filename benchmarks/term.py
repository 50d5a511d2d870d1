"""What a late student costs on the term's course: one student added to a graded class of ten
(``labkit autograde SUBMISSIONS --course DIR``), against grading that student alone in a plain run.

    LABKIT_DATA=../shared/data .venv/bin/python benchmarks/term.py              # the tests' fixture assignment
    LABKIT_DATA=../shared/data .venv/bin/python benchmarks/term.py --lab        # the lab's own solutions/

The class of ten is graded once into a course (not timed); each turn copies that course, adds the
late student's submission and runs again (``late``), then grades the late student's submission alone,
without a course (``alone``); the two take turns (benchmarks/run.py's ``side_by_side``) and the
ratio of their medians is printed, with the grades of the late student checked equal.
Everything runs in this process, as the tests do (one ``nbgrader generate_assignment`` per run).

Figures of 2026-12-04 (2 shared cores, other work running; medians of 3 turns): the fixture
assignment, late 20.3 s against alone 31.1 s, ratio 0.65 (the term reuses its template: no
``generate_assignment``); the lab's solutions (``--lab``), late 162.8 s against alone 88.3 s, ratio
1.84 (each run also rewrites the whole class's feedback pages; not yet broken down).
"""
from __future__ import annotations

import argparse
import csv
import io
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
FIXTURE = ROOT / "tests" / "fixtures" / "grading" / "solutions"


def _class(folder: Path, solutions: Path, names: list[str]) -> Path:
    for name in names:
        (folder / name).mkdir(parents=True)
        for nb in sorted(solutions.glob("*.ipynb")):
            shutil.copyfile(nb, folder / name / nb.name)
    return folder


def _rows(path: Path, student: str) -> list[dict]:
    return [r for r in csv.DictReader(io.StringIO(path.read_text())) if r["student"] == student]


def main(argv=None) -> None:
    from run import side_by_side  # benchmarks/run.py: turns, medians

    from labkit.course.grading.autograde import autograde
    from labkit.course.grading.records import Options

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lab", action="store_true", help="grade the lab's solutions/ (default: the tests' fixture)")
    p.add_argument("--repeat", type=int, default=3, help="turns of each side (median; at least 3)")
    args = p.parse_args(argv)
    solutions = ROOT / "solutions" if args.lab else FIXTURE
    options = Options(jobs=1) if args.lab else Options(timeout=6, memory_mb=1024, cpu_seconds=60, jobs=1)
    quiet = lambda _: None  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="labkit-bench-term-") as tmp:
        tmp = Path(tmp)
        subs = _class(tmp / "subs", solutions, [f"student{i:02d}" for i in range(10)])
        autograde(subs, solutions=solutions, out=tmp / "out0", course=tmp / "course0", options=options, log=quiet)
        _class(subs, solutions, ["late"])
        alone = _class(tmp / "alone", solutions, ["late"])
        turn = {"late": 0, "alone": 0}

        def late():
            turn["late"] += 1
            course, out = tmp / f"course{turn['late']}", tmp / f"late{turn['late']}"
            shutil.copytree(tmp / "course0", course)
            autograde(subs, solutions=solutions, out=out, course=course, options=options, log=quiet)
            return out / "grades.csv"

        def by_itself():
            turn["alone"] += 1
            out = tmp / f"alone{turn['alone']}"
            autograde(alone, solutions=solutions, out=out, options=options, log=quiet)
            return out / "grades.csv"

        runs = side_by_side({"late": late, "alone": by_itself}, max(3, args.repeat))
        same = _rows(runs["late"][2], "late") == _rows(runs["alone"][2], "late")
    assert same, "the late student's grades differ between the course and a plain run"
    (t_late, times_late, _), (t_alone, times_alone, _) = runs["late"], runs["alone"]
    print(f"solutions: {solutions.relative_to(ROOT)}; median of {len(times_late)} turns each")
    print(f"one late student added to a graded class of 10 (--course): {t_late:.1f} s  runs {times_late}")
    print(f"that student graded alone (no course):                    {t_alone:.1f} s  runs {times_alone}")
    print(f"ratio late / alone: {t_late / t_alone:.2f} (the late student's grades.csv rows identical)")


if __name__ == "__main__":
    main()
