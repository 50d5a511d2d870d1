"""The latent space: encodings as scatter plots coloured and shaped by digit, the mean encoding of
each digit, and the images decoded from a grid of latent points."""
from __future__ import annotations

from typing import Callable

import matplotlib
import numpy as np
import torch

from labkit.metrics import per_digit_mean
from labkit.plotting._common import (
    _STYLE, DIGIT_COLORS, DIGIT_MARKERS, SIDE, _as_digits, _as_images, _as_matrix, _described, _draw_mosaic,
    _model_device_dtype, _mosaic, _one_axes, _panels, _rng_subset,
)
from labkit.plotting.describe import number, numbers
from labkit.plotting.palette import marker_paths

__all__ = ["plot_encodings", "plot_mean_encodings", "plot_latent_grid", "latent_grid_points"]


def _digit_legend(fig, loc="outside right center"):
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker=m, linestyle="", markersize=7, markeredgewidth=0, color=c)
               for c, m in zip(DIGIT_COLORS, DIGIT_MARKERS)]
    return fig.legend(handles, [str(d) for d in range(10)], title="digit", loc=loc, handletextpad=0.2,
                      labelspacing=0.45, borderaxespad=0.2)


def _digit_colors(y: np.ndarray) -> np.ndarray:
    return np.asarray([matplotlib.colors.to_rgb(c) for c in DIGIT_COLORS])[y]


def _digit_scatter(ax, Z: np.ndarray, y: np.ndarray, size: float, alpha: float):
    """One scatter collection (one random drawing order) with each point in its digit's colour and marker."""
    points = ax.scatter(Z[:, 0], Z[:, 1], c=_digit_colors(y), s=size, alpha=alpha, linewidths=0, rasterized=True)
    points.set_paths(marker_paths(y))
    return points


def _encoding_panels(Z_train, y_train, Z_test, y_test):
    """[(name, Z (N, M), y (N,))] for the training and (optional) test panel, and M, checked."""
    Z = _as_matrix(Z_train, "Z_train")
    panels = [("training data", Z, _as_digits(y_train, Z.shape[0], "y_train"))]
    if Z_test is not None:
        Zt = _as_matrix(Z_test, "Z_test")
        panels.append(("test data", Zt, _as_digits(y_test, Zt.shape[0], "y_test")))
    elif y_test is not None:
        raise ValueError("y_test is given but Z_test is not")
    dims = {Z.shape[1] for _, Z, _ in panels}
    if len(dims) > 1:
        raise ValueError(f"Z_train and Z_test must have the same number of columns, got {sorted(dims)}")
    return panels, dims.pop()


@matplotlib.rc_context(_STYLE)
def plot_encodings(Z_train, y_train, Z_test=None, y_test=None, title: str | None = None, max_points: int | None = 10000,
                   seed: int = 0, *, s: float | None = None, alpha: float = 0.6, ax=None):
    """Encodings Z (N, M) as a 2-D scatter coloured by digit y (N,); training and test side
    by side (shared axes) when ``Z_test``, ``y_test`` are given.

    At most ``max_points`` points per panel, chosen at random with ``seed`` (the
    same points every call). With M > 2 the first two coordinates are plotted
    (the title says so). One panel per data set: ``ax`` may be a Figure or SubFigure to
    draw the panels in (it also gets the title and the digit legend), or a sequence of one
    Axes per data set (used as they are, not shared; the title and legend go to their
    figure). Returns the Figure.
    """
    panels, M = _encoding_panels(Z_train, y_train, Z_test, y_test)
    fig, holder, axes = _panels(ax, (1, len(panels)), (8.6, 4.3) if len(panels) == 2 else (5.0, 4.5),
                                sharex=True, sharey=True)
    for ax, (name, Z, y) in zip(axes, panels):
        idx = _rng_subset(Z.shape[0], max_points, seed)
        size = s if s is not None else (5.0 if len(idx) > 3000 else 12.0)
        _digit_scatter(ax, Z[idx], y[idx], size, alpha)
        shown = f"{len(idx):,} of {Z.shape[0]:,} images" if len(idx) < Z.shape[0] else f"{Z.shape[0]:,} images"
        ax.set_title(f"{name} ({shown})" if len(panels) == 2 else shown)
        ax.set_xlabel("$z_1$")
        ax.set_box_aspect(1)
    axes[0].set_ylabel("$z_2$")
    _digit_legend(holder)
    note = f"$z_1$ and $z_2$ of {M} latent dimensions" if M > 2 else ""
    if title or note:
        holder.suptitle(f"{title} ({note})" if title and note else (title or note))
    coords = "the first two coordinates of the encodings" if M > 2 else "the 2-D encodings"
    return _described(fig, axes, f"Scatter plot of {coords}, one point per image, each digit 0 to 9 in its own "
                                 f"colour and marker shape (legend: digit)")


@matplotlib.rc_context(_STYLE)
def plot_mean_encodings(Z, y, ax=None, title: str | None = None, *, background: bool = True,
                        max_points: int | None = 5000, seed: int = 0):
    """The mean encoding of each digit: the digit's character, in its colour, at the mean
    of the encodings Z (N, M) of that digit (first two coordinates; ``labkit.metrics.per_digit_mean``),
    over a faint scatter of the encodings (``background=False`` leaves it out). Draws into ``ax``
    when given (its figure then leaves pyplot's registry: end the cell with this call, or
    with the figure, to show it). Returns the Figure.
    """
    from matplotlib import patheffects

    Z = _as_matrix(Z, "Z")
    y = _as_digits(y, Z.shape[0], "y")
    means = per_digit_mean(torch.from_numpy(Z[:, :2]), torch.from_numpy(y)).numpy()
    fig, ax, _ = _one_axes(ax, (5.0, 4.6))
    if background:
        idx = _rng_subset(Z.shape[0], max_points, seed)
        _digit_scatter(ax, Z[idx], y[idx], 4.0, 0.12)
    # a white halo over the scatter, and a thin dark edge: the light colours of the palette keep a
    # 3:1 contrast against the white background (WCAG 1.4.11)
    outline = [patheffects.Stroke(linewidth=4, foreground="white"), patheffects.Stroke(linewidth=1.3, foreground="0.15"),
               patheffects.Normal()]
    for d in range(10):
        if np.all(np.isfinite(means[d])):
            ax.text(means[d, 0], means[d, 1], str(d), color=DIGIT_COLORS[d], fontsize=17, fontweight="bold",
                    ha="center", va="center", path_effects=outline, zorder=3)
    finite = means[np.all(np.isfinite(means), axis=1)]
    if len(finite):
        ax.update_datalim(finite)
        ax.margins(0.08)
        ax.autoscale_view()
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.set_title(title if title else "mean encoding of each digit")
    where = numbers([f"{d} at ({number(means[d, 0])}, {number(means[d, 1])})" for d in range(10)
                     if np.all(np.isfinite(means[d]))])
    return _described(fig, ax, f"The mean encoding of each digit, drawn as the digit's character: {where}"
                               + (", over a faint scatter of the encodings" if background else ""))


# --------------------------------------------------------------------------- latent grid


def _grid_values(n: int, extent: float, quantiles: bool) -> torch.Tensor:
    if quantiles:
        p = (torch.arange(n, dtype=torch.float64) + 0.5) / n
        return torch.distributions.Normal(0.0, 1.0).icdf(p)
    return torch.linspace(-extent, extent, n, dtype=torch.float64) if n > 1 else torch.zeros(1, dtype=torch.float64)


def latent_grid_points(n: int = 15, extent: float = 3.0, latent_dim: int = 2, quantiles: bool = False) -> torch.Tensor:
    """The points z (n*n, latent_dim) that :func:`plot_latent_grid` decodes, in row-major order
    of the picture: row r (top to bottom) has z_2 = v[n-1-r], column c has z_1 = v[c], where
    v = linspace(-extent, extent, n), or the standard normal quantiles at (i + 1/2)/n with
    ``quantiles=True``; the other coordinates are 0."""
    v = _grid_values(n, extent, quantiles)
    z = torch.zeros(n * n, latent_dim, dtype=torch.float64)
    z[:, 0] = v.repeat(n)
    z[:, 1] = v.flip(0).repeat_interleave(n)
    return z


def _decoded_grid(decode_fn: Callable, n: int, extent: float, latent_dim: int, quantiles: bool, device) -> np.ndarray:
    """The n*n images (n*n, 28, 28) that ``decode_fn`` gives for :func:`latent_grid_points`, checked."""
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    if latent_dim < 2:
        raise ValueError(f"latent_dim must be at least 2 for a 2-D grid, got {latent_dim}")
    if not quantiles and not extent > 0:
        raise ValueError(f"extent must be positive, got {extent}")
    model_device, dtype = _model_device_dtype(decode_fn)
    z = latent_grid_points(n, extent, latent_dim, quantiles).to(device=device or model_device, dtype=dtype)
    with torch.no_grad():
        out = decode_fn(z)
    imgs = _as_images(out, f"decode_fn output for z of shape {tuple(z.shape)}")
    if imgs.shape[0] != n * n:
        raise ValueError(f"decode_fn returned {imgs.shape[0]} images for {n * n} latent points")
    return imgs


def _grid_axes(ax, mosaic: np.ndarray, v: np.ndarray, n: int, quantiles: bool, vmin, vmax) -> None:
    """Draw the mosaic with z_1, z_2 ticks: at chosen image centres (quantiles, or one image), else in z units."""
    from matplotlib.ticker import MaxNLocator

    if quantiles or n == 1:
        _draw_mosaic(ax, mosaic, vmin=vmin, vmax=vmax)
        q = round((n - 1) / 4)
        ticks = sorted({0, q, n - 1 - q, n - 1} | ({(n - 1) // 2} if n % 2 else set()))
        centres = np.asarray(ticks) * SIDE + (SIDE - 1) / 2
        ax.set_xticks(centres, [f"{v[i]:.2g}" for i in ticks])
        ax.set_yticks(centres, [f"{v[n - 1 - i]:.2g}" for i in ticks])
    else:
        half = (v[1] - v[0]) / 2
        lo, hi = v[0] - half, v[-1] + half
        _draw_mosaic(ax, mosaic, vmin=vmin, vmax=vmax, extent=(lo, hi, lo, hi))
        ax.xaxis.set_major_locator(MaxNLocator(steps=[1, 2, 5, 10]))
        ax.yaxis.set_major_locator(MaxNLocator(steps=[1, 2, 5, 10]))
    ax.tick_params(length=3, labelsize=9)
    for spine in ("left", "bottom"):
        ax.spines[spine].set_visible(True)
        ax.spines[spine].set_color("0.6")
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")


@matplotlib.rc_context(_STYLE)
def plot_latent_grid(decode_fn: Callable, n: int = 15, extent: float = 3.0, latent_dim: int = 2,
                     title: str | None = None, *, quantiles: bool = False, device=None,
                     vmin: float | None = 0.0, vmax: float | None = 1.0, ax=None):
    """Images decoded from an n x n grid of latent points, as one picture with z_1 to the
    right and z_2 up.

    ``decode_fn(z: (K, latent_dim)) -> (K, 784)`` is called once, under ``torch.no_grad``,
    with K = n*n (see :func:`latent_grid_points`): z_1, z_2 on an even grid over
    [-extent, extent], or at the standard normal quantiles (i + 1/2)/n with
    ``quantiles=True`` (each image then stands for an equal share of the prior);
    other coordinates are 0. ``z`` is on the device of the model behind ``decode_fn``
    when it is a bound method (``vae.decode``), else on ``device`` (default CPU).
    ``ax``: draw into these Axes (the title becomes the axes' title). Returns the Figure.
    """
    n, latent_dim = int(n), int(latent_dim)
    imgs = _decoded_grid(decode_fn, n, extent, latent_dim, quantiles, device)
    fig, ax, own = _one_axes(ax, (6.2, 6.0 + (0.3 if title else 0.0)))
    _grid_axes(ax, _mosaic(imgs, n, pad=0), _grid_values(n, extent, quantiles).numpy(), n, quantiles, vmin, vmax)
    rest = "" if latent_dim == 2 else "$z_3 = 0$" if latent_dim == 3 else f"$z_3 = \\dots = z_{{{latent_dim}}} = 0$"
    note = ", ".join(part for part in ("at standard normal quantiles" if quantiles else "", rest) if part)
    if title or note:
        text = f"{title} ({note})" if title and note else (title or note)
        fig.suptitle(text) if own else ax.set_title(text)
    v = _grid_values(n, extent, quantiles).numpy()
    spread = "at standard normal quantiles" if quantiles else "evenly spaced"
    return _described(fig, ax, f"Images decoded from a {n} by {n} grid of latent points, z1 increasing to the right "
                               f"and z2 upward, {spread} from {number(v[0])} to {number(v[-1])}")
