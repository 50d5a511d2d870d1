"""The model answers and their rubrics, as the instructor's solution notebooks hold them.

    .venv/bin/python scripts/answer_key.py            # rewrite docs/rubric.md from solutions/
    .venv/bin/python scripts/answer_key.py --check    # exit 1 when docs/rubric.md is out of date

Every written answer (a Markdown cell with nbgrader's ``solution`` and ``grade``) holds the
model answer, then a rubric that starts with a line ``**Rubric (N points).**`` followed by
``- k point(s): ...`` items (their k add up to N) and optional items on partial credit and
accepted numbers. nbgrader replaces the whole cell by *YOUR ANSWER HERE* in the student
version, so neither the answer nor the rubric reaches a student.

A run-dependent number in a model answer or rubric is quoted inside
``<span data-key="QUANTITY">...</span>``: one number (a value that lies in the quantity's
seed range) or two (the range itself, "32.6–35.5"). docs/seed_ranges.json
(scripts/seed_ranges.py) holds the ranges; tests/test_answer_key.py checks the quotes.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from labkit.course import rubric
from labkit.course.rubric import RUBRIC_RE, Answer, rubric_item_points  # noqa: F401 (the tests use them from here)

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
RUBRIC_MD = ROOT / "docs" / "rubric.md"
SEED_RANGES = ROOT / "docs" / "seed_ranges.json"

QUOTE_RE = re.compile(r'<span data-key="([a-z0-9_]+)">(.*?)</span>', re.DOTALL)
NUMBER_RE = re.compile(r"[-−]?\d+(?:\.\d+)?")


@dataclass
class Quote:
    key: str
    text: str
    numbers: list[float]
    decimals: int      # the most decimals among the quoted numbers


def answers(solutions: Path = SOLUTIONS) -> list[Answer]:
    """Every manually graded written answer of the solution notebooks, in notebook order."""
    return rubric.answers(solutions)


def _number(text: str) -> float:
    return float(text.replace("−", "-"))


def quotes(text: str) -> list[Quote]:
    """Every <span data-key="..."> quote in text, with the numbers it holds."""
    out = []
    for key, inner in QUOTE_RE.findall(text):
        found = NUMBER_RE.findall(inner)
        decimals = max((len(n.split(".")[1]) if "." in n else 0) for n in found) if found else 0
        out.append(Quote(key, inner, [_number(n) for n in found], decimals))
    return out


def unmarked_decimals(text: str) -> list[str]:
    """Decimal numbers in text outside quotes, math ($...$), code (`...`) and "Question 4.1": numbers nobody checks."""
    stripped = QUOTE_RE.sub(" ", text)
    stripped = re.sub(r"\$\$.*?\$\$", " ", stripped, flags=re.DOTALL)
    stripped = re.sub(r"\$[^$]*\$", " ", stripped)
    stripped = re.sub(r"`[^`]*`", " ", stripped)
    stripped = re.sub(r"Questions?\s+\d+\.\d+(?:(?:,|\s+and|\s+or|\s+to)\s+\d+\.\d+)*", " ", stripped)  # references
    return re.findall(r"(?<![\w.])\d+\.\d+", stripped)


def check_quote(quote: Quote, low: float, high: float) -> str | None:
    """None when the quote agrees with the measured range [low, high], else what is wrong.

    One number: it lies in the range, widened by half a unit of its last digit.
    Two numbers a, b: the quoted range holds the measured one (to the rounding) and is
    at most one unit of the last digit wider on each side.
    """
    unit = 10.0 ** -quote.decimals
    half = unit / 2 + 1e-9
    if len(quote.numbers) == 1:
        (v,) = quote.numbers
        if low - half <= v <= high + half:
            return None
        return f"quotes {v:g}, but the seed range is {low:.4g} to {high:.4g}"
    if len(quote.numbers) == 2:
        a, b = sorted(quote.numbers)
        if a <= low + half and b >= high - half and a >= low - unit - 1e-9 and b <= high + unit + 1e-9:
            return None
        return f"quotes the range {a:g} to {b:g}, but the seed range is {low:.4g} to {high:.4g}"
    return f"holds {len(quote.numbers)} numbers ({quote.text!r}); a quote holds one number or a range of two"


def seed_ranges(path: Path = SEED_RANGES) -> dict:
    return json.loads(path.read_text())


def render_rubric(items: list[Answer], ranges: dict | None = None) -> str:
    """docs/rubric.md: every written question with its rubric, in notebook order."""
    config = (ranges or {}).get("config", {})
    seeds = config.get("seeds", [])
    lines = [
        "# Rubric for the written answers",
        "",
        "Generated from the solution notebooks by `scripts/answer_key.py` (do not edit by hand: edit the",
        "rubric in the answer cell of `solutions/*.ipynb`, below the model answer, and rerun the script).",
        "Students never see it: nbgrader replaces the whole answer cell in the student version.",
        "",
        "General rules for every question:",
        "",
        "- Grade what the student's own notebook shows. Numbers that depend on the run (training, random",
        "  initialisation) are accepted within the ranges below, which were measured with the lab's budget",
        f"  for seeds {seeds[0]}–{seeds[-1]} (`docs/seed_ranges.json`, `scripts/seed_ranges.py`); a number"
        if seeds else "  for several seeds (`docs/seed_ranges.json`, `scripts/seed_ranges.py`); a number",
        "  outside its range is still accepted when the student's printed output shows it (a GPU, another",
        "  seed or a shorter training give other numbers): then check that the reasoning fits their numbers.",
        "- Half points are not used: each item below is worth whole points, given or not.",
        "- A correct statement with a wrong or missing reason earns the point for the statement only",
        "  where the rubric lists the two separately.",
        "",
        f"Written points in all: {sum(a.points for a in items)}.",
        "",
    ]
    for a in items:
        title = f"Question {a.question}" if a.question else a.grade_id
        lines += [f"## {title} ({a.points} point{'s' if a.points != 1 else ''}, `{a.notebook}.ipynb`, `{a.grade_id}`)", ""]
        if a.question_text:
            lines += [a.question_text, ""]
        body = RUBRIC_RE.sub("", a.rubric, count=1).strip()
        lines += [body, ""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="only check that docs/rubric.md is up to date")
    args = p.parse_args(argv)
    text = render_rubric(answers(), seed_ranges() if SEED_RANGES.exists() else None)
    if args.check:
        if RUBRIC_MD.exists() and RUBRIC_MD.read_text() == text:
            print("docs/rubric.md is up to date")
            return 0
        print("docs/rubric.md is out of date: run scripts/answer_key.py", file=sys.stderr)
        return 1
    RUBRIC_MD.write_text(text)
    print(f"wrote {RUBRIC_MD}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
