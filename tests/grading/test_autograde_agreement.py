"""The harness agrees with `labkit autograde`: a few variants of tests/grading/variants graded end to
end, two students at a time (--jobs 2, the default 120 s cell timeout), in grading mode.

- "slow": 3_vae with a correct but slow mc_log_likelihood (a loop over the images): full marks,
  the training cell within the timeout under --jobs 2 (issue #13, item 5);
- "klsign": 3_vae with a sign slip in kl_term: loses exactly the points of vae-kl-tests
  (the VAE cost and training tests keep theirs: charged once);
- "refpca": 1_pca with a fit_pca built on labkit.models.PCA: loses exactly pca-fit-tests, and the
  feedback says that labkit's reference was called.
Needs MNIST (LABKIT_DATA). Takes a few minutes on 2 cores.
"""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import nbformat
import pytest

from grading.variants import nb1_pca, nb3_vae
from helpers.course import Submissions, changed, sandbox_mode
from labkit.course.grading.autograde import autograde
from labkit.course.grading.records import Options

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = ROOT / "solutions"

STUDENTS = {  # student -> notebook, solution cell, variant code, the test cells that must lose their points
    "slow": ("3_vae", "mc-cost", nb3_vae.SLOW_MC, set()),
    "klsign": ("3_vae", "vae-kl", nb3_vae.CELLS["vae-kl"]["wrong"]["sign slip"], {"vae-kl-tests"}),
    "refpca": ("1_pca", "pca-fit", nb1_pca.CELLS["pca-fit"]["reference"]["labkit PCA"], {"pca-fit-tests"}),
}


def submission(subs: Submissions, student: str, notebook: str, grade_id: str, code: str) -> None:
    """A student's folder holding the solution notebook with one solution cell replaced by ``code``;
    the code keeps the reference's other functions of the cell (as in the harness)."""
    nb = nbformat.read(SOLUTIONS / f"{notebook}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    subs.add(f"{student}/{notebook}.ipynb", changed(nb, {grade_id: cell.source + "\n\n# the student's version\n" + code}))


def autograded_cells(notebook: str) -> dict[str, float]:
    nb = nbformat.read(SOLUTIONS / f"{notebook}.ipynb", as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: float(c.metadata["nbgrader"]["points"]) for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade") and not c.metadata["nbgrader"].get("solution")}


@pytest.mark.slow
def test_autograde_agrees_with_the_harness(mnist_root, tmp_path):
    subs = Submissions(tmp_path / "subs")
    for student, (notebook, grade_id, code, _) in STUDENTS.items():
        submission(subs, student, notebook, grade_id, code)
    out = tmp_path / "out"
    autograde(subs.folder, out=out, options=Options(jobs=2, sandbox=sandbox_mode()), log=lambda *_: None)
    rows = {(r["student"], r["notebook"]): r for r in csv.DictReader((out / "grades.csv").open())}
    for student, (notebook, _, _, losing) in STUDENTS.items():
        row = rows[student, notebook]
        assert row["status"].startswith("graded"), (student, row)
        for gid, points in autograded_cells(notebook).items():
            expected = 0.0 if gid in losing else points
            assert float(row[gid]) == expected, (student, gid, row[gid], expected)
    feedback = "".join(p.read_text(errors="replace") for p in (out / "feedback" / "refpca").rglob("*.html"))
    assert "labkit&#39;s reference PCA" in feedback or "labkit's reference PCA" in feedback
    shutil.rmtree(tmp_path / "subs")
