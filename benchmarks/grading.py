"""Where `labkit autograde`'s time goes, and grading a class on a Dask cluster against one machine.

    LABKIT_DATA=../shared/data .venv/bin/python benchmarks/run.py breakdown cluster

``breakdown``: one submission (the four solution notebooks), graded in this process by
:func:`labkit.course.grading.autograde.autograde` (``--jobs 1``) with timers wrapped around its steps.
Each run is split into

- the cells themselves (the floor): from nbclient's timestamps in each autograded notebook
  (``execute_input`` to ``execute_reply`` of every cell), as nbgrader's kernel ran them;
- kernel start-ups and shut-downs: each kernel's life in the sandbox (the wrapper's record in
  ``kernels.jsonl``) less its cells;
- nbgrader's own work in ``nbgrader autograde`` (start-up, its gradebook, the notebook conversions):
  that command's wall time less its kernels' lives;
- the run's fixed steps, paid once whatever the class size: the sandbox check, MNIST's cache, the
  template (``nbgrader generate_assignment``), the class course and the feedback pages
  (``nbgrader generate_feedback``), grades.csv;
- labkit's bookkeeping per student (reading and repairing the notebooks, the course copy): the
  student's grading less ``nbgrader autograde``.

``cluster``: a class of ten graded locally with ``--jobs 2`` and through a scheduler and two
one-thread workers on 127.0.0.1 (separate processes, started by tests/dask_cluster.py as in
tests/test_cluster.py), the two runs taking turns; same grades.csv bytes.

``cluster-tls``: an honest class of eight (the tiny fixture assignment of tests/fixtures/grading, so that
the cluster's own costs are not lost in the notebooks' cells) graded in this process on two clusters of two
one-thread workers: one with TLS and labkit's certificates (as ``labkit autograde --scheduler tls://...
--tls DIR`` grades), one plain (``tcp://``, the client built with ``require_tls=False``, which the command
line never does), taking turns; the ratio is TLS's cost; same grades.csv bytes.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"


def class_of(root: Path, n: int) -> Path:
    """A submissions folder of n students, each handing in the solutions."""
    for i in range(n):
        sub = root / "submissions" / f"student{i:02d}"
        sub.mkdir(parents=True)
        for nb in sorted(SOLUTIONS.glob("*.ipynb")):
            (sub / nb.name).write_bytes(nb.read_bytes())
    return root / "submissions"


def cell_times(notebook: Path) -> list[tuple[float, float]]:
    """(start, end) in Unix time of each code cell of an executed notebook, from nbclient's timestamps."""
    import nbformat

    out = []
    for cell in nbformat.read(notebook, as_version=4).cells:
        ex = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in ex and "shell.execute_reply" in ex:
            out.append(tuple(datetime.fromisoformat(ex[k].replace("Z", "+00:00")).timestamp()
                             for k in ("iopub.execute_input", "shell.execute_reply")))
    return out


def slowest_cell(folder: Path) -> tuple[float, str]:
    """The longest cell of the executed notebooks under ``folder``: (seconds, "notebook cell N")."""
    best = (0.0, "")
    for nb in folder.rglob("*.ipynb"):
        for i, (a, b) in enumerate(cell_times(nb)):
            best = max(best, (b - a, f"{nb.stem} code cell {i + 1}"))
    return best


def kernel_phases(notebooks: list[Path], kernels: list[dict]) -> dict[str, float]:
    """Seconds, summed over the notebooks, of each kernel's start-up (process start to its first cell),
    cells, gaps between cells (nbclient's messages) and shut-down (last cell to process end); each
    notebook is matched to the kernel whose life holds its first cell."""
    phases = {"cells": 0.0, "startup": 0.0, "between_cells": 0.0, "shutdown": 0.0, "slowest_cell": 0.0}
    for nb in notebooks:
        times = cell_times(nb)
        if not times:
            continue
        k = next(k for k in kernels if k["started_at"] <= times[0][0] <= k["ended_at"])
        cells = sum(b - a for a, b in times)
        phases["cells"] += cells
        phases["startup"] += times[0][0] - k["started_at"]
        phases["shutdown"] += k["ended_at"] - times[-1][1]
        phases["between_cells"] += (times[-1][1] - times[0][0]) - cells
        phases["slowest_cell"] = max(phases["slowest_cell"], *(b - a for a, b in times))
    return phases


class Timers:
    """Wall time spent in wrapped functions of labkit's modules, by name (summed over calls)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.saved: list[tuple[object, str, object]] = []

    def wrap(self, module, name: str, label: str | None = None, after=None) -> None:
        fn = getattr(module, name)
        label = label or name

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                result = fn(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - t0
            if after is not None:
                after(args, kwargs, result)
            return result

        self.saved.append((module, name, fn))
        setattr(module, name, timed)

    def restore(self) -> None:
        for module, name, fn in reversed(self.saved):
            setattr(module, name, fn)


def grade_one_timed(tmp: Path) -> dict[str, float]:
    """Grade one submission in this process with every step timed; the breakdown in seconds."""
    from labkit.course.grading import assignment, autograde, executors, gradebook, student
    from labkit.course.grading.records import Options

    kept = tmp / "kept"
    kept.mkdir()

    def keep_course(args, kwargs, result):  # what the student's course folder says, before it is removed
        course = result.course
        if course is not None:
            shutil.copytree(course / "autograded", kept / "autograded")
            shutil.copyfile(course / "kernels.jsonl", kept / "kernels.jsonl")

    t = Timers()
    for name in ("prepare_run", "warm_mnist", "build_template", "build_class_course", "write_grades",
                 "write_outputs", "write_feedback"):
        t.wrap(autograde, name)  # the names autograde imported, as it calls them
    t.wrap(executors, "grade_student", after=keep_course)  # as the local executor calls it
    t.wrap(student, "run_nbgrader", "nbgrader autograde")
    t.wrap(assignment, "run_nbgrader", "nbgrader generate_assignment")
    t.wrap(gradebook, "run_nbgrader", "nbgrader generate_feedback")
    subs = class_of(tmp, 1)
    t0 = time.perf_counter()
    try:
        autograde.autograde(subs, solutions=SOLUTIONS, out=tmp / "grades", options=Options(jobs=1), log=lambda *_: None)
    finally:
        t.restore()
    total = time.perf_counter() - t0
    s = t.seconds
    kernels = [json.loads(line) for line in (kept / "kernels.jsonl").read_text().splitlines()]
    k = kernel_phases(sorted((kept / "autograded").rglob("*.ipynb")), kernels)
    kernel_life = sum(k["ended_at"] - k["started_at"] for k in kernels)
    fixed = (s["prepare_run"] + s["warm_mnist"] + s["build_template"] + s["build_class_course"]
             + s["write_grades"] + s["write_outputs"] + s["write_feedback"])
    return {
        "total_s": total,
        "cells_s": k["cells"],
        "kernels": len(kernels),
        "kernel_startup_s": k["startup"],
        "kernel_between_cells_s": k["between_cells"],
        "kernel_shutdown_s": k["shutdown"],
        "slowest_cell_s": k["slowest_cell"],
        "nbgrader_autograde_s": s["nbgrader autograde"] - kernel_life,
        "labkit_per_student_s": s["grade_student"] - s["nbgrader autograde"],
        "per_student_s": s["grade_student"],
        "fixed_s": fixed,
        "fixed_sandbox_check_s": s["prepare_run"],
        "fixed_mnist_cache_s": s["warm_mnist"],
        "fixed_template_s": s["build_template"],
        "fixed_feedback_s": s["write_feedback"],
        "fixed_class_course_and_csv_s": s["build_class_course"] + s["write_grades"] + s["write_outputs"],
        "unaccounted_s": total - fixed - s["grade_student"],
    }


def bench_breakdown(args) -> list[dict]:
    if not list(SOLUTIONS.glob("*.ipynb")):
        return [dict(benchmark="autograde breakdown", skipped="no solutions/*.ipynb")]
    runs = []
    for _ in range(max(1, args.repeat_slow)):
        with tempfile.TemporaryDirectory(prefix="lkb", dir="/tmp") as tmp:
            runs.append(grade_one_timed(Path(tmp)))
    keys = runs[0].keys()
    med = {k: statistics.median(r[k] for r in runs) for k in keys}
    per = med["per_student_s"]
    return [dict(benchmark="autograde one submission: where the time goes", seconds=med["total_s"],
                 **{k: med[k] for k in keys if k != "total_s"},
                 cells_share_of_per_student=med["cells_s"] / per,
                 runs=[r["total_s"] for r in runs])]


# --------------------------------------------------------------------------- a class on a Dask cluster


def bench_cluster(args) -> list[dict]:
    """A class of ten: `labkit autograde --jobs 2` against `--scheduler` with two one-thread workers."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return [dict(benchmark="autograde a class of 10: two-worker cluster", skipped="needs labkit[cluster]")]
    from labkit.course.nbgrader import nbgrader_env

    labkit = str(Path(sys.executable).parent / "labkit")
    times: dict[str, list[float]] = {"local --jobs 2": [], "cluster, 2 workers": []}
    with tempfile.TemporaryDirectory(prefix="lkc", dir="/tmp") as tmp:
        tmp = Path(tmp)
        subs = class_of(tmp, 10)
        sys.path.insert(0, str(ROOT / "tests"))
        from dask_cluster import Cluster  # tests/dask_cluster.py, as tests/test_cluster.py starts it

        cluster = Cluster(tmp / "cluster")
        try:
            outputs, slowest = {}, (0.0, "")
            for k in range(max(1, args.repeat_cluster)):
                for name, extra in (("local --jobs 2", ["--jobs", "2"]),
                                    ("cluster, 2 workers", ["--scheduler", cluster.address, "--tls", str(cluster.tls)])):
                    out = tmp / f"out-{len(times[name])}-{extra[0][2:]}"
                    t0 = time.perf_counter()
                    subprocess.run([labkit, "autograde", str(subs), "--out", str(out), "--keep", str(out / "course"),
                                    *extra], check=True, capture_output=True, env=nbgrader_env(), cwd=tmp)
                    times[name].append(time.perf_counter() - t0)
                    outputs[name] = (out / "grades.csv").read_bytes()
                    if name == "local --jobs 2":  # the slowest cell of the reference, two students at a time
                        slowest = max(slowest, slowest_cell(out / "course" / "autograded"))
        finally:
            cluster.close()
    local, remote = (statistics.median(times[n]) for n in times)
    return [dict(benchmark="autograde a class of 10: two-worker Dask cluster against one machine",
                 labkit_s=remote, baseline="labkit autograde --jobs 2", baseline_s=local, speedup=local / remote,
                 same_grades_csv=outputs["local --jobs 2"] == outputs["cluster, 2 workers"],
                 local_runs=times["local --jobs 2"], cluster_runs=times["cluster, 2 workers"],
                 slowest_cell_jobs2_s=slowest[0], slowest_cell=slowest[1], cell_timeout_s=120,
                 note="scheduler and workers on this machine (127.0.0.1): the ratio is the cluster's overhead, "
                      "not a speed-up; more machines add workers")]


def bench_cluster_tls(args) -> list[dict]:
    """An honest class of eight on a TLS cluster against a plain one (two one-thread workers each)."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return [dict(benchmark="autograde on a TLS cluster", skipped="needs labkit[cluster]")]
    from unittest import mock

    from labkit.course.grading import autograde
    from labkit.course.grading.cluster import Dask
    from labkit.course.grading.records import Options

    sys.path.insert(0, str(ROOT / "tests"))
    from dask_cluster import Cluster

    fixture = ROOT / "tests" / "fixtures" / "grading" / "solutions"
    times: dict[str, list[float]] = {"plain tcp://": [], "TLS": []}
    outputs: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="lkt", dir="/tmp") as tmp:
        tmp = Path(tmp)
        subs = tmp / "submissions"
        for i in range(8):
            (subs / f"student{i:02d}").mkdir(parents=True)
            for nb in sorted(fixture.glob("*.ipynb")):
                (subs / f"student{i:02d}" / nb.name).write_bytes(nb.read_bytes())
        clusters = {"TLS": Cluster(tmp / "tls"), "plain tcp://": Cluster(tmp / "plain", tls=False)}
        plain = lambda address, tls: Dask(address, None, require_tls=False)  # noqa: E731
        try:
            for k in range(max(1, args.repeat_cluster)):
                for name, c in clusters.items():
                    out = tmp / f"out-{k}-{name[:3]}"
                    patch = mock.patch.object(autograde, "executor_for", plain) if c.tls is None \
                        else contextlib.nullcontext()
                    with patch:
                        t0 = time.perf_counter()
                        autograde.autograde(subs, solutions=fixture, out=out, options=Options(jobs=1, timeout=30),
                                            log=lambda *_: None, scheduler=c.address, tls=c.tls)
                        times[name].append(time.perf_counter() - t0)
                    outputs[name] = (out / "grades.csv").read_bytes()
        finally:
            for c in clusters.values():
                c.close()
    tls, base = statistics.median(times["TLS"]), statistics.median(times["plain tcp://"])
    return [dict(benchmark="autograde an honest class of 8 (fixture assignment) on a two-worker cluster: TLS "
                           "against plain tcp://", labkit_s=tls, baseline="the same class on a plain tcp:// cluster",
                 baseline_s=base, speedup=base / tls, ratio=tls / base,
                 same_grades_csv=outputs["TLS"] == outputs["plain tcp://"],
                 tls_runs=times["TLS"], plain_runs=times["plain tcp://"],
                 note="in one process, taking turns; scheduler and workers on this machine (127.0.0.1)")]
