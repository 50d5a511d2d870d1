"""The palettes: one colour and one marker per digit 0..9, so that no figure needs colour alone.

Owns: :data:`DIGIT_COLORS` (matplotlib's ``petroff10``: Petroff's ten-colour sequence, chosen to
stay distinguishable under the common colour-vision deficiencies), :data:`DIGIT_MARKERS` (a filled
marker shape per digit, the second channel of every scatter plot and its legend),
:func:`marker_paths` (those shapes as paths, one per point, for a single scatter collection),
:func:`text_color` (a digit's colour for text, darkened or lightened to a 4.5:1 contrast), and the
models' :data:`MODEL_COLORS`, :data:`MODEL_MARKERS` and :data:`MODEL_HATCHES` (curves and grouped bars).
The colours are written out here (they are matplotlib's since 3.10, and the test checks that they
match) so that older matplotlib versions draw the same figures.
labkit's accessibility tests (kept with the instructor's tests) check that the ten colours stay
apart under simulated deuteranopia, protanopia and tritanopia, and that ``tab10`` (the palette
before) does not.
"""
from __future__ import annotations

import numpy as np

#: One colour per digit 0..9 (matplotlib's petroff10), used by every figure.
DIGIT_COLORS: list[str] = [
    "#3f90da", "#ffa90e", "#bd1f01", "#94a4a2", "#832db6",
    "#a96b59", "#e76300", "#b9ac70", "#717581", "#92dadd",
]
#: One filled marker per digit 0..9: circle, square, triangle up, diamond, triangle down, plus,
#: cross, star, pentagon, hexagon. Every scatter plot of digits and its legend draws them.
DIGIT_MARKERS: list[str] = ["o", "s", "^", "D", "v", "P", "X", "*", "p", "h"]
#: Colours of models (training curves, grouped bars): Dark2, so that a model is never mistaken for a digit.
MODEL_COLORS: list[str] = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]
#: The second channel of models: a marker on each model's training curve, a hatch on its bars.
MODEL_MARKERS: list[str] = ["o", "s", "^", "D", "v", "P", "X", "*"]
MODEL_HATCHES: list[str] = ["", "///", "...", "xxx", "\\\\\\", "+++", "ooo", "---"]


def contrast(a, b) -> float:
    """WCAG 2.1's contrast ratio of two colours, from 1 (the same) to 21 (black on white)."""
    from matplotlib.colors import to_rgb

    def luminance(c):
        lin = [x / 12.92 if x <= 0.04045 else ((x + 0.055) / 1.055) ** 2.4 for x in to_rgb(c)]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def text_color(color, background, ratio: float = 4.5) -> str:
    """``color`` for text on ``background``: itself when it contrasts enough (WCAG AA, 4.5:1), else
    mixed with black (on a light background) or white (on a dark one) until it does, so the hue stays."""
    from matplotlib.colors import to_hex, to_rgb

    rgb, towards = np.asarray(to_rgb(color)), np.ones(3) if contrast(background, "black") < 10 else np.zeros(3)
    for t in np.linspace(0.0, 1.0, 41):
        mixed = to_hex((1 - t) * rgb + t * towards)
        if contrast(mixed, background) >= ratio:
            return mixed
    return to_hex(towards)


def marker_paths(digits: np.ndarray) -> list:
    """The marker path of each digit in ``digits`` (N,), in points (scatter's marker units): give them
    to a scatter's ``set_paths`` so that one collection (one drawing order) draws every digit's shape."""
    from matplotlib.markers import MarkerStyle

    shapes = []
    for m in DIGIT_MARKERS:
        style = MarkerStyle(m)
        shapes.append(style.get_path().transformed(style.get_transform()))
    return [shapes[d] for d in np.asarray(digits, dtype=np.int64)]
