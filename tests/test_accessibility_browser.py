"""Accessibility in the browser: axe-core over the pages students and instructors open, alt text on
the figures, and the latent explorer driven from the keyboard.

- ``report.html`` of a small ``labkit lab`` run: no serious or critical axe violation (none at all
  is what it has), every image with its description as alt text, the skip link first in the tab order;
- the notebooks in JupyterLab: a scratch notebook that calls every figure function and the
  explorer on toy data, and every real notebook that draws figures (``REAL``) solved, each run
  from the menu and scanned. A serious or critical violation inside an output area (what labkit's figures and
  widgets put on the page) fails; JupyterLab's own (its toolbar, side panels, prompts) are listed
  in the test's report (``record_property`` and printed), not failed. Every image in an output has alt text;
- the explorer from the keyboard: Tab reaches each slider's handle, the arrow keys move it, the
  decoded image is redrawn and the handle shows that it has the focus.

Run alone: ``LABKIT_DATA=... .venv/bin/python -m pytest tests/test_accessibility_browser.py -s``
(``-s`` prints the scan counts per page). Screenshots go to $LABKIT_BROWSER_OUT/accessibility.
"""
from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

from browser import axe, chromium, servers, workfolder
from browser import notebook_ui as ui

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(os.environ.get("LABKIT_BROWSER_OUT") or ROOT / "build" / "browser-tests") / "accessibility"
KERNEL_ENV = {"LABKIT_GRADING": "1", "OMP_NUM_THREADS": "1"}
VIEWPORT = {"width": 1100, "height": 2400}
RUN_TIMEOUT_S = 600
OUTPUTS = ".jp-OutputArea-output"  # where a cell's outputs are drawn: labkit's figures and widgets
# The real notebooks that draw figures, solved (the others have none to describe).
REAL = [p.stem for p in workfolder.student_notebooks(ROOT / "notebooks") if "plotting." in p.read_text(encoding="utf-8")]

# Every figure function on toy data, then the explorer: (source, what its alt text must say).
TOY = ("import torch\nfrom labkit import plotting\n\n"
       "W = torch.linspace(-2.0, 2.0, 2 * 784).reshape(2, 784)\n"
       "def decode(z):  # a toy decoder: (K, 2) -> (K, 784)\n    return torch.sigmoid(z.float() @ W)\n\n"
       "g = torch.Generator().manual_seed(0)\n"
       "Z, y = torch.randn(300, 2, generator=g), torch.arange(300) % 10\nX = decode(torch.randn(12, 2, generator=g))")
FIGURE_CELLS = [
    ("plotting.show_images(X, labels=y[:12])", "A grid of 12 images"),
    ("plotting.plot_encodings(Z, y, Z, y)", "Scatter plot of the 2-D encodings"),
    ("plotting.plot_mean_encodings(Z, y)", "The mean encoding of each digit"),
    ("plotting.plot_reconstructions(X, {'toy': X * 0.8}, n=6)", "6 images in the top row"),
    ("plotting.plot_samples(lambda n, t: decode(t * torch.randn(n, 2)))", "Samples from the model"),
    ("plotting.plot_training_curves({'toy': {'train_loss': [3.0, 2.0], 'test_loss': [3.2, 2.2]}})", "Line chart"),
    ("plotting.plot_latent_grid(decode, n=8)", "Images decoded from a 8 by 8 grid"),
    ("plotting.plot_errors_per_digit(torch.arange(10.0) + 1)", "Bar chart"),
]
EXPLORER = "plotting.latent_explorer(decode, latent_dim=2)"

_IMAGES_JS = f"""() => [...document.querySelectorAll('.jp-Notebook .jp-Cell')].map(cell =>
  [...cell.querySelectorAll('{OUTPUTS} img')].map(i => i.getAttribute('alt') || i.getAttribute('title') || ''))"""


@pytest.fixture(scope="module")
def browser():
    yield from chromium.launched_or_skip()


@pytest.fixture(scope="module")
def lab(browser, tmp_path_factory):
    work = tmp_path_factory.mktemp("a11y")
    workfolder.build(work / "notebooks", ROOT / "notebooks", ROOT / "solutions")
    cells = [TOY, *(source for source, _ in FIGURE_CELLS), EXPLORER]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    (work / "notebooks" / "scratch").mkdir()
    nbformat.write(nb, work / "notebooks" / "scratch" / "figures.ipynb")
    server = servers.JupyterServer("lab", work / "notebooks", work / "home", env=KERNEL_ENV)
    yield server
    server.stop()


class Ran:
    """A notebook run in its own page: the page, its cells, the alt text of each cell's images."""

    def __init__(self, browser, lab, path: str):
        self.context = browser.new_context(viewport=VIEWPORT)
        self.offline = chromium.Offline(self.context)
        self.page = self.context.new_page()
        ui.open_notebook(self.page, lab.notebook_url(path))
        ui.run_all_cells(self.page)
        ui.wait_until_done(self.page, RUN_TIMEOUT_S)
        self.cells = ui.cells(self.page)
        self.alts = self.page.evaluate(_IMAGES_JS)
        ui.screenshot_notebook(self.page, OUT / f"{Path(path).stem}.png")


@pytest.fixture(scope="module")
def scratch(browser, lab):
    ran = Ran(browser, lab, "scratch/figures.ipynb")
    yield ran
    ran.context.close()


# What the widget library itself puts in an output and labkit cannot change, listed, not failed:
# ipywidgets 8 draws a slider with noUiSlider, whose handle (role="slider", focusable, moved by
# the arrow keys) gets no accessible name: the description ("z₁") is a <label> beside it, not tied to it.
WIDGET_LIBRARY = {("aria-input-field-name", ".noUi-handle")}


def _from_widget_library(violation: dict) -> bool:
    return any(violation["id"] == rule and all(where in " ".join(map(str, n["target"])) for n in violation["nodes"])
               for rule, where in WIDGET_LIBRARY)


def report_scan(page, name: str, record_property) -> list[dict]:
    """Scan the page; record every violation, JupyterLab's, the widget library's and labkit's outputs';
    return the blocking ones of labkit's outputs."""
    result = axe.scan(page)
    inside, outside = axe.partition(page, result, OUTPUTS)
    library = [v for v in inside if _from_widget_library(v)]
    inside = [v for v in inside if not _from_widget_library(v)]
    lines = {"outputs": result.lines(inside), "ipywidgets": result.lines(library), "jupyterlab": result.lines(outside)}
    record_property(f"axe {name}", lines)
    print(f"\naxe on {name}: {len(result.violations)} violations ({len(result.blocking)} serious or critical); "
          f"labkit's outputs {len(inside)}, ipywidgets' {len(library)}, JupyterLab's own {len(outside)}")
    for where, found in lines.items():
        for line in found:
            print(f"  [{where}] {line}")
    return [v for v in inside if v.get("impact") in axe.BLOCKING]


# --------------------------------------------------------------------------- the notebooks in JupyterLab


def test_scratch_notebook_runs(scratch):
    assert ui.problems(scratch.cells) == [], "the scratch notebook does not run cleanly"


def test_every_figure_in_jupyterlab_has_its_description_as_alt_text(scratch):
    for index, (source, says) in enumerate(FIGURE_CELLS, start=1):
        alts = scratch.alts[index]
        assert len(alts) == 1, f"cell {index} ({source}): {len(alts)} images"
        assert alts[0].startswith(says), f"cell {index} ({source}): alt text {alts[0]!r}"
    explorer = scratch.alts[len(FIGURE_CELLS) + 1]
    assert explorer[0] == "Image decoded from z = (0.00, 0.00)" and "latent plane" in explorer[1], explorer


def test_axe_finds_nothing_serious_in_labkits_outputs(scratch, record_property):
    blocking = report_scan(scratch.page, "scratch notebook in JupyterLab", record_property)
    assert not blocking, "\n".join(axe.Scan(scratch.page.url, blocking).lines())


@pytest.mark.parametrize("name", REAL)
def test_the_real_notebooks_scanned_in_jupyterlab(name, browser, lab, mnist_root, record_property):
    before = lab.kernel_ids()  # the scratch notebook's kernel stays: the explorer test needs it
    real = Ran(browser, lab, f"solved/{name}.ipynb")
    try:
        assert ui.problems(real.cells) == [], f"{name} does not run cleanly"
        figure_cells = [c for c in real.cells if c.is_figure or c.is_explorer]
        assert figure_cells and all(real.alts[c.index] and all(real.alts[c.index]) for c in figure_cells), (
            [(c.label(), real.alts[c.index]) for c in figure_cells])
        blocking = report_scan(real.page, f"{name} in JupyterLab", record_property)
        assert not blocking, "\n".join(axe.Scan(real.page.url, blocking).lines())
    finally:
        real.context.close()
        lab.shutdown_kernels(keep=before, wait=False)


# --------------------------------------------------------------------------- the explorer from the keyboard

_FOCUS_JS = """() => { const a = document.activeElement;
  const handles = [...document.querySelectorAll('.jp-Notebook .widget-slider .noUi-handle')];
  const look = el => { const s = getComputedStyle(el);
    return [s.outlineStyle, s.outlineWidth, s.boxShadow, s.backgroundColor, s.borderColor].join(' '); };
  return {slider: handles.indexOf(a), looks: handles.map(look)}; }"""


def test_the_explorer_works_from_the_keyboard(scratch):
    page = scratch.page
    output = ui.explorer_locator(page, len(FIGURE_CELLS) + 1)
    image = output.locator(".widget-image").first
    handles = output.locator(".widget-slider .noUi-handle")
    readouts = output.locator(".widget-readout")
    assert handles.count() == 2
    handles.nth(0).focus()
    assert page.evaluate(_FOCUS_JS)["slider"] == 0, "the first slider's handle takes no focus"
    for _ in range(4):  # Tab from z1's handle reaches z2's (past z1's readout)
        page.keyboard.press("Tab")
        if page.evaluate(_FOCUS_JS)["slider"] == 1:
            break
    focus = page.evaluate(_FOCUS_JS)
    assert focus["slider"] == 1, f"Tab from z1 did not reach z2's handle: {focus}"
    unfocused, focused = focus["looks"]  # z1's handle, which lost the focus, and z2's, which has it
    assert focused != unfocused, f"the focused handle looks like the other one: {focused}"
    src, alt = image.get_attribute("src"), image.get_attribute("title")
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    expected = "Image decoded from z = (0.00, 0.25)"  # five steps of 0.05
    page.wait_for_function("([el, t]) => el.getAttribute('title') === t", arg=[image.element_handle(), expected],
                           timeout=30_000)
    assert readouts.nth(1).inner_text().strip() == "0.25", readouts.nth(1).inner_text()
    assert image.get_attribute("src") != src and expected != alt
    for key, z2 in (("End", "3.00"), ("PageDown", "2.75")):  # to the end; then back five steps
        page.keyboard.press(key)
        page.wait_for_function("([el, t]) => el.getAttribute('title') === t",
                               arg=[image.element_handle(), f"Image decoded from z = (0.00, {z2})"], timeout=30_000)
    output.screenshot(path=str(OUT / "explorer-keyboard.png"))


# --------------------------------------------------------------------------- labkit lab's report


def test_report_html_passes_axe_and_works_from_the_keyboard(browser, mnist_root, tmp_path, record_property):
    from labkit import cli

    out = tmp_path / "results"
    assert cli.main(["lab", "--epochs", "1", "--train-size", "3000", "--iw-samples", "5", "--device", "cpu",
                     "--no-progress", "--data-dir", mnist_root, "--out", str(out)]) == 0
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    try:
        page = context.new_page()
        page.goto((out / "report.html").as_uri())
        page.wait_for_load_state("load")
        result = axe.assert_clean(page)
        record_property("axe report.html", result.lines())
        print(f"\naxe on report.html: {len(result.violations)} violations")
        assert result.violations == [], "\n".join(result.lines())
        alts = page.evaluate("() => [...document.images].map(i => i.alt)")
        assert len(alts) >= 8 and all(a.count(".") >= 2 for a in alts), alts  # a caption, then what it shows
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.activeElement.textContent") == "Skip to the report"
        assert page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle") != "none"
        page.keyboard.press("Enter")
        assert page.url.endswith("#main")
        OUT.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(OUT / "report.png"), full_page=True)
    finally:
        context.close()
