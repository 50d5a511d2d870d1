"""Grading accuracy (issue #13): every correct answer gets full marks, every typical mistake is caught
by its own test and by the visible self-check, charged once, and explained.

For each solution notebook (discovered from solutions/), every autograded solution cell must have
variants in tests/grading/variants/nb<notebook>.py: at least two correct answers and three typical
mistakes. The harness (tests/grading/harness.py) runs them in one kernel per notebook, in grading
mode, and this test fails on any

- false fail: a correct variant that fails its own test cell or a downstream one;
- false pass: a mistake that passes its own test cell, or its visible self-check (unless listed in
  ``hidden_only``), or a call to labkit's reference that is not caught;
- double charge: a mistake that also fails a downstream test cell;
- bare failure: a failing test cell whose message does not say what was expected.

The report (per cell: variants, false fails, false passes) is printed and written to
``$LABKIT_ACCURACY_REPORT`` when set. Needs MNIST (LABKIT_DATA).
"""
from __future__ import annotations

import importlib
import os
import time
from pathlib import Path

import pytest

from grading.harness import NotebookRun, Outcome, read_cells

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
MIN_CORRECT, MIN_WRONG = 2, 3


def variants_of(notebook: str) -> dict:
    try:
        return importlib.import_module(f"grading.variants.nb{notebook}").CELLS
    except ModuleNotFoundError:
        return {}


def explained(error: str) -> bool:
    """A failure explains itself unless it is a bare assert (an AssertionError without "expected")."""
    name, _, message = error.partition(": ")
    if name in ("AssertionError", "CheckFailed", "ReferenceCallError"):
        return "expected" in message and "likely mistake" in message
    return bool(message.strip())


def judge(o: Outcome, hidden_only: tuple[str, ...]) -> list[str]:
    """The problems of one variant's outcome (empty: graded fairly)."""
    problems = []
    own = o.tests.get(o.own)
    if "(the variant itself)" in o.tests:
        problems.append(f"the variant's code failed: {o.tests['(the variant itself)'].error}")
    downstream = {gid: r for gid, r in o.tests.items() if gid not in (o.own, "(the variant itself)")}
    if o.correct:
        for gid, r in [(o.own, own)] + list(downstream.items()):
            if r is not None and not r.ok:
                problems.append(f"FALSE FAIL in {gid}: {r.error}")
        return problems
    if own is None or own.ok:
        problems.append(f"FALSE PASS: {o.own} passed")
    elif not explained(own.error):
        problems.append(f"BARE FAILURE in {o.own}: {own.error!r}")
    if o.variant.startswith("reference: ") and own is not None and "labkit's reference" not in own.error:
        problems.append(f"reference call not named: {own.error}")
    if o.variant not in hidden_only and o.self_check is not None and o.self_check.ok:
        problems.append(f"SELF-CHECK MISS: the visible part of {o.own} passed")
    for gid, r in downstream.items():
        if not r.ok:
            problems.append(f"CHARGED TWICE in {gid}: {r.error}")
    return problems


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_grading_accuracy(path, mnist_root, record_property):
    started = time.perf_counter()
    table = variants_of(path.stem)
    cells = read_cells(path)
    graded = [c.grade_id for c in cells if c.kind == "solution" and any(
        t.kind == "test" and t.index > c.index for t in cells)]
    missing = [gid for gid in graded if gid not in table]
    thin = [gid for gid in graded if gid in table and (
        len(table[gid].get("correct", {})) < MIN_CORRECT or len(table[gid].get("wrong", {})) < MIN_WRONG)]
    assert not missing and not thin, (
        f"{path.name}: solution cells without enough variants in tests/grading/variants/nb{path.stem}.py "
        f"(at least {MIN_CORRECT} correct, {MIN_WRONG} wrong each): missing {missing}, too few {thin}")

    run = NotebookRun(path, {"LABKIT_DATA": str(Path(mnist_root).resolve())})
    report, problems = [], []
    try:
        for gid, r in run.run_reference().items():
            if not r.ok:
                problems.append(f"{path.stem} reference: FALSE FAIL in {gid}: {r.error}")
        for gid in graded:
            spec = table[gid]
            downstream = tuple(spec.get("downstream", ()))
            counts = {"correct": 0, "wrong": 0, "false fails": 0, "false passes": 0, "other": 0}
            for kind, correct in (("correct", True), ("wrong", False), ("reference", False)):
                for name, code in spec.get(kind, {}).items():
                    label = f"reference: {name}" if kind == "reference" else name
                    outcome = run.try_variant(gid, label, code, correct, downstream)
                    counts["correct" if correct else "wrong"] += 1
                    found = judge(outcome, tuple(spec.get("hidden_only", ())))
                    for p in found:
                        key = ("false fails" if p.startswith("FALSE FAIL") else
                               "false passes" if p.startswith(("FALSE PASS", "SELF-CHECK", "reference call")) else "other")
                        counts[key] += 1
                        problems.append(f"{path.stem} / {gid} / {label}: {p}")
                    error = outcome.tests.get(outcome.own)
                    report.append(f"  {gid:28s} {label[:48]:48s} {'pass' if error and error.ok else 'FAIL'}"
                                  f"  {'' if error is None or error.ok else error.error[:150]}")
            run.restore(gid, downstream)
            report.append(f"{path.stem} / {gid}: {counts['correct']} correct, {counts['wrong']} wrong; "
                          f"false fails {counts['false fails']}, false passes {counts['false passes']}, "
                          f"other problems {counts['other']}")
        slowest = max(run.cell_seconds.items(), key=lambda kv: kv[1])
        report.append(f"{path.stem}: reference run {sum(run.cell_seconds.values()):.1f} s, slowest cell "
                      f"{slowest[0]} {slowest[1]:.1f} s; whole check {time.perf_counter() - started:.0f} s")
    finally:
        run.close()
    text = "\n".join(report)
    print(text)
    if os.environ.get("LABKIT_ACCURACY_REPORT"):
        with open(os.environ["LABKIT_ACCURACY_REPORT"], "a") as f:
            f.write(text + "\n" + "\n".join(problems) + "\n")
    assert not problems, "grading is not fair:\n" + "\n".join(problems)
