"""The lab notebooks: solutions/ (the instructor's, with nbgrader markup) and
notebooks/ (the student versions that `labkit release` generates from them).

The solution notebooks themselves are executed by nbval (`--nbval-lax`, see
pyproject.toml: `solutions` is a test path), on the full MNIST, with every
visible and hidden test. Here: the student versions are up to date, leak
nothing, fail every test until solved, run cleanly up to the first unsolved
cell, carry the Colab badge and install cell; the grading markup is sound;
every question sits where the lab instructions put it.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from labkit.course.release import notebooks as release
from labkit.course.release.student_repo import link_problems
from labkit.course.release.student_repo import load as load_student_repo

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
NOTEBOOKS = ROOT / "notebooks"
NAMES = ["00_pytorch", "0_preparation", "1_pca", "2_ppca", "3_vae"]
WITHOUT_MNIST = {"00_pytorch", "0_preparation"}  # the notebooks that do not load MNIST

# Where the lab instructions (Section 4) put each question: notebook -> {question: task}.
QUESTIONS = {
    "00_pytorch": {},
    "0_preparation": {"3.1": None, "3.2": None, "3.3": None, "3.4": None, "3.5": None},
    "1_pca": {"4.1": 3, "4.2": 3},
    "2_ppca": {"4.3": 2, "4.4": 4, "4.5": 4, "4.6": 4},
    "3_vae": {"4.7": 1, "4.8": 8, "4.9": 8, "4.10": 8},
}
TASKS = {"00_pytorch": 4, "0_preparation": 0, "1_pca": 3, "2_ppca": 4, "3_vae": 8}

QUESTION_RE = re.compile(r"\*\*Question (\d\.\d+)\.\*\*")
TASK_RE = re.compile(r"^## Task (\d+)\b", re.MULTILINE)


def read(path: Path):
    return nbformat.read(path, as_version=4)


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def all_notebooks():
    return [SOLUTIONS / f"{n}.ipynb" for n in NAMES] + [NOTEBOOKS / f"{n}.ipynb" for n in NAMES]


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """The student notebooks, freshly generated from solutions/ (nbgrader)."""
    out = tmp_path_factory.mktemp("generated")
    release.generate(SOLUTIONS, out)
    return out


# --------------------------------------------------------------------------- generation


def test_the_five_notebooks_exist():
    assert sorted(p.stem for p in SOLUTIONS.glob("*.ipynb")) == NAMES
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == NAMES


def test_student_notebooks_are_up_to_date(generated):
    changes = release.compare(generated, NOTEBOOKS)
    assert not changes, "notebooks/ is out of date with solutions/; run `labkit release`:\n" + "\n".join(changes)


def test_normalise_is_idempotent_and_strips_editor_state():
    nb = read(SOLUTIONS / "1_pca.ipynb")
    cell = next(c for c in nb.cells if c.cell_type == "code")
    cell.outputs = [nbformat.v4.new_output("stream", text="hello")]
    cell.execution_count = 7
    cell.metadata["execution"] = {"iopub.execute_input": "2024-01-01T00:00:00"}
    nb.metadata["widgets"] = {"state": {}}
    text = release.normalise(nb)
    again = release.normalise(nbformat.reads(text, as_version=4))
    assert text == again
    out = json.loads(text)
    assert out["nbformat"] == 4 and out["nbformat_minor"] == 5
    assert set(out["metadata"]) == {"kernelspec", "language_info"}
    for c in out["cells"]:
        if c["cell_type"] == "code":
            assert c["outputs"] == [] and c["execution_count"] is None
        assert "execution" not in c["metadata"]


def test_committed_notebooks_have_no_outputs():
    for path in all_notebooks():
        for cell in read(path).cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{path}: clear the outputs"


# --------------------------------------------------------------------------- leaks


def test_no_solution_or_hidden_test_in_student_notebooks(generated):
    assert release.find_leaks(SOLUTIONS, NOTEBOOKS) == []
    assert release.find_leaks(SOLUTIONS, generated) == []
    for path in NOTEBOOKS.glob("*.ipynb"):
        text = path.read_text(encoding="utf-8")
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
            assert marker not in text, f"{path.name}: {marker}"


def test_find_leaks_reports_a_solution_line(tmp_path):
    for path in NOTEBOOKS.glob("*.ipynb"):
        shutil.copy(path, tmp_path / path.name)
    target = tmp_path / "1_pca.ipynb"
    nb = read(target)
    nb.cells[0].source += "\n    U, S, Vh = torch.linalg.svd(X - mu, full_matrices=False)"  # a solution line
    nbformat.write(nb, target)
    leaks = release.find_leaks(SOLUTIONS, tmp_path)
    assert len(leaks) == 1 and "1_pca.ipynb" in leaks[0] and "pca-fit" in leaks[0], leaks


def test_find_leaks_reports_a_misspelt_delimiter_and_a_missing_notebook(tmp_path):
    for path in NOTEBOOKS.glob("*.ipynb"):
        if path.stem != "3_vae":
            shutil.copy(path, tmp_path / path.name)
    target = tmp_path / "0_preparation.ipynb"
    nb = read(target)
    nb.cells[0].source += "\n### BEGIN SOLUTON"
    nbformat.write(nb, target)
    leaks = release.find_leaks(SOLUTIONS, tmp_path)
    assert any("delimiter" in leak and "0_preparation" in leak for leak in leaks), leaks
    assert any("3_vae.ipynb" in leak and "missing" in leak for leak in leaks), leaks


def test_release_refuses_a_leak_and_leaves_notebooks_untouched(tmp_path):
    """A misspelt hidden-test delimiter makes nbgrader keep the hidden tests: release must stop."""
    solutions, notebooks = tmp_path / "solutions", tmp_path / "notebooks"
    shutil.copytree(SOLUTIONS, solutions)
    shutil.copytree(NOTEBOOKS, notebooks)
    path = solutions / "1_pca.ipynb"
    nb = read(path)
    tests = next(c for c in nb.cells if nbgrader_meta(c).get("grade") and "### BEGIN HIDDEN TESTS" in c.source)
    tests.source = tests.source.replace("### BEGIN HIDDEN TESTS", "### BEGIN HIDDEN TEST")
    nbformat.write(nb, path)
    before = {p.name: p.read_bytes() for p in notebooks.iterdir()}
    with pytest.raises(release.ReleaseError, match="refusing to release"):
        release.release(solutions, notebooks, validate=False, log=lambda *a: None)
    assert {p.name: p.read_bytes() for p in notebooks.iterdir()} == before


def test_check_reports_stale_notebooks(generated, tmp_path):
    for path in generated.glob("*.ipynb"):
        shutil.copy(path, tmp_path / path.name)
    assert release.compare(generated, tmp_path) == []
    (tmp_path / "2_ppca.ipynb").write_text((tmp_path / "2_ppca.ipynb").read_text() + " ")
    (tmp_path / "0_preparation.ipynb").unlink()
    (tmp_path / "9_extra.ipynb").write_text("{}")
    changes = release.compare(generated, tmp_path)
    assert [c.split(":")[0] for c in changes] == ["0_preparation.ipynb", "2_ppca.ipynb", "9_extra.ipynb"]


def test_release_check_command_on_the_checkout(capsys):
    from labkit.cli import main

    assert main(["release", "--check", "--no-validate"]) == 0
    assert "up to date" in capsys.readouterr().out


# --------------------------------------------------------------------------- grading markup


def test_graded_cells_have_points_and_unique_ids():
    for directory in (SOLUTIONS, NOTEBOOKS):
        seen = {}
        for name in NAMES:
            for cell in read(directory / f"{name}.ipynb").cells:
                meta = nbgrader_meta(cell)
                if not meta:
                    continue
                gid = meta.get("grade_id")
                assert gid and gid not in seen, f"{name}: grade_id {gid!r} missing or also in {seen.get(gid)}"
                seen[gid] = name
                assert meta.get("schema_version") == 3
                if meta.get("grade"):
                    assert meta.get("points", 0) > 0, f"{name}/{gid}: a graded cell needs points"
                if meta.get("grade") and not meta.get("solution"):  # autograded tests
                    assert cell.cell_type == "code" and meta.get("locked"), f"{name}/{gid}: tests must be locked"
                if meta.get("solution") and cell.cell_type == "code" and directory == SOLUTIONS:
                    assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source, gid
                if meta.get("solution") and cell.cell_type == "markdown":
                    assert meta.get("grade"), f"{name}/{gid}: written answers are graded by hand"


def test_every_autograded_test_has_visible_and_hidden_parts():
    for name in NAMES:
        for cell in read(SOLUTIONS / f"{name}.ipynb").cells:
            meta = nbgrader_meta(cell)
            if meta.get("grade") and not meta.get("solution"):
                visible = cell.source.split("### BEGIN HIDDEN TESTS")[0]
                assert re.search(r"\bassert\b|\bchecks\.\w+\(", visible), f"{name}/{meta['grade_id']}: no visible self-check"
        hidden = sum("### BEGIN HIDDEN TESTS" in c.source for c in read(SOLUTIONS / f"{name}.ipynb").cells)
        assert hidden >= 3, f"{name}: only {hidden} test cells with hidden tests"


def test_questions_sit_where_the_lab_instructions_put_them():
    for directory in (SOLUTIONS, NOTEBOOKS):
        for name, expected in QUESTIONS.items():
            cells = read(directory / f"{name}.ipynb").cells
            task, tasks_seen, found = None, [], {}
            for i, cell in enumerate(cells):
                if cell.cell_type != "markdown":
                    continue
                for t in TASK_RE.findall(cell.source):
                    task = int(t)
                    tasks_seen.append(task)
                for q in QUESTION_RE.findall(cell.source):
                    assert q not in found, f"{name}: Question {q} stated twice"
                    found[q] = task
                    answer = cells[i + 1]
                    meta = nbgrader_meta(answer)
                    assert answer.cell_type == "markdown" and meta.get("solution") and meta.get("grade"), (
                        f"{name}: Question {q} should be followed by a manually graded answer cell")
            assert found == expected, f"{directory.name}/{name}: questions in tasks {found}, expected {expected}"
            assert tasks_seen == list(range(1, TASKS[name] + 1)), f"{name}: tasks {tasks_seen}"


# --------------------------------------------------------------------------- Colab


@pytest.mark.parametrize("name", NAMES)
def test_colab_badge_and_install_cell(name):
    """Badge and install cell as the checkout's [tool.labkit] gives them (tests/test_publish.py
    checks them for a configured repository)."""
    nb = read(NOTEBOOKS / f"{name}.ipynb")
    assert nb.cells[0].cell_type == "markdown"
    assert link_problems(nb, load_student_repo(ROOT), name) == []
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    src = first_code.source
    assert '"google.colab" in sys.modules' in src
    compile(src, f"{name}: Colab cell", "exec")  # plain Python, valid in any kernel

    def no_ipython():
        raise AssertionError("the Colab cell must do nothing outside Colab")

    exec(src, {"get_ipython": no_ipython})  # noqa: S102 - outside Colab: nothing happens


def test_notebooks_train_on_the_default_device():
    for name in sorted(set(NAMES) - {"0_preparation"}):
        cells = read(SOLUTIONS / f"{name}.ipynb").cells
        assert any("device = default_device()" in c.source for c in cells), name
        for cell in cells:
            if "= fit(" in cell.source:
                assert "device=device" in cell.source, f"{name}: fit(..., device=device)"


# --------------------------------------------------------------------------- execution of the student versions


def _kernel_env() -> dict:
    env = dict(os.environ, LABKIT_GRADING="1", OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    return env


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_student_notebook_runs_up_to_its_first_unsolved_cell(name, request):
    """Executed in order, the cells run cleanly until the first unsolved exercise: the first
    error is the NotImplementedError of a solution stub (raised in the solution cell, or in the
    self-check or given cell that first calls the unsolved function)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    if name not in WITHOUT_MNIST:
        request.getfixturevalue("mnist_root")
    nb = read(NOTEBOOKS / f"{name}.ipynb")
    client = NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    failed = None
    with client.setup_kernel(env=_kernel_env()):
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            try:
                client.execute_cell(cell, index)
            except CellExecutionError as e:
                failed = (index, cell, e)
                break
    assert failed is not None, f"{name}: every cell ran, but the student version should have unsolved cells"
    index, cell, error = failed
    unsolved_before = [c for c in nb.cells[: index + 1]
                       if nbgrader_meta(c).get("solution") and c.cell_type == "code" and "raise NotImplementedError()" in c.source]
    assert error.ename == "NotImplementedError" and unsolved_before, (
        f"{name}: the first error is in cell {index} ({nbgrader_meta(cell).get('grade_id', 'given code')}), "
        f"not an unsolved exercise: {error.ename}: {error.evalue}")


@pytest.mark.slow
def test_nbgrader_validate_invert_finds_no_passing_test(mnist_root):
    problems = release.validate_student_versions(NOTEBOOKS)
    assert problems == [], "\n".join(problems)


# --------------------------------------------------------------------------- the training loop of notebook 2


def test_fit_is_the_training_loop_written_out_in_the_ppca_notebook():
    """Notebook 2 writes the training loop out and then says that labkit.train.fit is that loop:
    run the notebook's cell and fit from the same initial parameters, on small made-up data."""
    import math
    from types import SimpleNamespace

    import torch

    from labkit.data import batches
    from labkit.train import History, fit

    cells = {c.get("id"): c for c in read(SOLUTIONS / "2_ppca.ipynb").cells}
    by_grade_id = {nbgrader_meta(c).get("grade_id"): c for c in cells.values()}
    loop = next(c.source for c in cells.values() if c.cell_type == "code" and "optimizer.step()" in c.source)
    namespace = {"torch": torch, "nn": torch.nn, "math": math, "batches": batches, "History": History}
    exec(cells["ppca-6"].source, namespace)            # the notebook's PPCA class  # noqa: S102
    exec(by_grade_id["ppca-cost"].source, namespace)   # the model solution of the cost  # noqa: S102
    g = torch.Generator().manual_seed(0)
    X_train, X_test = torch.rand(1300, 784, generator=g), torch.rand(200, 784, generator=g)
    shown = []
    namespace.update(X_train=X_train, X_test=X_test, EPOCHS=3, SEED=4, device="cpu",
                     plotting=SimpleNamespace(plot_training_curves=lambda *a, **k: shown.append(a)))
    exec(loop, namespace)  # noqa: S102
    by_loop, history = namespace["ppca"], namespace["history"]
    assert namespace["iterations"] == 3 * 3 and len(history.train_loss) == len(history.test_loss) == 3 and shown

    torch.manual_seed(4)
    by_fit = namespace["PPCA"](data_dim=784, latent_dim=2)
    fitted = fit(by_fit, X_train, X_test=X_test, loss=namespace["ppca_cost"], epochs=3, batch_size=500, lr=0.01, seed=4,
                 device="cpu", progress=False)
    for name, p in by_fit.named_parameters():
        torch.testing.assert_close(p, dict(by_loop.named_parameters())[name], rtol=1e-4, atol=1e-5, msg=name)
    torch.testing.assert_close(torch.tensor(fitted.train_loss), torch.tensor(history.train_loss), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(torch.tensor(fitted.test_loss), torch.tensor(history.test_loss), rtol=1e-5, atol=1e-4)
