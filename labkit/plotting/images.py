"""Image grids: images, originals over their reconstructions, samples at several temperatures.

Every grid is a mosaic (one ``imshow`` per panel, thin white separators), so hundreds of
images are cheap; the grey scale is fixed to [0, 1] unless ``vmin=None, vmax=None``.
"""
from __future__ import annotations

import math
from typing import Callable, Mapping

import matplotlib
import numpy as np
import torch

from labkit.metrics import squared_errors
from labkit.plotting._common import (
    _STYLE, DIGIT_COLORS, SIDE, _as_digits, _as_images, _as_mapping, _default_ncol, _described, _draw_mosaic, _mosaic,
    _one_axes, _panels, _to_numpy,
)
from labkit.plotting.describe import number, numbers
from labkit.plotting.palette import text_color

__all__ = ["show_images", "plot_reconstructions", "plot_samples"]


@matplotlib.rc_context(_STYLE)
def show_images(images, nrow: int | None = None, labels=None, title: str | None = None, cmap: str = "gray",
                *, vmin: float | None = 0.0, vmax: float | None = 1.0, pad: int = 1, width: float | None = None,
                ax=None):
    """A grid of images (N, 784) or (N, 28, 28) in one axes.

    ``nrow`` is the number of images per row (as in torchvision's ``make_grid``;
    default: all of them up to 10, else about sqrt(N)). ``labels`` (N,): a small
    label in the corner of each image; digits 0-9 get their digit colour.
    The grid is one mosaic image (one ``imshow``, thin white separators), so
    hundreds of images are cheap. ``ax``: draw into these Axes (the title becomes
    the axes' title) instead of a new figure. Returns the Figure.
    """
    imgs = _as_images(images, "images")
    n = imgs.shape[0]
    ncol = _default_ncol(n) if nrow is None else int(nrow)
    if ncol < 1:
        raise ValueError(f"nrow (images per row) must be positive, got {nrow}")
    ncol = min(ncol, n)
    rows = math.ceil(n / ncol)
    tile = min(1.2, 7.0 / ncol, 9.0 / rows) if width is None else width / ncol
    fig, ax, own = _one_axes(ax, (max(ncol * tile, 1.5), rows * tile + (0.35 if title else 0.0)))
    _draw_mosaic(ax, _mosaic(imgs, ncol, pad), cmap, vmin, vmax)
    shown = _label_tiles(ax, labels, n, ncol, pad, size=float(np.clip(tile * 72 * 0.28, 5, 10))) if labels is not None else []
    if title:
        fig.suptitle(title) if own else ax.set_title(title)
    labelled = f", labelled {numbers(shown)}" if shown else ""
    return _described(fig, ax, f"A grid of {n} images, {rows} row{'s' if rows > 1 else ''} of {ncol}, "
                               f"{_grey_scale(vmin, vmax)}{labelled}")


def _grey_scale(vmin, vmax) -> str:
    if vmin is None or vmax is None:
        return "grey levels scaled to the images"
    return f"grey levels from {number(vmin)} (black) to {number(vmax)} (white)"


def _label_tiles(ax, labels, n: int, ncol: int, pad: int, size: float) -> list[str]:
    """Write each label in the corner of its image; returns the labels as written."""
    text = list(_to_numpy(labels, "labels").reshape(-1)) if not isinstance(labels, (list, tuple)) else list(labels)
    if len(text) != n:
        raise ValueError(f"labels must have one entry per image ({n}), got {len(text)}")
    written = []
    for i, lab in enumerate(text):
        r, c = divmod(i, ncol)
        digit = _digit_or_none(lab)
        written.append(str(lab if digit is None else digit))
        ax.text(c * (SIDE + pad) + 1, r * (SIDE + pad) + 0.5, written[-1],
                color=text_color(DIGIT_COLORS[digit], "black") if digit is not None else "white",
                fontsize=size, fontweight="bold", ha="left", va="top")
    return written


def _digit_or_none(value) -> int | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return int(f) if f.is_integer() and 0 <= f <= 9 and not isinstance(value, str) else None


# --------------------------------------------------------------------------- reconstructions


def _reconstruction_rows(originals, reconstructions, n: int, labels):
    """(X (n, 28, 28), {name: (n, 28, 28)}, digits (n,) or None), checked."""
    X = _as_images(originals, "originals")
    n = min(int(n), X.shape[0])
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    single = not isinstance(reconstructions, Mapping)
    rows = {}
    for name, R in _as_mapping(reconstructions, "reconstruction").items():
        where = "reconstructions" if single else f"reconstructions {name!r}"
        R = _as_images(R, where)
        if R.shape[0] < n:
            raise ValueError(f"{where} has {R.shape[0]} images, but {n} originals are shown")
        rows[str(name)] = R[:n]
    digits = None
    if labels is not None:
        lab = _to_numpy(labels, "labels").reshape(-1)
        if len(lab) < n:
            raise ValueError(f"labels has {len(lab)} entries, but {n} originals are shown")
        digits = _as_digits(lab[:n], n, "labels")
    return X[:n], rows, digits


@matplotlib.rc_context(_STYLE)
def plot_reconstructions(originals, reconstructions, n: int = 10, labels=None, title: str | None = None, *,
                         show_errors: bool = False, vmin: float | None = 0.0, vmax: float | None = 1.0, ax=None):
    """Originals (N, 784) in the top row and, below, the reconstructions (N, 784) of each
    model: ``reconstructions`` is one tensor or a dict {model name: tensor}. The first
    ``n`` images are shown; ``labels`` (N,) puts the digit above each original;
    ``show_errors=True`` writes the squared error sum_j (x_j - x~_j)^2 under each
    reconstruction (``labkit.metrics.squared_errors``).

    One panel per row: ``ax`` may be a Figure or SubFigure to draw the rows in, or a
    sequence of 1 + (number of models) Axes, top to bottom. Returns the Figure.
    """
    X, rows, digits = _reconstruction_rows(originals, reconstructions, n, labels)
    n = X.shape[0]
    tile = min(0.75, 9.0 / n)
    label_width = 0.12 + 0.075 * max(len(name) for name in ["original", *rows])
    height = ((1 + len(rows)) * (tile + 0.06) + (0.2 * len(rows) if show_errors else 0.0)
              + (0.2 if digits is not None else 0.0) + (0.35 if title else 0.05) + (0.2 if show_errors else 0.0))
    fig, holder, axes = _panels(ax, (1 + len(rows), 1), (n * tile + label_width, height))
    centres = np.arange(n) * (SIDE + 1) + (SIDE - 1) / 2
    X_flat = torch.from_numpy(X.reshape(n, -1)).double()
    for ax, (name, imgs) in zip(axes, [("original", X), *rows.items()]):
        _draw_mosaic(ax, _mosaic(imgs, n), vmin=vmin, vmax=vmax)
        ax.set_ylabel(name, rotation=0, ha="right", va="center", labelpad=6)
        if show_errors and name != "original" or (name == "original" and digits is not None):
            ax.tick_params(length=0, pad=2, labelsize=8)
            if name == "original":
                ax.xaxis.tick_top()
                ax.set_xticks(centres, [str(d) for d in digits], fontweight="bold")
                for tick, d in zip(ax.get_xticklabels(), digits):
                    tick.set_color(text_color(DIGIT_COLORS[d], "white"))
            else:
                err = squared_errors(torch.from_numpy(imgs.reshape(n, -1)).double(), X_flat)
                ax.set_xticks(centres, [f"{e:.1f}" for e in err.tolist()], color="0.3")
    if show_errors:
        holder.supxlabel("under each reconstruction: squared error summed over the 784 pixels", fontsize=8, color="0.3")
    if title:
        holder.suptitle(title)
    return _described(fig, axes, _reconstructions_text(X, rows, digits, show_errors))


def _reconstructions_text(X, rows: dict, digits, show_errors: bool) -> str:
    n = X.shape[0]
    text = (f"{n} images in the top row (original) and, in the row below for each, their reconstructions by "
            f"{', '.join(rows)}")
    if digits is not None:
        text += f"; the digits are {numbers(digits.tolist())}"
    if show_errors:
        X_flat = torch.from_numpy(X.reshape(n, -1)).double()
        mean = [f"{name} {number(squared_errors(torch.from_numpy(R.reshape(n, -1)).double(), X_flat).mean().item())}"
                for name, R in rows.items()]
        text += f"; mean squared error: {', '.join(mean)}"
    return text


# --------------------------------------------------------------------------- samples


def _samples(sample_fn: Callable, temps: list[float], n: int, seed: int) -> list[np.ndarray]:
    """The images (n, 28, 28) that ``sample_fn(n, t)`` draws after ``torch.manual_seed(seed)``, per temperature."""
    grids = []
    for t in temps:
        with _forked_rng(), torch.no_grad():
            torch.manual_seed(seed)
            out = sample_fn(n, t)
        imgs = _as_images(out, f"sample_fn({n}, {t:g}) output")
        if imgs.shape[0] != n:
            raise ValueError(f"sample_fn({n}, {t:g}) returned {imgs.shape[0]} images, expected {n}")
        grids.append(imgs)
    return grids


@matplotlib.rc_context(_STYLE)
def plot_samples(sample_fn: Callable, temperatures=(0.5, 1.0, 1.5), n: int = 16, seed: int = 0,
                 title: str | None = None, *, vmin: float | None = 0.0, vmax: float | None = 1.0, ax=None):
    """Samples from a model at several temperatures, one grid per temperature.

    ``sample_fn(n, temperature) -> (n, 784)``, e.g. ``lambda n, t: vae.sample(n, temperature=t)``;
    it is called under ``torch.no_grad`` after ``torch.manual_seed(seed)``, so the figure
    is the same every time (pyTorch's global random state is restored afterwards).
    One panel per temperature: ``ax`` may be a Figure or SubFigure to draw the panels in,
    or a sequence of one Axes per temperature. Returns the Figure.
    """
    temps = [float(t) for t in (temperatures if np.ndim(temperatures) else [temperatures])]
    if not temps:
        raise ValueError("temperatures is empty")
    if int(n) < 1:
        raise ValueError(f"n must be positive, got {n}")
    n = int(n)
    grids = _samples(sample_fn, temps, n, seed)
    ncol = math.ceil(math.sqrt(n))
    rows = math.ceil(n / ncol)
    panel = min(2.9, 9.5 / len(temps))
    fig, holder, axes = _panels(ax, (1, len(temps)),
                                (panel * len(temps), (panel - 0.15) * rows / ncol + 0.35 + (0.3 if title else 0.0)))
    for ax, t, imgs in zip(axes, temps, grids):
        _draw_mosaic(ax, _mosaic(imgs, ncol), vmin=vmin, vmax=vmax)
        ax.set_title(f"T = {_fmt_temperature(t)}")
    if title:
        holder.suptitle(title)
    return _described(fig, axes, f"Samples from the model at temperature {', '.join(map(_fmt_temperature, temps))}: "
                                 f"one grid of {n} images per temperature, {_grey_scale(vmin, vmax)}")


def _fmt_temperature(t: float) -> str:
    return f"{t:.1f}" if round(t, 1) == t else f"{t:g}"


def _forked_rng():
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    return torch.random.fork_rng(devices=devices)
