"""The figures of the lab: one call instead of a copy-pasted plotting cell.

    >>> from labkit import plotting
    >>> plotting.show_images(X[:25], labels=y[:25])          # X: (N, 784) or (N, 28, 28)
    >>> plotting.plot_encodings(Z, y, Z_test, y_test)         # Z: (N, 2) encodings
    >>> plotting.plot_latent_grid(vae.decode)                 # decode_fn: (K, 2) -> (K, 784)

Every function accepts torch tensors (any device, with or without grad) or
numpy arrays, and returns the matplotlib ``Figure``; none calls ``plt.show()``.

- In a notebook, a returned figure is shown once when the call is the last
  expression of the cell; ``fig = plotting.show_images(...)`` shows nothing
  until you evaluate ``fig`` (or ``display(fig)``).
- In a script, save it: ``fig.savefig("images.png")``. The figures are created
  through pyplot (so that Jupyter's inline backend knows how to draw them) and
  closed again at once, so nothing is left in pyplot's figure registry and
  ``plt.show()`` does not open them.

Digits have the same colour everywhere: ``DIGIT_COLORS[d]`` (matplotlib's tab10).
Images are drawn with the grey scale fixed to [0, 1] (pixel values), so that
images in one figure are comparable; pass ``vmin=None, vmax=None`` to scale
each figure to its data instead. Integer images (uint8, 0..255) are divided by 255.
"""
from __future__ import annotations

import io
import math
from typing import Callable, Mapping

import matplotlib
import numpy as np
import torch

__all__ = [
    "DIGIT_COLORS",
    "show_images",
    "plot_encodings",
    "plot_mean_encodings",
    "plot_reconstructions",
    "plot_samples",
    "plot_training_curves",
    "plot_latent_grid",
    "plot_errors_per_digit",
    "per_digit_mean",
    "latent_explorer",
]

#: One colour per digit 0..9 (matplotlib's tab10), used by every figure.
DIGIT_COLORS: list[str] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
]
#: Colours of models (training curves, grouped bars): Dark2, so that a model is never mistaken for a digit.
MODEL_COLORS: list[str] = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]

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


# --------------------------------------------------------------------------- image grids


@matplotlib.rc_context(_STYLE)
def show_images(images, nrow: int | None = None, labels=None, title: str | None = None, cmap: str = "gray",
                *, vmin: float | None = 0.0, vmax: float | None = 1.0, pad: int = 1, width: float | None = None):
    """A grid of images (N, 784) or (N, 28, 28) in one axes.

    ``nrow`` is the number of images per row (as in torchvision's ``make_grid``;
    default: all of them up to 10, else about sqrt(N)). ``labels`` (N,): a small
    label in the corner of each image; digits 0-9 get their digit colour.
    The grid is one mosaic image (one ``imshow``, thin white separators), so
    hundreds of images are cheap. Returns the Figure.
    """
    imgs = _as_images(images, "images")
    n = imgs.shape[0]
    ncol = _default_ncol(n) if nrow is None else int(nrow)
    if ncol < 1:
        raise ValueError(f"nrow (images per row) must be positive, got {nrow}")
    ncol = min(ncol, n)
    rows = math.ceil(n / ncol)
    tile = min(1.2, 7.0 / ncol, 9.0 / rows) if width is None else width / ncol
    fig = _new_figure((max(ncol * tile, 1.5), rows * tile + (0.35 if title else 0.0)))
    ax = fig.add_subplot()
    _draw_mosaic(ax, _mosaic(imgs, ncol, pad), cmap, vmin, vmax)
    if labels is not None:
        text = list(_to_numpy(labels, "labels").reshape(-1)) if not isinstance(labels, (list, tuple)) else list(labels)
        if len(text) != n:
            raise ValueError(f"labels must have one entry per image ({n}), got {len(text)}")
        size = float(np.clip(tile * 72 * 0.28, 5, 10))
        for i, lab in enumerate(text):
            r, c = divmod(i, ncol)
            digit = _digit_or_none(lab)
            ax.text(c * (SIDE + pad) + 1, r * (SIDE + pad) + 0.5, str(lab if digit is None else digit),
                    color=DIGIT_COLORS[digit] if digit is not None else "white",
                    fontsize=size, fontweight="bold", ha="left", va="top")
    if title:
        fig.suptitle(title)
    return fig


def _digit_or_none(value) -> int | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return int(f) if f.is_integer() and 0 <= f <= 9 and not isinstance(value, str) else None


# --------------------------------------------------------------------------- encodings


def _digit_legend(fig, loc="outside right center"):
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", linestyle="", markersize=7, markeredgewidth=0, color=c) for c in DIGIT_COLORS]
    return fig.legend(handles, [str(d) for d in range(10)], title="digit", loc=loc, handletextpad=0.2,
                      labelspacing=0.45, borderaxespad=0.2)


@matplotlib.rc_context(_STYLE)
def plot_encodings(Z_train, y_train, Z_test=None, y_test=None, title: str | None = None, max_points: int | None = 10000,
                   seed: int = 0, *, s: float | None = None, alpha: float = 0.6):
    """Encodings Z (N, M) as a 2-D scatter coloured by digit y (N,); training and test side
    by side (shared axes) when ``Z_test``, ``y_test`` are given.

    At most ``max_points`` points per panel, chosen at random with ``seed`` (the
    same points every call). With M > 2 the first two coordinates are plotted
    (the title says so). Returns the Figure.
    """
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
    M = dims.pop()

    fig = _new_figure((8.6, 4.3) if len(panels) == 2 else (5.0, 4.5))
    axes = fig.subplots(1, len(panels), sharex=True, sharey=True, squeeze=False)[0]
    for ax, (name, Z, y) in zip(axes, panels):
        idx = _rng_subset(Z.shape[0], max_points, seed)
        size = s if s is not None else (3.0 if len(idx) > 3000 else 8.0)
        colors = np.asarray([matplotlib.colors.to_rgb(c) for c in DIGIT_COLORS])[y[idx]]
        ax.scatter(Z[idx, 0], Z[idx, 1], c=colors, s=size, alpha=alpha, linewidths=0, rasterized=True)
        shown = f"{len(idx):,} of {Z.shape[0]:,} images" if len(idx) < Z.shape[0] else f"{Z.shape[0]:,} images"
        ax.set_title(f"{name} ({shown})" if len(panels) == 2 else shown)
        ax.set_xlabel("$z_1$")
        ax.set_box_aspect(1)
    axes[0].set_ylabel("$z_2$")
    _digit_legend(fig)
    note = f"$z_1$ and $z_2$ of {M} latent dimensions" if M > 2 else ""
    if title or note:
        fig.suptitle(f"{title} ({note})" if title and note else (title or note))
    return fig


@matplotlib.rc_context(_STYLE)
def plot_mean_encodings(Z, y, ax=None, title: str | None = None, *, background: bool = True,
                        max_points: int | None = 5000, seed: int = 0):
    """The mean encoding of each digit: the digit's character, in its colour, at the mean
    of the encodings Z (N, M) of that digit (first two coordinates), over a faint
    scatter of the encodings (``background=False`` leaves it out). Draws into ``ax``
    when given (its figure then leaves pyplot's registry: end the cell with this call, or
    with the figure, to show it). Returns the Figure.
    """
    from matplotlib import patheffects

    Z = _as_matrix(Z, "Z")
    y = _as_digits(y, Z.shape[0], "y")
    means = per_digit_mean(torch.from_numpy(Z[:, :2]), torch.from_numpy(y)).numpy()
    if ax is None:
        fig = _new_figure((5.0, 4.6))
        ax = fig.add_subplot()
    else:
        fig = _root_figure(ax)
    if background:
        idx = _rng_subset(Z.shape[0], max_points, seed)
        colors = np.asarray([matplotlib.colors.to_rgb(c) for c in DIGIT_COLORS])[y[idx]]
        ax.scatter(Z[idx, 0], Z[idx, 1], c=colors, s=3, alpha=0.12, linewidths=0, rasterized=True)
    outline = [patheffects.withStroke(linewidth=3, foreground="white")]
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
    return fig


# --------------------------------------------------------------------------- reconstructions and samples


@matplotlib.rc_context(_STYLE)
def plot_reconstructions(originals, reconstructions, n: int = 10, labels=None, title: str | None = None, *,
                         show_errors: bool = False, vmin: float | None = 0.0, vmax: float | None = 1.0):
    """Originals (N, 784) in the top row and, below, the reconstructions (N, 784) of each
    model: ``reconstructions`` is one tensor or a dict {model name: tensor}. The first
    ``n`` images are shown; ``labels`` (N,) puts the digit above each original;
    ``show_errors=True`` writes the squared error sum_j (x_j - x~_j)^2 under each
    reconstruction. Returns the Figure.
    """
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
    X = X[:n]
    digits = None
    if labels is not None:
        lab = _to_numpy(labels, "labels").reshape(-1)
        if len(lab) < n:
            raise ValueError(f"labels has {len(lab)} entries, but {n} originals are shown")
        digits = _as_digits(lab[:n], n, "labels")

    tile = min(0.75, 9.0 / n)
    label_width = 0.12 + 0.075 * max(len(name) for name in ["original", *rows])
    height = ((1 + len(rows)) * (tile + 0.06) + (0.2 * len(rows) if show_errors else 0.0)
              + (0.2 if digits is not None else 0.0) + (0.35 if title else 0.05) + (0.2 if show_errors else 0.0))
    fig = _new_figure((n * tile + label_width, height))
    axes = fig.subplots(1 + len(rows), 1, squeeze=False)[:, 0]
    centres = np.arange(n) * (SIDE + 1) + (SIDE - 1) / 2
    for ax, (name, imgs) in zip(axes, [("original", X), *rows.items()]):
        _draw_mosaic(ax, _mosaic(imgs, n), vmin=vmin, vmax=vmax)
        ax.set_ylabel(name, rotation=0, ha="right", va="center", labelpad=6)
        if show_errors and name != "original" or (name == "original" and digits is not None):
            ax.tick_params(length=0, pad=2, labelsize=8)
            if name == "original":
                ax.xaxis.tick_top()
                ax.set_xticks(centres, [str(d) for d in digits], fontweight="bold")
                for tick, d in zip(ax.get_xticklabels(), digits):
                    tick.set_color(DIGIT_COLORS[d])
            else:
                err = ((imgs.reshape(n, -1).astype(np.float64) - X.reshape(n, -1)) ** 2).sum(axis=1)
                ax.set_xticks(centres, [f"{e:.1f}" for e in err], color="0.3")
    if show_errors:
        fig.supxlabel("under each reconstruction: squared error summed over the 784 pixels", fontsize=8, color="0.3")
    if title:
        fig.suptitle(title)
    return fig


@matplotlib.rc_context(_STYLE)
def plot_samples(sample_fn: Callable, temperatures=(0.5, 1.0, 1.5), n: int = 16, seed: int = 0,
                 title: str | None = None, *, vmin: float | None = 0.0, vmax: float | None = 1.0):
    """Samples from a model at several temperatures, one grid per temperature.

    ``sample_fn(n, temperature) -> (n, 784)``, e.g. ``lambda n, t: vae.sample(n, temperature=t)``;
    it is called under ``torch.no_grad`` after ``torch.manual_seed(seed)``, so the figure
    is the same every time (pyTorch's global random state is restored afterwards).
    Returns the Figure.
    """
    temps = [float(t) for t in (temperatures if np.ndim(temperatures) else [temperatures])]
    if not temps:
        raise ValueError("temperatures is empty")
    if int(n) < 1:
        raise ValueError(f"n must be positive, got {n}")
    n = int(n)
    grids = []
    for t in temps:
        with _forked_rng(), torch.no_grad():
            torch.manual_seed(seed)
            out = sample_fn(n, t)
        imgs = _as_images(out, f"sample_fn({n}, {t:g}) output")
        if imgs.shape[0] != n:
            raise ValueError(f"sample_fn({n}, {t:g}) returned {imgs.shape[0]} images, expected {n}")
        grids.append(imgs)
    ncol = math.ceil(math.sqrt(n))
    rows = math.ceil(n / ncol)
    panel = min(2.9, 9.5 / len(temps))
    fig = _new_figure((panel * len(temps), (panel - 0.15) * rows / ncol + 0.35 + (0.3 if title else 0.0)))
    axes = fig.subplots(1, len(temps), squeeze=False)[0]
    for ax, t, imgs in zip(axes, temps, grids):
        _draw_mosaic(ax, _mosaic(imgs, ncol), vmin=vmin, vmax=vmax)
        ax.set_title(f"T = {_fmt_temperature(t)}")
    if title:
        fig.suptitle(title)
    return fig


def _fmt_temperature(t: float) -> str:
    return f"{t:.1f}" if round(t, 1) == t else f"{t:g}"


def _forked_rng():
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    return torch.random.fork_rng(devices=devices)


# --------------------------------------------------------------------------- training curves


def _losses(history, name) -> tuple[list[float], list[float]]:
    if hasattr(history, "train_loss"):
        train, test = list(history.train_loss), list(getattr(history, "test_loss", None) or [])
    elif isinstance(history, Mapping) and "train_loss" in history:
        train, test = list(history["train_loss"]), list(history.get("test_loss") or [])
    else:
        try:
            train, test = [float(v) for v in _to_numpy(history, name).reshape(-1)], []
        except (TypeError, ValueError) as e:
            raise TypeError(f"{name} must have train_loss (and optional test_loss) lists, or be a list of "
                            f"floats, got {type(history).__name__}") from e
    train = [float(v) for v in train]
    test = [float(v) for v in test]
    if not train:
        raise ValueError(f"{name} has no training losses")
    return train, test


@matplotlib.rc_context(_STYLE)
def plot_training_curves(histories, ylabel: str = "loss (nats per image)", title: str | None = None, log: bool = False):
    """Loss per epoch: training solid, test dashed, epochs 1, 2, ... on x.

    ``histories`` is one history or a dict {name: history}; a history has lists
    ``train_loss`` and (optional) ``test_loss`` (e.g. ``labkit.train.History``),
    or is a plain list of floats (training losses). ``log=True``: logarithmic y
    axis (positive losses only). Returns the Figure.
    """
    from matplotlib.lines import Line2D
    from matplotlib.ticker import LogFormatter, MaxNLocator

    if isinstance(histories, Mapping) and "train_loss" not in histories:
        named = _as_mapping(histories, None)
    else:
        named = {None: histories}
    curves = {name: _losses(h, "history" if name is None else f"histories[{name!r}]") for name, h in named.items()}
    if log:
        bad = [name for name, (tr, te) in curves.items() if min(tr + te) <= 0]
        if bad:
            raise ValueError(f"log=True needs positive losses; {', '.join(str(b) for b in bad)} has losses <= 0")

    fig = _new_figure((6.4, 4.0))
    ax = fig.add_subplot()
    any_test = False
    for i, (name, (train, test)) in enumerate(curves.items()):
        color = MODEL_COLORS[i % len(MODEL_COLORS)] if name is not None else "black"
        ax.plot(np.arange(1, len(train) + 1), train, color=color, lw=1.8, label=name,
                marker="o" if len(train) == 1 else None)
        if test:
            any_test = True
            ax.plot(np.arange(1, len(test) + 1), test, color=color, lw=1.8, ls="--",
                    marker="o" if len(test) == 1 else None)
    if log:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(LogFormatter())
        ax.yaxis.set_minor_formatter(LogFormatter(minor_thresholds=(2, 1)))
        ax.grid(True, which="minor", axis="y", color="0.95", lw=0.6)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(True, color="0.92", lw=0.8)
    ax.set_axisbelow(True)
    handles = [Line2D([], [], color=MODEL_COLORS[i % len(MODEL_COLORS)], lw=1.8, label=str(name))
               for i, name in enumerate(curves) if name is not None]
    if any_test or handles:
        handles += [Line2D([], [], color="0.35", lw=1.8, label="training")]
        if any_test:
            handles += [Line2D([], [], color="0.35", lw=1.8, ls="--", label="test")]
        ax.legend(handles=handles, loc="best")
    if title:
        ax.set_title(title)
    return fig


# --------------------------------------------------------------------------- latent space


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


@matplotlib.rc_context(_STYLE)
def plot_latent_grid(decode_fn: Callable, n: int = 15, extent: float = 3.0, latent_dim: int = 2,
                     title: str | None = None, *, quantiles: bool = False, device=None,
                     vmin: float | None = 0.0, vmax: float | None = 1.0):
    """Images decoded from an n x n grid of latent points, as one picture with z_1 to the
    right and z_2 up.

    ``decode_fn(z: (K, latent_dim)) -> (K, 784)`` is called once, under ``torch.no_grad``,
    with K = n*n (see :func:`latent_grid_points`): z_1, z_2 on an even grid over
    [-extent, extent], or at the standard normal quantiles (i + 1/2)/n with
    ``quantiles=True`` (each image then stands for an equal share of the prior);
    other coordinates are 0. ``z`` is on the device of the model behind ``decode_fn``
    when it is a bound method (``vae.decode``), else on ``device`` (default CPU).
    Returns the Figure.
    """
    n, latent_dim = int(n), int(latent_dim)
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    if latent_dim < 2:
        raise ValueError(f"latent_dim must be at least 2 for a 2-D grid, got {latent_dim}")
    if not quantiles and not extent > 0:
        raise ValueError(f"extent must be positive, got {extent}")
    from matplotlib.ticker import MaxNLocator

    model_device, dtype = _model_device_dtype(decode_fn)
    z = latent_grid_points(n, extent, latent_dim, quantiles).to(device=device or model_device, dtype=dtype)
    with torch.no_grad():
        out = decode_fn(z)
    imgs = _as_images(out, f"decode_fn output for z of shape {tuple(z.shape)}")
    if imgs.shape[0] != n * n:
        raise ValueError(f"decode_fn returned {imgs.shape[0]} images for {n * n} latent points")

    fig = _new_figure((6.2, 6.0 + (0.3 if title else 0.0)))
    ax = fig.add_subplot()
    mosaic = _mosaic(imgs, n, pad=0)
    v = _grid_values(n, extent, quantiles).numpy()
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
    rest = "" if latent_dim == 2 else "$z_3 = 0$" if latent_dim == 3 else f"$z_3 = \\dots = z_{{{latent_dim}}} = 0$"
    note = ", ".join(part for part in ("at standard normal quantiles" if quantiles else "", rest) if part)
    if title or note:
        fig.suptitle(f"{title} ({note})" if title and note else (title or note))
    return fig


def _kernel_running() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


_SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def latent_explorer(decode_fn: Callable, latent_dim: int = 2, extent: float = 3.0, *, device=None,
                    step: float = 0.05, scale: int = 7):
    """Sliders for z_1 .. z_M and the image decoded from z (1, M), updated live in Jupyter.

    ``decode_fn(z: (1, latent_dim)) -> (1, 784)``, called under ``torch.no_grad``. The
    image is shown ``scale`` times enlarged; for latent_dim == 2 a small panel shows
    where z lies (circles at 1 and 2 standard deviations of the prior). One update
    renders two small PNGs (no new figures, nothing left open). Returns the ipywidgets
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

    from matplotlib.image import imsave

    model_device, dtype = _model_device_dtype(decode_fn)
    device = device or model_device
    panel = _LatentPosition(extent) if latent_dim == 2 else None
    size = f"{SIDE * scale}px"
    image_view = widgets.Image(format="png", width=size, height=size)
    views = [image_view] + ([widgets.Image(format="png", width=size, height=size)] if panel else [])
    sliders = [widgets.FloatSlider(value=0.0, min=-extent, max=extent, step=step,
                                   description="z" + str(i + 1).translate(_SUBSCRIPTS), continuous_update=True,
                                   readout_format=".2f", layout=widgets.Layout(width="300px"))
               for i in range(latent_dim)]
    reset = widgets.Button(description="z = 0", tooltip="set every z_i to 0", layout=widgets.Layout(width="80px"))
    block = np.ones((scale, scale), dtype=np.float32)

    def render(_change=None):
        values = [s.value for s in sliders]
        z = torch.tensor([values], dtype=dtype, device=device)
        with torch.no_grad():
            x = decode_fn(z)
        img = _as_images(x, f"decode_fn output for z of shape {tuple(z.shape)}")[0]
        buf = io.BytesIO()
        imsave(buf, np.kron(np.nan_to_num(img), block), cmap="gray", vmin=0.0, vmax=1.0, format="png")
        image_view.value = buf.getvalue()
        if panel is not None:
            views[1].value = panel.png(values[0], values[1])

    def zero(_button):
        for s in sliders:
            s.unobserve(render, names="value")
            s.value = 0.0
            s.observe(render, names="value")
        render()

    for s in sliders:
        s.observe(render, names="value")
    reset.on_click(zero)
    render()
    box = widgets.HBox([widgets.VBox([*sliders, reset]), *views],
                       layout=widgets.Layout(align_items="center", grid_gap="12px"))
    box.render = render  # redraw by hand, e.g. after changing the model
    return box


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
        self.dpi = dpi

    def png(self, z1: float, z2: float) -> bytes:
        self.point.set_data([z1], [z2])
        buf = io.BytesIO()
        self.fig.savefig(buf, format="png", dpi=self.dpi)
        return buf.getvalue()


# --------------------------------------------------------------------------- errors per digit


def per_digit_mean(values, labels) -> torch.Tensor:
    """Average of per-sample values (N,) or (N, K) over the samples of each digit:
    a (10,) or (10, K) tensor, NaN for a digit without samples. Labels (N,) are digits 0-9.
    Uses ``torch.bincount`` / ``index_add_`` (no Python loop); the result is detached,
    on the device of ``values``."""
    v = values.detach() if isinstance(values, torch.Tensor) else torch.as_tensor(_to_numpy(values, "values"))
    if v.ndim not in (1, 2):
        raise ValueError(f"values must have shape (N,) or (N, K), got shape {tuple(v.shape)}")
    if isinstance(labels, torch.Tensor):
        lab_np = labels.detach().cpu().numpy()
    else:
        lab_np = _to_numpy(labels, "labels")
    lab = torch.as_tensor(_as_digits(lab_np, v.shape[0], "labels"), device=v.device)
    acc = torch.float32 if v.device.type == "mps" else torch.float64
    counts = torch.bincount(lab, minlength=10).to(acc)
    if v.ndim == 1:
        sums = torch.bincount(lab, weights=v.to(acc), minlength=10)
    else:
        sums = torch.zeros(10, v.shape[1], dtype=acc, device=v.device).index_add_(0, lab, v.to(acc))
        counts = counts[:, None]
    out = sums / counts  # 0 / 0 = NaN for a digit without samples
    return out.to(v.dtype if v.is_floating_point() else torch.float32)


@matplotlib.rc_context(_STYLE)
def plot_errors_per_digit(errors, title: str | None = None, *,
                          ylabel: str = "average squared reconstruction error"):
    """Bar chart of the average squared reconstruction error per digit: ``errors`` is a (10,)
    tensor (see :func:`per_digit_mean`) or a dict {model name: (10,)} (grouped bars).
    Returns the Figure."""
    named = _as_mapping(errors, None)
    values = {}
    for name, e in named.items():
        where = "errors" if name is None else f"errors[{name!r}]"
        a = _to_numpy(e, where)
        if a.size != 10 or a.ndim > 2:
            raise ValueError(f"{where} must have one value per digit, shape (10,), got shape {tuple(a.shape)}")
        values[name] = a.astype(np.float64).reshape(-1)

    k = len(values)
    fig = _new_figure((6.4 if k == 1 else 7.6, 3.8))
    ax = fig.add_subplot()
    digits = np.arange(10)
    if k == 1:
        (a,) = values.values()
        bars = ax.bar(digits, a, width=0.7, color=DIGIT_COLORS)
        ax.bar_label(bars, labels=[f"{x:.1f}" if abs(x) >= 1 else f"{x:.2g}" for x in a], fontsize=8, padding=2, color="0.3")
    else:
        width = 0.8 / k
        for i, (name, a) in enumerate(values.items()):
            ax.bar(digits - 0.4 + width * (i + 0.5), a, width=width * 0.95, color=MODEL_COLORS[i % len(MODEL_COLORS)],
                   label=str(name))
        fig.legend(loc="outside right upper")
    ax.set_xticks(digits, [str(d) for d in digits], fontweight="bold")
    for tick, c in zip(ax.get_xticklabels(), DIGIT_COLORS):
        tick.set_color(c)
    ax.tick_params(axis="x", length=0)
    ax.set_xlabel("digit")
    ax.set_ylabel(ylabel)
    ax.grid(True, axis="y", color="0.92", lw=0.8)
    ax.set_axisbelow(True)
    ax.margins(x=0.02)
    if title:
        ax.set_title(title)
    return fig
