"""The student's lab in a real browser: JupyterLab, Notebook 7, the latent explorer and the lab report.

Headless execution (nbval, nbclient) cannot see what a student sees. Here Chromium (Debian's,
driven by Playwright) opens the notebooks in JupyterLab 4, started by the tests on 127.0.0.1 with
a token, runs them through the user interface and checks what the page shows:

- every notebook with its solution cells filled in: Run All Cells from the menu, no cell with an
  error, an image in every figure cell, the latent explorer's sliders redraw its decoded image;
- every student notebook as handed out: the first task's cells run one by one with Shift+Enter,
  and the first self-check fails with the stub's NotImplementedError, not inside labkit;
- the explorer's static fallback where ipywidgets is missing;
- that the checks themselves fail on a figure call that draws nothing and an explorer whose
  callback is gone (a scratch notebook breaks them on purpose);
- one notebook in Notebook 7 (``jupyter notebook``), and ``labkit lab``'s report.html.

No page may fetch anything outside 127.0.0.1 (``data:``, ``blob:`` and, for the report,
``file:`` are local), except the "Open in Colab" badge image (see COLAB_BADGE).

Screenshots go to $LABKIT_BROWSER_OUT, default build/browser-tests/ (git-ignored). The kernels run
in grading mode (LABKIT_GRADING=1: fewer images, shorter training). Run these tests alone with
``pytest -m browser``. Without Chromium or Playwright they skip, saying why; under CI=true they
fail instead, unless .ci/run set LABKIT_NO_BROWSER because it could not install Chromium.
"""
from __future__ import annotations

import os
import re
import shutil
import warnings
from pathlib import Path

import nbformat
import pytest

from browser import chromium, servers, workfolder
from browser import notebook_ui as ui

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS, SOLUTIONS = ROOT / "notebooks", ROOT / "solutions"
NAMES = [p.stem for p in workfolder.student_notebooks(NOTEBOOKS)]
OUT = Path(os.environ.get("LABKIT_BROWSER_OUT") or ROOT / "build" / "browser-tests")
SCREENSHOT_FOLDERS = ("jupyterlab", "unsolved", "checks", "notebook7", "report")  # inside OUT
# Every notebook's first cell shows the "Open in Colab" badge, an image on Colab's site: a link for
# students who open the notebook online. Offline the page shows its text instead. It is the one
# address outside 127.0.0.1 a notebook page may ask for (the request is recorded and aborted).
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
KERNEL_ENV = {"LABKIT_GRADING": "1", "OMP_NUM_THREADS": "1"}
VIEWPORT = {"width": 1100, "height": 2400}  # tall: fewer pieces to stack in a notebook's screenshot
RUN_TIMEOUT_S = 600
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def needs_mnist(name: str) -> bool:
    return "load_mnist(" in (NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8")


def calls_explorer(name: str) -> bool:
    return "latent_explorer(" in (NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8")


def shows_a_figure(name: str, before: int | None = None) -> bool:
    """Whether a code cell of the notebook (before cell index ``before``) calls a figure function."""
    cells = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4).cells[:before]
    return any(ui.calls_in(c.source) & ui.FIGURE_CALLS for c in cells if c.cell_type == "code")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def browser():
    reason = chromium.unavailable()
    if reason:
        told = os.environ.get("LABKIT_NO_BROWSER")
        if chromium.in_ci() and not told:
            pytest.fail(f"CI=true, but the browser tests cannot run: {reason}. .ci/run installs Debian's chromium "
                        "and sets LABKIT_NO_BROWSER when it cannot.")
        pytest.skip(f"no browser tests: {told or reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = chromium.launch(playwright)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """``notebooks/solved``, ``notebooks/unsolved`` and ``notebooks/scratch``; ``home`` for the servers.
    Clears the screenshots of an earlier run (only the folders these tests write)."""
    for folder in SCREENSHOT_FOLDERS:
        shutil.rmtree(OUT / folder, ignore_errors=True)
    work = tmp_path_factory.mktemp("browser")
    workfolder.build(work / "notebooks", NOTEBOOKS, SOLUTIONS)
    (work / "notebooks" / "scratch").mkdir()
    return work


def _server(app: str, workdir: Path):
    server = servers.JupyterServer(app, workdir / "notebooks", workdir / f"home-{app}", env=KERNEL_ENV)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def lab(browser, workdir):
    yield from _server("lab", workdir)


@pytest.fixture(scope="module")
def notebook7(browser, workdir):
    yield from _server("notebook", workdir)


class Tab:
    """A page in its own browser context, with the record of its requests."""

    def __init__(self, browser):
        self.context = browser.new_context(viewport=VIEWPORT)
        self.offline = chromium.Offline(self.context)
        self.page = self.context.new_page()

    def outside(self, allowed=()) -> list[str]:
        return [url for url in self.offline.outside if url not in allowed]


@pytest.fixture
def tab(browser):
    t = Tab(browser)
    yield t
    t.context.close()


@pytest.fixture
def lab_tab(tab, lab):
    before = lab.kernel_ids()
    yield tab
    lab.shutdown_kernels(keep=before, wait=False)


def run_notebook(tab: Tab, server, path: str) -> list[ui.Cell]:
    """Open a notebook, Run All Cells from the menu, wait for the kernel to be idle; the cells."""
    ui.open_notebook(tab.page, server.notebook_url(path))
    ui.run_all_cells(tab.page)
    ui.wait_until_done(tab.page, RUN_TIMEOUT_S)
    return ui.cells(tab.page)


def check_explorer(page, cell: ui.Cell, out_dir: Path, redraw_s: float = 30) -> dict:
    """Drag z_1 a quarter of the way to the right; the readout and the decoded image must change."""
    moved = ui.drag_slider(page, cell.index, slider=0, fraction=0.25, out_dir=out_dir, redraw_s=redraw_s)
    assert moved["readout_after"] != moved["readout_before"], f"{cell.label()}: the slider did not move: {moved}"
    assert moved["src_changed"] and moved["difference"] > 1.0, (
        f"{cell.label()}: moving z_1 from {moved['readout_before']} to {moved['readout_after']} did not change the "
        f"decoded image (mean grey-level difference {moved['difference']:.2f}); see {out_dir}")
    return moved


# --------------------------------------------------------------------------- the solved notebooks in JupyterLab


@pytest.mark.parametrize("name", NAMES)
def test_solved_notebook_runs_in_jupyterlab(name, lab, lab_tab, request):
    if needs_mnist(name):
        request.getfixturevalue("mnist_root")
    cell_list = run_notebook(lab_tab, lab, f"solved/{name}.ipynb")
    shot = ui.screenshot_notebook(lab_tab.page, OUT / "jupyterlab" / f"{name}.png")
    expected = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4).cells
    assert len(cell_list) == len(expected), f"the page shows {len(cell_list)} cells, the notebook has {len(expected)}"
    assert ui.problems(cell_list) == [], f"{name} in JupyterLab (screenshot {shot})"
    repeated = [c.label() for c in cell_list if c.repeated_images]
    if repeated:  # a figure drawn into plt.subplots' axes, shown by the inline backend and as the cell's value
        warnings.warn(f"{name}: a figure shown twice in {', '.join(repeated)} (screenshot {shot})", stacklevel=1)
    explorers = [c for c in cell_list if c.is_explorer]
    assert len(explorers) == calls_explorer(name)
    for cell in explorers:
        check_explorer(lab_tab.page, cell, OUT / "jupyterlab" / f"{name}-explorer")
    assert lab_tab.outside(allowed=[COLAB_BADGE]) == [], "the page asked for addresses outside 127.0.0.1"


# --------------------------------------------------------------------------- the student version as handed out


def first_self_check(name: str) -> int:
    """Index of the first autograded test cell (the first task's self-check) of a student notebook."""
    for index, cell in enumerate(nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4).cells):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            return index
    raise AssertionError(f"{name}: no self-check cell")


# The first notebook whose first task comes after a figure (the first lab session: data, a figure,
# then the first exercise). One notebook only: what is checked is the same for every notebook,
# and each costs a page and a kernel.
UNSOLVED_NAME = next((n for n in NAMES if shows_a_figure(n, before=first_self_check(n))), NAMES[0])


def test_unsolved_first_self_check_shows_the_hint(lab, lab_tab, request):
    """Shift+Enter from the top to the first self-check: everything before it runs cleanly, and the
    self-check fails with the stub's NotImplementedError, raised in the student's own cell."""
    import labkit

    name = UNSOLVED_NAME
    if needs_mnist(name):
        request.getfixturevalue("mnist_root")
    check = first_self_check(name)
    page = lab_tab.page
    ui.open_notebook(page, lab.notebook_url(f"unsolved/{name}.ipynb"))
    ui.run_cells_one_by_one(page, check + 1)
    ui.wait_until_done(page, RUN_TIMEOUT_S)
    cell_list = ui.cells(page)
    shot = ui.screenshot_notebook(page, OUT / "unsolved" / f"{name}.png")
    assert ui.problems(cell_list[:check]) == [], f"{name}: the cells before the first self-check (screenshot {shot})"
    self_check = cell_list[check]
    assert self_check.ran, f"{self_check.label()} did not run (prompt {self_check.prompt!r})"
    assert [e["ename"] for e in self_check.errors] == ["NotImplementedError"], self_check.errors
    traceback = ANSI.sub("", self_check.errors[0]["traceback"])
    assert str(Path(labkit.__file__).parent) not in traceback and "site-packages" not in traceback, (
        f"the self-check's traceback goes through labkit's internals:\n{traceback}")
    assert "raise NotImplementedError()" in traceback, f"the traceback does not point at the stub:\n{traceback}"
    assert "NotImplementedError" in self_check.text, "the page does not show the error"
    assert lab_tab.outside(allowed=[COLAB_BADGE]) == []


# --------------------------------------------------------------------------- the explorer's fallback, and the checks' own test

DECODER = ("import torch\nfrom labkit import plotting\n\n"
           "W = torch.linspace(-2.0, 2.0, 2 * 784).reshape(2, 784)\n"
           "def decode(z):  # a toy decoder: (K, 2) -> (K, 784)\n    return torch.sigmoid(z @ W)")


# A scratch notebook, cell by cell: a working figure and explorer, a figure call that draws
# nothing, an explorer whose slider callback is gone, and the explorer without ipywidgets.
SCRATCH = [
    DECODER,                                                                              # 0
    "plotting.show_images(decode(torch.randn(8, 2)))",                                   # 1: works
    "plotting.latent_explorer(decode, latent_dim=2)",                                     # 2: works
    "plotting.show_images = lambda *args, **kwargs: None  # broken: draws nothing",       # 3
    "plotting.show_images(decode(torch.randn(8, 2)))",                                   # 4: no image
    "box = plotting.latent_explorer(decode, latent_dim=2)\n"
    "for slider in box.children[0].children[:2]:\n"
    "    slider.unobserve_all()  # broken: moving a slider redraws nothing\nbox",         # 5: no redraw
    "import sys\nsys.modules['ipywidgets'] = None  # as if ipywidgets were not installed", # 6
    "plotting.latent_explorer(decode, latent_dim=2)",                                     # 7: static grid
]


@pytest.fixture(scope="module")
def scratch(browser, lab, workdir):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in SCRATCH])
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nbformat.write(nb, workdir / "notebooks" / "scratch" / "checks.ipynb")
    before = lab.kernel_ids()
    tab = Tab(browser)
    try:
        cell_list = run_notebook(tab, lab, "scratch/checks.ipynb")
        ui.screenshot_notebook(tab.page, OUT / "checks" / "checks.png")
        yield tab, cell_list
    finally:
        tab.context.close()
        lab.shutdown_kernels(keep=before, wait=False)


def test_explorer_shows_the_static_grid_without_ipywidgets(scratch):
    tab, cell_list = scratch
    fallback = cell_list[7]
    assert not fallback.errors and "showing a static grid instead" in fallback.text, fallback
    assert fallback.loaded_images == 1 and fallback.widgets == 0, fallback
    assert tab.outside() == []


def test_the_checks_fail_on_a_broken_figure_and_a_broken_explorer(scratch):
    """The checks of the notebook tests, on cells broken on purpose next to working ones."""
    tab, cell_list = scratch
    found = ui.problems(cell_list)
    assert len(found) == 2, found
    assert found[0].startswith(cell_list[4].label()) and "a figure cell without an image" in found[0], found
    assert found[1].startswith(cell_list[7].label()) and "shows no widget" in found[1], found
    check_explorer(tab.page, cell_list[2], OUT / "checks" / "working-explorer")
    with pytest.raises(AssertionError, match="did not change the decoded image"):
        # the working explorer above redrew within seconds: 10 s is plenty here
        check_explorer(tab.page, cell_list[5], OUT / "checks" / "broken-explorer", redraw_s=10)


# --------------------------------------------------------------------------- Notebook 7

# The first notebook with figures. Notebook 7 renders notebooks, outputs and widgets with the same
# packages as JupyterLab, where every notebook runs; its own part is the page around them.
NOTEBOOK7_NAME = next((n for n in NAMES if shows_a_figure(n)), NAMES[0])


def test_notebook7_runs_a_notebook(notebook7, tab, request):
    if needs_mnist(NOTEBOOK7_NAME):
        request.getfixturevalue("mnist_root")
    try:
        cell_list = run_notebook(tab, notebook7, f"solved/{NOTEBOOK7_NAME}.ipynb")
        shot = ui.screenshot_notebook(tab.page, OUT / "notebook7" / f"{NOTEBOOK7_NAME}.png")
        assert tab.page.locator("#jp-top-panel, #top-panel").count() > 0, "not Notebook 7's page"
        assert ui.problems(cell_list) == [], f"{NOTEBOOK7_NAME} in Notebook 7 (screenshot {shot})"
        for cell in (c for c in cell_list if c.is_explorer):
            check_explorer(tab.page, cell, OUT / "notebook7" / f"{NOTEBOOK7_NAME}-explorer")
        assert tab.outside(allowed=[COLAB_BADGE]) == []
    finally:
        notebook7.shutdown_kernels()


# --------------------------------------------------------------------------- labkit lab's report


def test_lab_report_loads_every_image_offline(tab, mnist_root, tmp_path):
    from labkit import cli

    out = tmp_path / "results"
    assert cli.main(["lab", "--epochs", "1", "--train-size", "3000", "--iw-samples", "5", "--device", "cpu",
                     "--no-progress", "--data-dir", mnist_root, "--out", str(out)]) == 0
    page = tab.page
    page.goto((out / "report.html").as_uri())
    page.wait_for_load_state("load")
    images = page.evaluate("() => [...document.images].map(i => ({src: i.src.slice(0, 40), ok: i.complete && i.naturalWidth > 0}))")
    OUT.joinpath("report").mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUT / "report" / "report.png"), full_page=True)
    figures = len(list(out.glob("*.png")))
    assert figures >= 8 and len(images) == figures, f"{len(images)} images in the page, {figures} figures written"
    assert all(i["ok"] for i in images), [i for i in images if not i["ok"]]
    assert tab.outside() == [], "the report asked for addresses outside this machine"
