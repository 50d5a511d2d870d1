"""Text alternatives of labkit's figures: what a figure shows, its axes and their ranges, in words.

Owns: :func:`describe` and :func:`record`. Every ``plot_*`` and ``show_*`` function records one
sentence about what it drew, for the axes it drew into (``record``); ``describe(fig)`` joins the
sentences of a figure in drawing order, each followed by its panels' titles and axes (name and
range, read from the figure itself: what a reader sees, after any change the caller made). A
figure that labkit did not draw is described from its axes alone. The description is the alt text
of the figure in ``report.html`` and, in Jupyter, of the figure's image output
(``labkit.plotting.display``); it is kept on the figure as ``fig._labkit_alt``.
"""
from __future__ import annotations

import re

_ATTR = "_labkit_alt"
_TEX = re.compile(r"\\(dots|ldots|cdots)|\\[,;! ]|[${}_\\]")


def record(fig, axes, what: str) -> None:
    """Remember that ``what`` (a sentence) was drawn into ``axes`` (a sequence of Axes) of ``fig``;
    drawing into the same axes again replaces the sentence."""
    parts = getattr(fig, _ATTR, None)
    if not isinstance(parts, dict):
        parts = {}
        setattr(fig, _ATTR, parts)
    axes = list(axes)
    key = tuple(id(ax) for ax in axes)
    parts.pop(key, None)
    parts[key] = (axes, what.strip())


def describe(fig) -> str:
    """A short description of ``fig``: its title, what labkit drew in it, and each panel's title and
    axes (name and range). Used as the figure's alt text."""
    parts = getattr(fig, _ATTR, None) or {}
    title = plain(fig._suptitle.get_text()) if getattr(fig, "_suptitle", None) is not None else ""
    sentences = [_sentence(title)] if title else []
    described = set()
    for axes, what in parts.values():
        sentences.append(_sentence(what))
        sentences += [text for ax in axes if ax in fig.axes and (text := _axes_text(ax))]
        described |= {id(ax) for ax in axes}
    others = [ax for ax in fig.axes if id(ax) not in described]
    if others and not parts:
        sentences.append(f"A figure of {len(others)} panel{'s' if len(others) > 1 else ''}.")
    sentences += [text for ax in others if (text := _axes_text(ax))]
    return " ".join(sentences) or "An empty figure."


def plain(text: str) -> str:
    """Matplotlib's mathtext as plain words: ``$z_1$`` is ``z1``, ``\\dots`` an ellipsis."""
    return _TEX.sub(lambda m: "..." if m.group(1) else "", text or "").strip()


def number(value: float) -> str:
    """A number as a reader wants it in a sentence: three significant digits, no "-0"."""
    text = f"{value:.3g}"
    return "0" if text in ("-0", "0") else text


def numbers(values, limit: int = 12) -> str:
    """The first ``limit`` values, comma separated, "..." after them when there are more."""
    values = list(values)
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (", ..." if len(values) > limit else "")


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def _axis_text(ax, which: str) -> str:
    """'x axis z1 from -3 to 3' for an axis with a label and ticks; '' otherwise."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    label = plain(axis.get_label().get_text())
    if not label or not axis.get_visible() or not len(axis.get_ticklocs()):
        return ""
    lo, hi = sorted(ax.get_xlim() if which == "x" else ax.get_ylim())
    fixed = [t.get_text() for t, loc in zip(axis.get_ticklabels(), axis.get_ticklocs()) if lo <= loc <= hi]
    if (ax.yaxis_inverted() if which == "y" else ax.xaxis_inverted()):
        fixed.reverse()  # an image's rows: from the bottom up, as for any y axis
    from matplotlib.ticker import LogFormatter, ScalarFormatter

    # ticks with labels of their own (digits, quantiles at image centres) say more than the limits
    if not isinstance(axis.get_major_formatter(), (ScalarFormatter, LogFormatter)) and fixed and fixed[0]:
        span = f"{plain(fixed[0])} to {plain(fixed[-1])}"
    else:
        span = f"{number(lo)} to {number(hi)}"
    scale = ", logarithmic" if axis.get_scale() == "log" else ""
    return f"{which} axis {label} from {span}{scale}"


def _axes_text(ax) -> str:
    title = plain(ax.get_title())
    axes = [text for which in ("x", "y") if (text := _axis_text(ax, which))]
    if not axes:  # a panel of images: what it holds is in the figure's own sentence
        return ""
    return (f"Panel {title}: " if title else "") + "; ".join(axes) + "."
