"""Numbers as charts: the loss per epoch of training runs, the reconstruction error per digit."""
from __future__ import annotations

from typing import Mapping

import matplotlib
import numpy as np

from labkit.plotting._common import (
    _STYLE, DIGIT_COLORS, MODEL_COLORS, MODEL_HATCHES, MODEL_MARKERS, _as_mapping, _described, _one_axes, _to_numpy,
)
from labkit.plotting.describe import number
from labkit.plotting.palette import text_color

__all__ = ["plot_training_curves", "plot_errors_per_digit"]


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


def _named_curves(histories, log: bool) -> dict:
    """{name or None: (train losses, test losses)}, checked (positive losses for a log axis)."""
    if isinstance(histories, Mapping) and "train_loss" not in histories:
        named = _as_mapping(histories, None)
    else:
        named = {None: histories}
    curves = {name: _losses(h, "history" if name is None else f"histories[{name!r}]") for name, h in named.items()}
    if log:
        bad = [name for name, (tr, te) in curves.items() if min(tr + te) <= 0]
        if bad:
            raise ValueError(f"log=True needs positive losses; {', '.join(str(b) for b in bad)} has losses <= 0")
    return curves


def _log_axis(ax) -> None:
    from matplotlib.ticker import LogFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(LogFormatter())
    ax.yaxis.set_minor_formatter(LogFormatter(minor_thresholds=(2, 1)))
    ax.grid(True, which="minor", axis="y", color="0.95", lw=0.6)


def _curves_legend(ax, curves: dict, any_test: bool) -> None:
    """One entry per named model (its colour), then the line styles: training solid, test dashed."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=MODEL_COLORS[i % len(MODEL_COLORS)], lw=1.8, label=str(name),
                      marker=MODEL_MARKERS[i % len(MODEL_MARKERS)], markersize=5)
               for i, name in enumerate(curves) if name is not None]
    if any_test or handles:
        handles += [Line2D([], [], color="0.35", lw=1.8, label="training")]
        if any_test:
            handles += [Line2D([], [], color="0.35", lw=1.8, ls="--", label="test")]
        ax.legend(handles=handles, loc="best")


@matplotlib.rc_context(_STYLE)
def plot_training_curves(histories, ylabel: str = "loss (nats per image)", title: str | None = None, log: bool = False,
                         *, ax=None):
    """Loss per epoch: training solid, test dashed, epochs 1, 2, ... on x.

    ``histories`` is one history or a dict {name: history}; a history has lists
    ``train_loss`` and (optional) ``test_loss`` (e.g. ``labkit.train.History``),
    or is a plain list of floats (training losses). ``log=True``: logarithmic y
    axis (positive losses only). ``ax``: draw into these Axes. Returns the Figure.
    """
    from matplotlib.ticker import MaxNLocator

    curves = _named_curves(histories, log)
    fig, ax, _ = _one_axes(ax, (6.4, 4.0))
    any_test = False
    for i, (name, (train, test)) in enumerate(curves.items()):
        color = MODEL_COLORS[i % len(MODEL_COLORS)] if name is not None else "black"
        # a named model's curves carry its marker too (about eight per curve), so colour is not the only cue
        marks = (dict(marker=MODEL_MARKERS[i % len(MODEL_MARKERS)], markersize=5) if name is not None
                 else dict(marker="o") if len(train) == 1 else {})
        ax.plot(np.arange(1, len(train) + 1), train, color=color, lw=1.8, label=name,
                markevery=max(1, len(train) // 8), **marks)
        if test:
            any_test = True
            ax.plot(np.arange(1, len(test) + 1), test, color=color, lw=1.8, ls="--",
                    markevery=max(1, len(test) // 8), **(marks or (dict(marker="o") if len(test) == 1 else {})))
    if log:
        _log_axis(ax)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(True, color="0.92", lw=0.8)
    ax.set_axisbelow(True)
    _curves_legend(ax, curves, any_test)
    if title:
        ax.set_title(title)
    return _described(fig, ax, _curves_text(curves))


def _span(losses: list[float]) -> str:
    return number(losses[0]) if len(losses) == 1 else f"from {number(losses[0])} to {number(losses[-1])}"


def _curves_text(curves: dict) -> str:
    """'Line chart of the loss per epoch, training solid, test dashed: VAE training from 200 to 150 ...'."""
    runs = []
    for name, (train, test) in curves.items():
        run = f"{'' if name is None else f'{name} '}training {_span(train)}"
        if test:
            run += f", test {_span(test)}"
        runs.append(run + f" over {len(train)} epoch{'s' if len(train) > 1 else ''}")
    styles = "training solid, test dashed" if any(test for _, test in curves.values()) else "training"
    return f"Line chart of the loss per epoch ({styles}): {'; '.join(runs)}"


# --------------------------------------------------------------------------- errors per digit


def _per_digit_values(errors) -> dict:
    """{name or None: (10,) float64}, checked."""
    values = {}
    for name, e in _as_mapping(errors, None).items():
        where = "errors" if name is None else f"errors[{name!r}]"
        a = _to_numpy(e, where)
        if a.size != 10 or a.ndim > 2:
            raise ValueError(f"{where} must have one value per digit, shape (10,), got shape {tuple(a.shape)}")
        values[name] = a.astype(np.float64).reshape(-1)
    return values


@matplotlib.rc_context(_STYLE)
def plot_errors_per_digit(errors, title: str | None = None, *,
                          ylabel: str = "average squared reconstruction error", ax=None):
    """Bar chart of the average squared reconstruction error per digit: ``errors`` is a (10,)
    tensor (see ``labkit.metrics.per_digit_mean``) or a dict {model name: (10,)} (grouped bars).
    ``ax``: draw into these Axes (the legend of grouped bars then sits beside them).
    Returns the Figure."""
    values = _per_digit_values(errors)
    k = len(values)
    fig, ax, own = _one_axes(ax, (6.4 if k == 1 else 7.6, 3.8))
    digits = np.arange(10)
    if k == 1:
        (a,) = values.values()
        bars = ax.bar(digits, a, width=0.7, color=DIGIT_COLORS)
        ax.bar_label(bars, labels=[f"{x:.1f}" if abs(x) >= 1 else f"{x:.2g}" for x in a], fontsize=8, padding=2, color="0.3")
    else:
        width = 0.8 / k
        for i, (name, a) in enumerate(values.items()):
            ax.bar(digits - 0.4 + width * (i + 0.5), a, width=width * 0.95, color=MODEL_COLORS[i % len(MODEL_COLORS)],
                   hatch=MODEL_HATCHES[i % len(MODEL_HATCHES)], edgecolor="white", linewidth=0, label=str(name))
        if own:
            fig.legend(loc="outside right upper")
        else:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_xticks(digits, [str(d) for d in digits], fontweight="bold")
    for tick, c in zip(ax.get_xticklabels(), DIGIT_COLORS):
        tick.set_color(text_color(c, "white"))
    ax.tick_params(axis="x", length=0)
    ax.set_xlabel("digit")
    ax.set_ylabel(ylabel)
    ax.grid(True, axis="y", color="0.92", lw=0.8)
    ax.set_axisbelow(True)
    ax.margins(x=0.02)
    if title:
        ax.set_title(title)
    return _described(fig, ax, _errors_text(values))


def _errors_text(values: dict) -> str:
    """'Bar chart of the error per digit: PCA highest for digit 2 (51.2), lowest for digit 1 (12.3)'."""
    runs = []
    for name, a in values.items():
        hi, lo = int(np.nanargmax(a)), int(np.nanargmin(a))
        runs.append(f"{'' if name is None else f'{name} '}highest for digit {hi} ({number(a[hi])}), "
                    f"lowest for digit {lo} ({number(a[lo])})")
    grouped = f", one bar per model ({', '.join(map(str, values))})" if len(values) > 1 else ", one bar per digit"
    return f"Bar chart of a value per digit 0 to 9{grouped}: {'; '.join(runs)}"
