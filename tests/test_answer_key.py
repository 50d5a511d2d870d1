"""The answer key states what the notebooks print.

Every run-dependent number that a model answer or rubric quotes is marked
``<span data-key="QUANTITY">...</span>`` (see scripts/answer_key.py).
docs/seed_ranges.json, written by scripts/seed_ranges.py, holds every quantity's value
with each of several seeds, with the lab's full budget. Here:

1. every quote agrees with its quantity's seed range (one number inside it; a quoted
   range equal to it, to the quote's rounding);
2. every answer quotes the quantities it must (``REQUIRED``), and no decimal number in
   an answer goes unmarked (outside math and code);
3. every written answer has a rubric whose items add up to its points, and
   docs/rubric.md is the rubrics collected;
4. the solution notebooks, executed once here (seed 0, full budget, on the CPU), give
   values inside the documented ranges: the ranges (and so the quotes) are not stale. The
   execution is the one nbval's cells of the notebooks are checked in (tests/helpers/executed.py),
   when the session runs those too.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


answer_key = _load("answer_key")
seed_ranges_script = _load("seed_ranges")

# The quantities each answer must quote: the numbers its question asks for or its reasoning rests on.
REQUIRED = {
    "q4_1-answer": {"pca_digit_error_1", "pca_test_error"},
    "q4_2-answer": {"pca_test_error", "mean_image_error"},
    "q4_3-answer": {"ppca_iterations"},
    "q4_4-answer": {"pca_enc_z1_min", "pca_enc_z1_max", "pca_enc_var1", "pca_train_var1", "ppca_enc_var1",
                    "ppca_closed_enc_var1"},
    "q4_5-answer": {"ppca_digit_error_1"},
    "q4_6-answer": {"ppca_test_error", "pca_test_error", "ppca_shrinkage_gap", "ppca_error_gap"},
    "q4_8-answer": {"vae_enc_var1", "vae_ppca_enc_var1", "vae_enc_inside3_pct"},
    "q4_9-answer": {"vae_digit_error_1"},
    "q4_10-answer": {"vae_test_error", "vae_pca_error", "vae_reduction_pct"},
}


@pytest.fixture(scope="module")
def ranges() -> dict:
    return answer_key.seed_ranges()["quantities"]


@pytest.fixture(scope="module")
def items():
    return answer_key.answers()


def _numeric(ranges: dict, key: str):
    entry = ranges.get(key)
    if entry is None or "min" not in entry:
        return None
    return entry["min"], entry["max"]


def problems_of(answer, ranges: dict) -> list[str]:
    """Everything wrong with the numbers of one answer (model answer and rubric)."""
    where = f"{answer.notebook}/{answer.grade_id}"
    out = []
    found = answer_key.quotes(answer.answer + "\n" + answer.rubric)
    for q in found:
        bounds = _numeric(ranges, q.key)
        if bounds is None:
            out.append(f"{where}: quotes {q.key!r}, which docs/seed_ranges.json does not measure")
            continue
        wrong = answer_key.check_quote(q, *bounds)
        if wrong:
            out.append(f"{where}: {q.key} {wrong}")
    missing = REQUIRED.get(answer.grade_id, set()) - {q.key for q in answer_key.quotes(answer.answer)}
    if missing:
        out.append(f"{where}: the model answer should quote {sorted(missing)} (as <span data-key=...>)")
    for number in answer_key.unmarked_decimals(answer.answer + "\n" + answer.rubric):
        out.append(f"{where}: the number {number} is not marked; quote it as <span data-key=...> "
                   "(or in math/code when it is no run's result)")
    return out


# --------------------------------------------------------------------------- the quotes


def test_seed_ranges_cover_at_least_five_seeds():
    config = answer_key.seed_ranges()["config"]
    assert len(config["seeds"]) >= 5, config["seeds"]


def test_every_quoted_number_lies_in_its_seed_range(items, ranges):
    problems = [p for a in items for p in problems_of(a, ranges)]
    assert not problems, "\n".join(problems)


def test_every_required_answer_exists(items):
    assert set(REQUIRED) <= {a.grade_id for a in items}


def test_the_checker_rejects_the_old_q4_10(ranges):
    """The answer key before this test: a VAE error of "about 27", 40 % below PCA, unmarked."""
    old = answer_key.Answer(
        notebook="3_vae", grade_id="q4_10-answer", question="4.10", question_text="", points=1, rubric="", rubric_points=1,
        answer="About **27** on the test images after 20 epochs (it varies by about one with the random initialisation), "
               "against about 43.7 for PPCA and 43.6 for PCA: roughly 40 % lower.")
    problems = problems_of(old, ranges)
    assert any("should quote" in p and "vae_test_error" in p for p in problems), problems
    assert any("43.7" in p for p in problems), problems
    marked = answer_key.Answer(**{**vars(old), "answer": 'About **<span data-key="vae_test_error">27</span>**.'})
    assert any("vae_test_error quotes 27" in p for p in problems_of(marked, ranges)), problems_of(marked, ranges)


def test_check_quote_rules():
    q = answer_key.quotes('<span data-key="x">32.6–35.5</span> and <span data-key="y">about 33</span>')
    assert [(x.key, x.numbers, x.decimals) for x in q] == [("x", [32.6, 35.5], 1), ("y", [33.0], 0)]
    assert answer_key.check_quote(q[0], 32.61, 35.46) is None
    assert answer_key.check_quote(q[0], 32.61, 36.0) is not None      # the range is wider than quoted
    assert answer_key.check_quote(q[0], 30.0, 35.5) is not None       # the quote is too narrow
    assert answer_key.check_quote(q[1], 32.6, 35.5) is None
    assert answer_key.check_quote(q[1], 27.0, 28.0) is not None
    wide = answer_key.quotes('<span data-key="x">0–100</span>')[0]
    assert answer_key.check_quote(wide, 32.6, 35.5) is not None         # a range that says nothing
    neg = answer_key.quotes('<span data-key="x">−4.2</span>')[0]
    assert neg.numbers == [-4.2] and answer_key.check_quote(neg, -4.24, -4.24) is None
    assert answer_key.unmarked_decimals("about 43.7, $0.1^2$, `0.1 * x`, <span data-key=\"a\">1.5</span>, "
                                        "Questions 4.1 and 4.5, Question 3.3") == ["43.7"]


# --------------------------------------------------------------------------- the rubric


def test_every_written_answer_has_a_rubric_that_adds_up(items):
    assert len(items) == 15, [a.grade_id for a in items]   # Questions 3.1-3.5 and 4.1-4.10
    for a in items:
        assert a.rubric, f"{a.notebook}/{a.grade_id}: no '**Rubric (N points).**' below the model answer"
        assert a.rubric_points == a.points, f"{a.grade_id}: rubric for {a.rubric_points} points, the cell has {a.points}"
        assert sum(answer_key.rubric_item_points(a.rubric)) == a.points, (
            f"{a.grade_id}: the rubric's items give {answer_key.rubric_item_points(a.rubric)}, not {a.points} points")
        assert "Partial credit" in a.rubric, f"{a.grade_id}: say what earns partial credit (or that none is given)"


def test_rubric_md_collects_the_rubrics(items):
    expected = answer_key.render_rubric(items, answer_key.seed_ranges())
    assert answer_key.RUBRIC_MD.read_text() == expected, "docs/rubric.md is out of date: run scripts/answer_key.py"


def test_models_md_ranges_come_from_seed_ranges_json():
    """docs/models.md's table of seed ranges is written from docs/seed_ranges.json, one source for both."""
    text = seed_ranges_script.MODELS_MD.read_text()
    table = seed_ranges_script.ranges_table(answer_key.seed_ranges())
    assert table in text, "docs/models.md's table of ranges is out of date: run scripts/seed_ranges.py --docs"
    assert text.count("| quantity (notebook) |") == 1, "docs/models.md has a second, hand-written table of ranges"


def test_models_md_table_follows_the_json(tmp_path):
    """A changed range in the JSON changes the table (the comparison above can fail)."""
    payload = answer_key.seed_ranges()
    payload["quantities"]["vae_test_error"] = dict(payload["quantities"]["vae_test_error"], max=99.0)
    doc = tmp_path / "models.md"
    doc.write_text(seed_ranges_script.MODELS_MD.read_text())
    assert seed_ranges_script.write_docs_table(payload, doc)
    assert "| VAE test reconstruction error (3_vae) | 31.7–99.0 |" in doc.read_text()
    assert seed_ranges_script.ranges_table(answer_key.seed_ranges()) not in doc.read_text()


# --------------------------------------------------------------------------- the executed notebooks


@pytest.fixture(scope="module")
def executed(mnist_root, request) -> dict:
    """The solution notebooks run once, seed 0, the lab's full budget: {quantity: value}."""
    from helpers.executed import answer_key_values

    shared = answer_key_values(request.config)
    if shared is not None:
        return shared
    values = {}
    for found, _seconds in seed_ranges_script.measure([("3_vae", 0), ("2_ppca", 0), ("1_pca", 0)], workers=2).values():
        values.update(found)
    return values


@pytest.mark.mnist
@pytest.mark.slow
def test_the_executed_notebooks_lie_in_the_documented_ranges(executed, ranges):
    """A value outside its range (by more than a quarter of the range's width; relative 1e-4 for
    quantities that do not vary) means a notebook changed: rerun scripts/seed_ranges.py and
    update the answers."""
    assert os.environ.get("LABKIT_GRADING", "") in ("", "0")
    outside = []
    for key, value in executed.items():
        bounds = _numeric(ranges, key)
        if bounds is None:
            continue
        low, high = bounds
        slack = max(0.25 * (high - low), 1e-4 * abs(value), 1e-6)
        if not low - slack <= value <= high + slack:
            outside.append(f"{key}: {value:.6g} outside {low:.6g} to {high:.6g}")
    missing = {k for k, e in ranges.items() if "min" in e} - set(executed)
    assert not outside and not missing, "\n".join(outside + [f"not computed any more: {sorted(missing)}"])
