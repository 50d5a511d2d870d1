"""A labkit figure shown in Jupyter: its image output carries the figure's description as alt text.

Owns: :func:`attach` and :func:`bundle`. Every figure a ``plot_*``/``show_*`` function returns gets
an ``_ipython_display_`` hook (``attach``), so that showing it (the last expression of a cell,
``display(fig)``) publishes what IPython would have shown, computed by IPython's own formatters
(the inline backend's PNG, drawn once, with its settings, so the figure looks the same), and adds:

- ``metadata["labkit"]["alt"]``: ``describe(fig)`` (labkit's contract 4, read by
  ``labkit.course.render.output_html`` in the pages labkit writes);
- ``text/html``: the same PNG as ``<img alt="...">``, because JupyterLab and Notebook 7 draw a PNG
  output without alt text and prefer HTML when there is some.

Where IPython shows no image of a figure (a kernel with ``MPLBACKEND=Agg``, as the autograder's),
nothing is added: the output stays IPython's own text.
"""
from __future__ import annotations

import base64
import functools
import html

from labkit.plotting.describe import describe


def attach(fig):
    """Give ``fig`` the display hook (once); returns ``fig``."""
    if not isinstance(getattr(fig, "_ipython_display_", None), functools.partial):
        fig._ipython_display_ = functools.partial(_show, fig)
    return fig


def bundle(fig, formatters: dict) -> tuple[dict, dict]:
    """(data, metadata) of ``fig`` from IPython's per-type ``formatters`` ({mime type: formatter}),
    with the alt text and the HTML image added when a PNG is among them."""
    data, metadata = {}, {}
    for mime, formatter in formatters.items():
        out = formatter(fig)
        if isinstance(out, tuple) and len(out) == 2:
            out, meta = out
            if meta:
                metadata[mime] = meta
        if out is not None:
            data[mime] = out
    png = data.get("image/png")
    if png is not None:
        alt = describe(fig)
        if isinstance(png, bytes):
            png = data["image/png"] = base64.b64encode(png).decode("ascii")
        size = "".join(f' {k}="{int(v)}"' for k, v in (metadata.get("image/png") or {}).items()
                       if k in ("width", "height"))
        data["text/html"] = f'<img src="data:image/png;base64,{png}" alt="{html.escape(alt, quote=True)}"{size}>'
        metadata["labkit"] = {"alt": alt}
    return data, metadata


def _show(fig) -> None:
    from IPython import get_ipython
    from IPython.display import publish_display_data

    data, metadata = bundle(fig, get_ipython().display_formatter.formatters)
    publish_display_data(data, metadata)
