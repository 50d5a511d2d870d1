"""Students' HTML made inert in the autograded notebooks that feedback pages and the formgrader show.

Owns: :func:`sanitize_notebook`. nbgrader's feedback template renders written
answers (markdown) without nbconvert's ``clean_html``, and the formgrader shows
the same notebooks inside the instructor's Jupyter server. So the class
course's autograded copies are cleaned once, before either sees them: in every
markdown cell the student could write (not the locked ones, which nbgrader
restores from the instructor's originals) HTML is passed through nbconvert's
``clean_html`` (bleach: scripts, event handlers, iframes ... escaped, so they
show as text); in every output, JavaScript and SVG are dropped and HTML and
markdown are cleaned the same way. The submitted copies and the scores are
not touched.
"""
from __future__ import annotations

from pathlib import Path

from labkit.course.intake.repair import nbgrader_meta

ACTIVE = ("application/javascript", "text/javascript", "image/svg+xml")
CLEANED = ("text/html", "text/markdown")


def _clean(text) -> str:
    from nbconvert.filters.strings import clean_html

    text = "".join(text) if isinstance(text, list) else str(text)
    return clean_html(text) if "<" in text else text


def sanitize_notebook(path: Path) -> int:
    """Clean the notebook at ``path`` in place; returns how many cells and outputs changed."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    changed = 0
    for cell in nb.cells:
        meta = nbgrader_meta(cell) or {}
        if cell.cell_type == "markdown" and not (meta.get("locked") and not meta.get("solution")):
            clean = _clean(cell.source)
            changed += clean != cell.source
            cell.source = clean
        for out in cell.get("outputs", []):
            data = out.get("data")
            if not isinstance(data, dict):
                continue
            for mime in [m for m in data if m in ACTIVE or "javascript" in m]:
                del data[mime]
                changed += 1
            for mime in CLEANED:
                if mime in data:
                    clean = _clean(data[mime])
                    changed += clean != data[mime]
                    data[mime] = clean
            if not data:
                data["text/plain"] = "[labkit: active content removed]"
    if changed:
        nbformat.write(nb, path)
    return changed
