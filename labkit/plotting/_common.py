"""What every figure module of labkit.plotting shares: the style, the input checks (torch or numpy
in, numpy out, errors that name the argument) and the figure helpers (figures that pyplot does not
keep, drawing into given axes, image mosaics, a finished figure's description); the colours and
markers come from ``palette``.

Private: the figure modules import it; nothing outside labkit.plotting should.
"""
from __future__ import annotations

import math
from typing import Mapping

import matplotlib
import numpy as np
import torch

from labkit.plotting.describe import record
from labkit.plotting.display import attach
from labkit.plotting.palette import DIGIT_COLORS, DIGIT_MARKERS, MODEL_COLORS, MODEL_HATCHES, MODEL_MARKERS  # noqa: F401 (the figure modules import them from here)

SIDE = 28
N_PIXELS = SIDE * SIDE
_SEPARATOR = "white"  # colour of the thin lines between images (and of empty grid cells)

_STYLE = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "figure.titlesize": 12,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.title_fontsize": 9,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "figure.dpi": 100,
}


# --------------------------------------------------------------------------- input checks


def _to_numpy(x, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()
        return x.numpy()
    try:
        return np.asarray(x)
    except Exception as e:  # pragma: no cover - exotic inputs
        raise TypeError(f"{name} must be a torch tensor or a numpy array, got {type(x).__name__}") from e


def _as_images(x, name: str = "images") -> np.ndarray:
    """Images as a float32 array (N, 28, 28); accepts (N, 784), (N, 28, 28), (N, 1, 28, 28), (784,), (28, 28)."""
    a = _to_numpy(x, name)
    shape = tuple(a.shape)
    if a.ndim == 1 and a.size == N_PIXELS:
        a = a[None]
    elif a.ndim == 2 and shape == (SIDE, SIDE):
        a = a[None]
    elif a.ndim == 4 and shape[1] == 1:
        a = a[:, 0]
    if a.ndim == 2 and a.shape[1] == N_PIXELS:
        a = a.reshape(-1, SIDE, SIDE)
    elif not (a.ndim == 3 and a.shape[1:] == (SIDE, SIDE)):
        raise ValueError(f"{name} must have 784 pixels per row (28x28): shape (N, 784) or (N, 28, 28), got shape {shape}")
    if a.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {shape})")
    if a.dtype == np.uint8:
        a = a / 255.0
    elif not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise ValueError(f"{name} must hold numbers, got dtype {a.dtype}")
    return np.asarray(a, dtype=np.float32)


def _as_matrix(x, name: str, min_cols: int = 2) -> np.ndarray:
    a = _to_numpy(x, name)
    if a.ndim != 2 or a.shape[1] < min_cols:
        raise ValueError(f"{name} must be a matrix (N, M) with M >= {min_cols} columns, got shape {tuple(a.shape)}")
    if a.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(a.shape)})")
    return np.asarray(a, dtype=np.float64)


def _as_digits(y, n: int, name: str) -> np.ndarray:
    """Digit labels as an int64 array (n,), checked to lie in 0..9."""
    if y is None:
        raise ValueError(f"{name} is missing: digit labels (N,) are needed to colour the points")
    a = _to_numpy(y, name)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1 or a.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},), one digit per row, got shape {tuple(a.shape)}")
    if np.issubdtype(a.dtype, np.floating):
        if not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
            raise ValueError(f"{name} must hold whole digits 0-9")
    elif not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must hold digits 0-9, got dtype {a.dtype}")
    a = a.astype(np.int64)
    if a.size and (a.min() < 0 or a.max() > 9):
        raise ValueError(f"{name} must hold digits 0-9, got values from {a.min()} to {a.max()}")
    return a


def _rng_subset(n: int, max_points: int | None, seed: int) -> np.ndarray:
    """Indices of at most ``max_points`` of ``n`` points, in a random (seeded) drawing order,
    so that no digit is systematically drawn on top of the others."""
    rng = np.random.default_rng(seed)
    if max_points is None or n <= max_points:
        return rng.permutation(n)
    if max_points < 1:
        raise ValueError(f"max_points must be positive, got {max_points}")
    return rng.choice(n, size=int(max_points), replace=False)


def _model_device_dtype(fn) -> tuple[torch.device, torch.dtype]:
    """Device and dtype of the model behind a bound method such as ``vae.decode`` (else CPU, float32)."""
    owner = fn if isinstance(fn, torch.nn.Module) else getattr(fn, "__self__", None)
    tensors = []
    if isinstance(owner, torch.nn.Module):
        tensors = [*owner.parameters(), *owner.buffers()]
    elif owner is not None:
        tensors = [v for v in vars(owner).values() if isinstance(v, torch.Tensor)] if hasattr(owner, "__dict__") else []
    for t in tensors:
        if t.is_floating_point():
            return t.device, t.dtype
    return torch.device("cpu"), torch.float32


# --------------------------------------------------------------------------- figure helpers


def _new_figure(figsize, **kwargs):
    """A constrained-layout figure that pyplot does not keep: created through pyplot (so
    that Jupyter's inline backend can display it) and removed from its registry at once."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=figsize, layout="constrained", **kwargs)
    plt.close(fig)
    return fig


def _root_figure(ax):
    """The figure of ``ax``, taken out of pyplot's registry as this module's own figures are, so that
    Jupyter shows it once, as the returned value (not also as an open pyplot figure)."""
    import matplotlib.pyplot as plt

    try:
        fig = ax.get_figure(root=True)
    except TypeError:  # matplotlib < 3.10
        fig = ax.figure
    plt.close(fig)
    return fig


def _described(fig, axes, what: str):
    """``fig``, finished: ``what`` (a sentence) recorded as the description of ``axes`` (one Axes or a
    sequence), and the hook that shows it as alt text in Jupyter attached (``describe``, ``display``)."""
    from matplotlib.axes import Axes

    record(fig, [axes] if isinstance(axes, Axes) else list(axes), what)
    return attach(fig)


def _gray(cmap: str):
    return matplotlib.colormaps[cmap].with_extremes(bad=_SEPARATOR)


def _mosaic(images: np.ndarray, ncol: int, pad: int = 1) -> np.ndarray:
    """Tile images (N, h, w) into one array, ``ncol`` per row, separated by ``pad`` NaN pixels
    (empty cells are NaN too). Image i sits at rows r*(h+pad) : r*(h+pad)+h, columns
    c*(w+pad) : c*(w+pad)+w, where r, c = divmod(i, ncol)."""
    n, h, w = images.shape
    nrow = math.ceil(n / ncol)
    tiles = np.full((nrow * ncol, h + pad, w + pad), np.nan, dtype=np.float32)
    tiles[:n, :h, :w] = images
    grid = tiles.reshape(nrow, ncol, h + pad, w + pad).transpose(0, 2, 1, 3)
    grid = grid.reshape(nrow * (h + pad), ncol * (w + pad))
    return grid[: grid.shape[0] - pad, : grid.shape[1] - pad]


def _draw_mosaic(ax, mosaic, cmap="gray", vmin=0.0, vmax=1.0, **kwargs):
    im = ax.imshow(np.ma.masked_invalid(mosaic), cmap=_gray(cmap), vmin=vmin, vmax=vmax, **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    return im


def _default_ncol(n: int) -> int:
    return n if n <= 10 else math.ceil(math.sqrt(n))


def _as_mapping(obj, default_name: str | None) -> dict:
    """A dict {name: value} as given, or {default_name: obj} for a single value."""
    if isinstance(obj, Mapping):
        if not obj:
            raise ValueError("the dict is empty: give at least one {name: value}")
        return dict(obj)
    return {default_name: obj}




def _is_container(ax) -> bool:
    from matplotlib.figure import FigureBase

    return isinstance(ax, FigureBase)


def _one_axes(ax, figsize):
    """(figure, axes, own) of a one-panel figure: a new figure of ``figsize`` inches with one
    axes when ``ax`` is None (own=True); else ``ax`` and its figure, taken out of pyplot's
    registry (own=False: the caller's axes get the title as ``ax.set_title``, not the figure).
    A Figure or SubFigure given as ``ax`` gets one axes added."""
    from matplotlib.axes import Axes

    if ax is None:
        fig = _new_figure(figsize)
        return fig, fig.add_subplot(), True
    if _is_container(ax):
        return _root_figure(ax), ax.add_subplot(), False
    if not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes (e.g. from plt.subplots), a Figure or a SubFigure, "
                        f"got {type(ax).__name__}")
    return _root_figure(ax), ax, False


def _panels(ax, shape: tuple[int, int], figsize, **subplots_kw):
    """(figure, holder, axes) of a figure of several panels, ``axes`` a flat array of
    rows * cols Axes and ``holder`` the Figure or SubFigure that gets the title and legend:

    - ``ax`` None: a new figure of ``figsize`` inches, panels made with ``subplots(**subplots_kw)``;
    - a Figure or SubFigure (``fig.subfigures(...)[i]``): the panels are made in it;
    - a sequence of rows * cols Axes: those, as they are (``subplots_kw`` such as sharex is
      not applied to them); the holder is the (sub)figure of the first.

    The figure returned is the root figure, out of pyplot's registry (see ``_root_figure``)."""
    from matplotlib.axes import Axes

    rows, cols = shape
    if ax is None or _is_container(ax):
        holder = _new_figure(figsize) if ax is None else ax
        axes = holder.subplots(rows, cols, squeeze=False, **subplots_kw).ravel()
        return (holder if ax is None else _root_figure(holder)), holder, axes
    given = [ax] if isinstance(ax, Axes) else list(np.ravel(np.asarray(ax, dtype=object)))
    if len(given) != rows * cols or not all(isinstance(a, Axes) for a in given):
        kinds = ", ".join(sorted({type(a).__name__ for a in given})) or "nothing"
        raise ValueError(f"ax must be a Figure, a SubFigure or a sequence of {rows * cols} Axes (one per panel), "
                         f"got {len(given)} of {kinds}")
    try:
        holder = given[0].get_figure(root=False)
    except TypeError:  # matplotlib < 3.10
        holder = given[0].figure
    return _root_figure(given[0]), holder, np.asarray(given, dtype=object)
