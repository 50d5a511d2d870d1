"""The digit palette: one colour and one marker per digit 0..9, so that no figure needs colour alone.

Owns: :data:`MODEL_COLORS`, :data:`MODEL_MARKERS` and :data:`MODEL_HATCHES` (models in curves and
grouped bars: a colour and a marker or hatch each), :data:`DIGIT_COLORS` (matplotlib's ``petroff10``: Petroff's ten-colour sequence, chosen to stay
distinguishable under the common colour-vision deficiencies), :data:`DIGIT_MARKERS` (a filled marker
shape per digit, the second channel of every scatter plot and its legend) and
:func:`marker_paths` (those shapes as paths, one per point, for a single scatter collection).
The colours are written out here (they are matplotlib's since 3.10, and the test checks that they
match) so that older matplotlib versions draw the same figures.
``tests/test_accessibility.py`` checks that the ten colours stay apart under simulated
deuteranopia, protanopia and tritanopia, and that ``tab10`` (the palette before) does not.
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


def marker_paths(digits: np.ndarray) -> list:
    """The marker path of each digit in ``digits`` (N,), in points (scatter's marker units): give them
    to a scatter's ``set_paths`` so that one collection (one drawing order) draws every digit's shape."""
    from matplotlib.markers import MarkerStyle

    shapes = []
    for m in DIGIT_MARKERS:
        style = MarkerStyle(m)
        shapes.append(style.get_path().transformed(style.get_transform()))
    return [shapes[d] for d in np.asarray(digits, dtype=np.int64)]
