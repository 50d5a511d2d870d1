"""The class report's figures: a distribution of scores as a bar chart, a PNG data URI with alt text.

Owns: :func:`distribution` (score -> how many) and :func:`bar_chart` (the figure as an ``<img>``
whose alt text says every bar's count, so that the figure says nothing the text does not).
"""
from __future__ import annotations

import base64
import html
import io
from collections import Counter


def distribution(scores: list[float]) -> list[tuple[float, int]]:
    """(score, how many) for every score that occurs, lowest first."""
    return sorted(Counter(scores).items())


def _label(x: float) -> str:
    return f"{x:.3f}".rstrip("0").rstrip(".") or "0"


def alt_text(title: str, counts: list[tuple[float, int]], maximum: float) -> str:
    bars = "; ".join(f"{_label(s)} points: {n} student{'s' if n != 1 else ''}" for s, n in counts)
    return f"Bar chart of {title} (out of {_label(maximum)}): {bars or 'no scores'}."


def bar_chart(title: str, scores: list[float], maximum: float) -> str:
    """An ``<img>`` (PNG data URI) of how many students got each score, with its alt text."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    counts = distribution(scores)
    fig = Figure(figsize=(6, 2.6), dpi=100)
    ax = fig.add_subplot()
    ax.bar([s for s, _ in counts], [n for _, n in counts], width=max(maximum, 1) / 40, color="#0b4f9c")
    ax.set_xlim(-0.05 * max(maximum, 1), 1.05 * max(maximum, 1))
    ax.set_xlabel("points")
    ax.set_ylabel("students")
    ax.set_title(title)
    ax.yaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt_text(title, counts, maximum), quote=True)}">'
