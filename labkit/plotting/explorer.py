"""The latent explorer: sliders for z and the image decoded from it, live in Jupyter (ipywidgets)."""
from __future__ import annotations

import functools
import io
from typing import Callable

import matplotlib
import numpy as np
import torch

from labkit.plotting._common import _STYLE, SIDE, _as_images, _model_device_dtype
from labkit.plotting.latent import plot_latent_grid

__all__ = ["latent_explorer"]

_SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def _kernel_running() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


def latent_explorer(decode_fn: Callable, latent_dim: int = 2, extent: float = 3.0, *, device=None,
                    step: float = 0.05, scale: int = 7):
    """Sliders for z_1 .. z_M and the image decoded from z (1, M), updated live in Jupyter.

    ``decode_fn(z: (1, latent_dim)) -> (1, 784)``, called under ``torch.no_grad``. The
    image is shown ``scale`` times enlarged; for latent_dim == 2 a small panel shows
    where z lies (circles at 1 and 2 standard deviations of the prior). One update
    renders two small PNGs (no new figures, nothing left open). From the keyboard: Tab to a
    slider's handle, then the arrow keys move it one ``step``, Page Up / Page Down five, Home / End
    to its ends; each image says what it shows in its tooltip (its alt text). Returns the ipywidgets
    widget (display it as the last expression of a cell); without ipywidgets, or outside
    a running Jupyter kernel, prints a one-line note and returns the static
    :func:`plot_latent_grid` figure instead.
    """
    latent_dim = int(latent_dim)
    if latent_dim < 1:
        raise ValueError(f"latent_dim must be positive, got {latent_dim}")
    try:
        import ipywidgets as widgets
    except ImportError:
        widgets = None
    if widgets is None or not _kernel_running():
        why = "" if widgets is None else " (no running Jupyter kernel)"
        print(f"ipywidgets is not available{why}; showing a static grid instead")
        return plot_latent_grid(decode_fn, extent=extent, latent_dim=max(latent_dim, 2), device=device)
    model_device, dtype = _model_device_dtype(decode_fn)
    return _Explorer(widgets, decode_fn, latent_dim, extent, device or model_device, dtype, step, scale).box


@functools.cache
def _described_image(widgets):
    """ipywidgets' Image with an (empty) ``description``: an Image is an <img>, and its tooltip (the title
    attribute) is its text alternative, but ipywidgets 8's views read the tooltip only beside a description,
    which Image lacks (the view then fails to render: "Cannot read properties of undefined")."""
    from traitlets import Unicode

    return type("DescribedImage", (widgets.Image,), {"description": Unicode("").tag(sync=True)})


class _Explorer:
    """The widgets of :func:`latent_explorer` and their one callback, ``render``."""

    def __init__(self, widgets, decode_fn, latent_dim, extent, device, dtype, step, scale):
        self.decode_fn, self.device, self.dtype = decode_fn, device, dtype
        self.panel = _LatentPosition(extent) if latent_dim == 2 else None
        size = f"{SIDE * scale}px"
        image = _described_image(widgets)
        self.views = [image(format="png", width=size, height=size) for _ in range(2 if self.panel else 1)]
        self.sliders = [widgets.FloatSlider(value=0.0, min=-extent, max=extent, step=step,
                                            description="z" + str(i + 1).translate(_SUBSCRIPTS),
                                            continuous_update=True, readout_format=".2f",
                                            layout=widgets.Layout(width="300px"))
                        for i in range(latent_dim)]
        reset = widgets.Button(description="z = 0", tooltip="set every z_i to 0", layout=widgets.Layout(width="80px"))
        self.block = np.ones((scale, scale), dtype=np.float32)
        for s in self.sliders:
            s.observe(self.render, names="value")
        reset.on_click(self.zero)
        self.render()
        self.box = widgets.HBox([widgets.VBox([*self.sliders, reset]), *self.views],
                                layout=widgets.Layout(align_items="center", grid_gap="12px"))
        self.box.render = self.render  # redraw by hand, e.g. after changing the model

    def render(self, _change=None) -> None:
        from matplotlib.image import imsave

        values = [s.value for s in self.sliders]
        z = torch.tensor([values], dtype=self.dtype, device=self.device)
        with torch.no_grad():
            x = self.decode_fn(z)
        img = _as_images(x, f"decode_fn output for z of shape {tuple(z.shape)}")[0]
        buf = io.BytesIO()
        imsave(buf, np.kron(np.nan_to_num(img), self.block), cmap="gray", vmin=0.0, vmax=1.0, format="png")
        self.views[0].value = buf.getvalue()
        z_text = "z = (" + ", ".join(f"{v:.2f}" for v in values) + ")"
        self.views[0].tooltip = f"Image decoded from {z_text}"
        if self.panel is not None:
            self.views[1].value = self.panel.png(values[0], values[1])
            self.views[1].tooltip = (f"Where {z_text} lies in the latent plane, z1 and z2 from {-self.panel.extent:g} "
                                     f"to {self.panel.extent:g}; circles at 1 and 2 standard deviations of the prior")

    def zero(self, _button) -> None:
        for s in self.sliders:
            s.unobserve(self.render, names="value")
            s.value = 0.0
            s.observe(self.render, names="value")
        self.render()


class _LatentPosition:
    """A small persistent figure (not in pyplot) showing a point z in the latent plane."""

    def __init__(self, extent: float, inches: float = 1.96, dpi: int = 100):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.patches import Circle

        with matplotlib.rc_context(_STYLE):
            self.fig = Figure(figsize=(inches, inches), dpi=dpi)
            FigureCanvasAgg(self.fig)
            ax = self.fig.add_axes((0.2, 0.18, 0.76, 0.76))
            for r in (1.0, 2.0):
                ax.add_patch(Circle((0, 0), r, fill=False, color="0.8", lw=0.8))
            ax.axhline(0, color="0.9", lw=0.8, zorder=0)
            ax.axvline(0, color="0.9", lw=0.8, zorder=0)
            (self.point,) = ax.plot([0.0], [0.0], "o", color="#d62728", markersize=6)
            ax.set_xlim(-extent, extent)
            ax.set_ylim(-extent, extent)
            ax.set_xlabel("$z_1$", labelpad=0)
            ax.set_ylabel("$z_2$", labelpad=0)
            ax.tick_params(labelsize=7, length=2, pad=1)
        self.dpi, self.extent = dpi, extent

    def png(self, z1: float, z2: float) -> bytes:
        self.point.set_data([z1], [z2])
        buf = io.BytesIO()
        self.fig.savefig(buf, format="png", dpi=self.dpi)
        return buf.getvalue()
