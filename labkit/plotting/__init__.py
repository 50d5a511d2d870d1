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
- Every ``plot_*`` and ``show_*`` function takes ``ax=``: axes of your own figure
  (``fig, axes = plt.subplots(1, 2)``) to draw into; that figure then leaves pyplot's
  registry too, and is returned. A figure of several panels (``plot_encodings``,
  ``plot_reconstructions``, ``plot_samples``) takes a sequence of one Axes per panel,
  or a Figure or SubFigure (``fig.subfigures(1, 2)[0]``) to make its panels in.

Digits have the same colour and marker everywhere: ``DIGIT_COLORS[d]`` (matplotlib's petroff10,
distinguishable under the common colour-vision deficiencies) and ``DIGIT_MARKERS[d]``, so that no
figure needs colour alone. Every figure has a description in words (what is plotted, the axes and
their ranges): ``describe(fig)``; in Jupyter it is the alt text of the figure's image.
Images are drawn with the grey scale fixed to [0, 1] (pixel values), so that
images in one figure are comparable; pass ``vmin=None, vmax=None`` to scale
each figure to its data instead. Integer images (uint8, 0..255) are divided by 255.

Owns the figures, one module per kind: ``images`` (image grids, reconstructions,
samples), ``latent`` (encodings, mean encodings, the latent grid), ``curves`` (training
curves, errors per digit), ``explorer`` (the ipywidgets latent explorer); ``_common``
holds the style, the input checks and the figure helpers they share, ``palette`` the digits' colours and
markers, ``describe`` the figures' descriptions and ``display`` how Jupyter shows them (with alt text). The numbers
behind the figures (``per_digit_mean``, ``squared_errors``) are ``labkit.metrics``'.
"""
from labkit.metrics import per_digit_mean  # kept here for notebooks written before labkit.metrics
from labkit.plotting._common import DIGIT_COLORS, DIGIT_MARKERS, MODEL_COLORS
from labkit.plotting.describe import describe
from labkit.plotting.curves import plot_errors_per_digit, plot_training_curves
from labkit.plotting.explorer import latent_explorer
from labkit.plotting.images import plot_reconstructions, plot_samples, show_images
from labkit.plotting.latent import latent_grid_points, plot_encodings, plot_latent_grid, plot_mean_encodings

__all__ = [
    "DIGIT_COLORS",
    "DIGIT_MARKERS",
    "describe",
    "show_images",
    "plot_encodings",
    "plot_mean_encodings",
    "plot_reconstructions",
    "plot_samples",
    "plot_training_curves",
    "plot_latent_grid",
    "plot_errors_per_digit",
    "latent_explorer",
]
