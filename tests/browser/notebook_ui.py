"""What a student does in a notebook page, and what the tests read back from it.

The tests drive the page the way a student does: the *Run* menu's *Run All Cells*, Shift+Enter on
one cell after another, dragging a slider with the mouse. They read back what the page shows (the
prompts, the images and widgets in each output area) and, to name an error precisely, each cell's
outputs from the page's own notebook model (``window.jupyterapp``, which the server exposes with
``--expose-app-in-browser``). The same code serves JupyterLab 4 and Notebook 7, which share the
notebook widgets.
"""
from __future__ import annotations

import ast
import io
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from labkit import plotting

FIGURE_CALLS = {f"plotting.{name}" for name in plotting.__all__ if name.startswith(("plot_", "show_"))} | {
    "plt.subplots", "plt.figure"}
EXPLORER_CALL = "plotting.latent_explorer"

_CELLS_JS = """() => {
  // an image's look in brief: its size and a 24 x 24 grey thumbnail
  const look = img => {
    const canvas = document.createElement('canvas');
    canvas.width = canvas.height = 24;
    const g = canvas.getContext('2d');
    g.drawImage(img, 0, 0, 24, 24);
    return {w: img.naturalWidth, h: img.naturalHeight, px: g.getImageData(0, 0, 24, 24).data};
  };
  const alike = (a, b) => a.w === b.w && a.h === b.h
    && a.px.reduce((sum, v, i) => sum + Math.abs(v - b.px[i]), 0) / a.px.length < 2;
  const panel = window.jupyterapp.shell.currentWidget;
  return panel.content.widgets.map((cell, index) => {
    const outputs = cell.model.type === 'code' ? cell.model.outputs.toJSON() : [];
    const area = cell.node.querySelector('.jp-OutputArea');
    const imgs = area ? [...area.querySelectorAll('.jp-OutputArea-output img')] : [];
    const prompt = cell.node.querySelector('.jp-InputPrompt');
    return {
      index, type: cell.model.type, source: cell.model.sharedModel.getSource(),
      prompt: prompt ? prompt.textContent.trim() : '',
      errors: outputs.filter(o => o.output_type === 'error')
                     .map(o => ({ename: o.ename, evalue: o.evalue, traceback: o.traceback.join('\\n')})),
      images: imgs.length,
      loaded_images: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
      repeated_images: (() => {
        const looks = imgs.filter(i => i.complete && i.naturalWidth > 0).map(look);
        return looks.filter((a, i) => looks.slice(0, i).some(b => alike(a, b))).length;
      })(),
      widgets: area ? area.querySelectorAll('.jupyter-widgets').length : 0,
      sliders: area ? area.querySelectorAll('.widget-slider').length : 0,
      text: area ? area.innerText.slice(0, 2000) : '',
    };
  });
}"""

_STATUS_JS = """() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!panel || !panel.sessionContext || !panel.content) return 'no notebook';
  return panel.sessionContext.kernelDisplayStatus;
}"""

_RUNNING_JS = """() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]
  .some(p => p.textContent.includes('*'))"""


@dataclass
class Cell:
    """One cell as the page shows it after running."""

    index: int
    type: str
    source: str
    prompt: str
    errors: list[dict]
    images: int
    loaded_images: int
    repeated_images: int  # images that look like an earlier image of the same cell
    widgets: int
    sliders: int
    text: str
    calls: set[str] = field(default_factory=set)

    @property
    def ran(self) -> bool:
        return self.prompt.startswith("[") and self.prompt[1:-2].strip().isdigit()

    @property
    def is_figure(self) -> bool:
        return bool(self.calls & FIGURE_CALLS)

    @property
    def is_explorer(self) -> bool:
        return EXPLORER_CALL in self.calls

    def label(self) -> str:
        first = self.source.strip().splitlines()[0][:70] if self.source.strip() else ""
        return f"cell {self.index} ({first!r})"


def calls_in(source: str) -> set[str]:
    """Dotted names called in a cell: ``plotting.show_images(...)`` gives ``"plotting.show_images"``."""
    try:
        tree = ast.parse("\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))))
    except SyntaxError:
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
            names.add(f"{node.func.value.id}.{node.func.attr}")
    return names


# --------------------------------------------------------------------------- opening and running


def open_notebook(page, url: str, timeout_s: float = 120) -> None:
    """Open a notebook page and wait until its kernel is idle."""
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=timeout_s * 1000)
    wait_for_kernel(page, timeout_s)


def wait_for_kernel(page, timeout_s: float) -> None:
    page.wait_for_function(f"() => ({_STATUS_JS})() === 'idle'", timeout=timeout_s * 1000, polling=250)


def run_all_cells(page) -> None:
    """Run > Run All Cells, through the menu bar."""
    page.locator(".lm-MenuBar-item", has=page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$"))).click()
    page.locator(".lm-Menu-item", has=page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$"))).click()


def run_cells_one_by_one(page, count: int) -> None:
    """Select the first cell and press Shift+Enter ``count`` times (markdown cells count too)."""
    page.locator(".jp-Notebook .jp-Cell").first.locator(".jp-InputPrompt, .jp-Cell-inputCollapser").first.click()
    page.keyboard.press("Escape")  # command mode
    for _ in range(count):
        page.keyboard.press("Shift+Enter")


def wait_until_done(page, timeout_s: float) -> float:
    """Wait until no cell is queued or running and the kernel is idle; return the seconds waited."""
    start = time.monotonic()
    page.wait_for_function(
        f"() => {{ const anyRan = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]"
        f"  .some(p => /\\[[0-9*]+\\]/.test(p.textContent));"
        f"  return anyRan && !({_RUNNING_JS})() && ({_STATUS_JS})() === 'idle'; }}",
        timeout=timeout_s * 1000, polling=500)
    # the outputs' images are decoded a moment after the kernel reports idle
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-OutputArea-output img')].every(i => i.complete)",
        timeout=30_000, polling=250)
    return time.monotonic() - start


def cells(page) -> list[Cell]:
    out = []
    for raw in page.evaluate(_CELLS_JS):
        cell = Cell(**raw)
        if cell.type == "code":
            cell.calls = calls_in(cell.source)
        out.append(cell)
    return out


# --------------------------------------------------------------------------- what is wrong in a page


def problems(cell_list: list[Cell]) -> list[str]:
    """What a student would find wrong: a cell with an error, a figure cell without a loaded
    image, an explorer cell without its sliders and image, a code cell that did not run."""
    found = []
    for cell in cell_list:
        if cell.type != "code":
            continue
        for e in cell.errors:
            found.append(f"{cell.label()}: {e['ename']}: {e['evalue']}")
        if not cell.ran:
            found.append(f"{cell.label()}: did not run (prompt {cell.prompt!r})")
        elif cell.is_figure and not cell.loaded_images:
            found.append(f"{cell.label()}: a figure cell without an image ({cell.images} img, text {cell.text[:200]!r})")
        if cell.is_explorer and not (cell.widgets and cell.sliders and cell.loaded_images):
            found.append(f"{cell.label()}: the latent explorer shows no widget "
                         f"({cell.widgets} widgets, {cell.sliders} sliders, {cell.loaded_images} images; "
                         f"text {cell.text[:200]!r})")
    return found


# --------------------------------------------------------------------------- screenshots and the explorer


def screenshot_notebook(page, path: Path) -> Path:
    """The whole notebook in one picture: the notebook's scroll area is photographed one screenful
    at a time, from the top, and the pieces stacked."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    scroller = "(document.querySelector('.jp-WindowedPanel-outer') || document.querySelector('.jp-Notebook'))"
    box = page.evaluate(f"""() => {{ const s = {scroller}; const r = s.getBoundingClientRect();
        const last = [...document.querySelectorAll('.jp-Notebook .jp-Cell')].pop();
        const end = last ? last.getBoundingClientRect().bottom - r.top + s.scrollTop + 16 : s.scrollHeight;
        return {{x: r.x, y: r.y, width: s.clientWidth, height: s.clientHeight, total: Math.min(s.scrollHeight, end),
                 was: s.scrollTop}}; }}""")
    pieces, top = [], 0
    while top < box["total"]:
        shown = page.evaluate(f"(t) => {{ const s = {scroller}; s.scrollTop = t; return s.scrollTop; }}", top)
        page.wait_for_timeout(150)
        clip = {k: box[k] for k in ("x", "y", "width", "height")}
        pieces.append((shown, Image.open(io.BytesIO(page.screenshot(clip=clip)))))
        top += box["height"]
    page.evaluate(f"(t) => {{ {scroller}.scrollTop = t; }}", box["was"])
    sheet = Image.new("RGB", (pieces[0][1].width, int(box["total"])), "white")
    for shown, im in pieces:
        sheet.paste(im, (0, shown))  # the last piece may reach past the notebook's end: cut there
    sheet.save(path, optimize=True)
    return path


def explorer_locator(page, cell_index: int):
    return page.locator(".jp-Notebook .jp-Cell").nth(cell_index).locator(".jp-OutputArea-output")


def pixels(png: bytes):
    from PIL import Image
    import numpy as np

    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)


def image_difference(a: bytes, b: bytes) -> float:
    """Mean absolute difference of two screenshots' grey levels (0..255); inf when their sizes differ."""
    pa, pb = pixels(a), pixels(b)
    return float("inf") if pa.shape != pb.shape else float(abs(pa - pb).mean())


def drag_slider(page, cell_index: int, slider: int, fraction: float, out_dir: Path | None = None,
                redraw_s: float = 30, timeout_s: float = 60) -> dict:
    """Drag slider ``slider`` of the explorer in cell ``cell_index`` by ``fraction`` of its track with the
    mouse; screenshot the decoded image (the explorer's first image) before and after. Waits up to
    ``redraw_s`` for the image to be replaced, then for the kernel to be idle.

    Returns {"before", "after": PNG bytes, "readout_before", "readout_after": str, "difference": float,
    "src_changed": bool}."""
    output = explorer_locator(page, cell_index)
    image = output.locator(".widget-image").first
    track = output.locator(".widget-slider .noUi-target").nth(slider)
    handle = output.locator(".widget-slider .noUi-handle").nth(slider)
    readout = output.locator(".widget-readout").nth(slider)
    image.scroll_into_view_if_needed()
    before = image.screenshot()
    readout_before = readout.inner_text()
    src_before = image.get_attribute("src")
    box, track_box = handle.bounding_box(), track.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + fraction * track_box["width"], y, steps=8)
    page.mouse.up()
    deadline = time.monotonic() + redraw_s
    src_changed = False
    while time.monotonic() < deadline:
        src_changed = image.get_attribute("src") != src_before
        if src_changed and readout.inner_text() != readout_before:
            break
        page.wait_for_timeout(200)
    wait_for_kernel(page, timeout_s)
    page.wait_for_timeout(300)
    after = image.screenshot()
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "explorer-before.png").write_bytes(before)
        (out_dir / "explorer-after.png").write_bytes(after)
        output.screenshot(path=str(out_dir / "explorer-widget.png"))
    return {"before": before, "after": after, "readout_before": readout_before, "readout_after": readout.inner_text(),
            "difference": image_difference(before, after), "src_changed": src_changed}
