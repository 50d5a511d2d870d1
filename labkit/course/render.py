"""Safe HTML from what students and instructors write: Markdown with mathematics, and cell outputs.

Owns: :func:`markdown_html`, :func:`math_html`, :func:`output_html`, :data:`PAGE_CSS` and
:data:`CSP`, shared by the marking page (``labkit mark``), the students' feedback pages and the
class report.

Mathematics (``$...$``, ``$$...$$``, ``\\(...\\)``, ``\\[...\\]``) becomes MathML on the server
(latex2mathml), which browsers draw natively: a page needs no script, no CDN and no bundled
copy of MathJax, and works opened from disk or inside a zip returned to a student.

Everything a student wrote, Markdown or a cell's output, is treated as hostile: the rendered
HTML is cleaned with an allowlist (nh3, the Python binding of the ammonia sanitiser), so no
``<script>``, event handler, ``javascript:`` address or ``<style>`` survives, and an image is
kept only as a ``data:`` URI (nothing is fetched from elsewhere). Pages also set :data:`CSP`.
"""
from __future__ import annotations

import base64
import html
import re

import nh3
from latex2mathml.converter import convert as _latex_to_mathml
from mistune import create_markdown

# The Content-Security-Policy of every page labkit writes: nothing loads, nothing runs; inline
# styles and data: images only. A served page adds 'self' for its own script and stylesheet.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

# Readable and accessible: system fonts, text contrast over 7:1, links underlined, a visible
# focus ring on everything focusable, math and wide outputs scroll instead of overflowing.
PAGE_CSS = """
body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1a1a1a;
       background: #ffffff; max-width: 60rem; margin: 0 auto; padding: 1rem 1.5rem; }
a { color: #0b4f9c; text-decoration: underline; }
:focus-visible { outline: 3px solid #b35900; outline-offset: 2px; }
pre, code { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: 0.9em; }
pre { background: #f4f4f4; color: #1a1a1a; padding: 0.5rem; overflow-x: auto; white-space: pre-wrap; }
pre.stderr { background: #fff4e5; }
pre.error { background: #fdecea; color: #5f1410; }
math[display="block"] { overflow-x: auto; overflow-y: hidden; }
img { max-width: 100%; height: auto; }
table { border-collapse: collapse; }
th, td { border: 1px solid #767676; padding: 0.25rem 0.5rem; text-align: left; }
"""

_MATHML_TAGS = {
    "math", "mrow", "mi", "mo", "mn", "ms", "mtext", "mspace", "msup", "msub", "msubsup", "mfrac",
    "msqrt", "mroot", "mtable", "mtr", "mtd", "mover", "munder", "munderover", "mstyle", "mpadded",
    "mphantom", "menclose", "mfenced", "merror", "mmultiscripts", "mprescripts", "none", "semantics",
}
_MATHML_ATTRIBUTES = {
    "display", "mathvariant", "xmlns", "stretchy", "fence", "separator", "separators", "lspace",
    "rspace", "linethickness", "columnalign", "rowalign", "columnspacing", "rowspacing", "accent",
    "accentunder", "movablelimits", "width", "height", "depth", "linebreak", "displaystyle",
    "scriptlevel", "minsize", "maxsize", "symmetric", "largeop", "form", "notation", "open", "close",
}
_HTML_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "details", "div", "dl",
    "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins",
    "kbd", "li", "ol", "p", "pre", "s", "samp", "small", "span", "strong", "sub", "summary", "sup",
    "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul", "var",
}
_ALLOWED_ATTRIBUTES = {
    "*": {"class", "title", "lang", "dir"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "th": {"colspan", "rowspan", "scope"},
    "td": {"colspan", "rowspan"},
    "ol": {"start"},
    **{tag: _MATHML_ATTRIBUTES for tag in _MATHML_TAGS},
}
_DATA_IMAGE = re.compile(r"data:image/(png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/=\s]*\Z")
_SAFE_HREF = re.compile(r"(https?:|mailto:|#)", re.IGNORECASE)


def _keep_attribute(element: str, attribute: str, value: str) -> str | None:
    """nh3's attribute filter: an image only from a data: URI (nothing is fetched), a link only
    to http(s), mailto or an anchor on the page."""
    if element == "img" and attribute == "src":
        return value if _DATA_IMAGE.match(value) else None
    if element == "a" and attribute == "href":
        return value if _SAFE_HREF.match(value.strip()) else None
    return value


def clean(fragment: str) -> str:
    """``fragment`` (HTML from anyone) with only the allowlisted tags and attributes left."""
    return nh3.clean(fragment, tags=_HTML_TAGS | _MATHML_TAGS, attributes=_ALLOWED_ATTRIBUTES,
                     attribute_filter=_keep_attribute, url_schemes={"http", "https", "mailto", "data"},
                     link_rel="noopener noreferrer nofollow", strip_comments=True)


def math_html(tex: str, display: bool = False) -> str:
    """The TeX ``tex`` as MathML (``display``: a block of its own). TeX that latex2mathml cannot
    read is kept as code, so the page still shows what was written."""
    try:
        mathml = _latex_to_mathml(tex, display="block" if display else "inline")
    except Exception:  # latex2mathml raises its own types, and IndexError on broken input
        return f'<code class="tex">{html.escape(tex)}</code>'
    return mathml


# Code first (a $ in code is not mathematics), then $$...$$, \[...\], \(...\), and $...$ that
# neither starts nor ends with a space (so "costs $5 and $6" stays text).
_MATH = re.compile(
    r"(?P<code>```.*?```|~~~.*?~~~|`[^`\n]+`)"
    r"|\$\$(?P<block>.+?)\$\$"
    r"|\\\[(?P<block2>.+?)\\\]"
    r"|\\\((?P<inline2>.+?)\\\)"
    r"|(?<![\\$\w])\$(?P<inline>[^\s$](?:[^$\n]|\n(?!\n))*?)(?<![\s\\])\$(?!\d)",
    re.DOTALL,
)
_PLACEHOLDER = "LABKITMATH{}X"
_markdown = create_markdown(escape=False, plugins=["table", "strikethrough"])


def markdown_html(text: str) -> str:
    """``text`` (Markdown, with TeX mathematics) as clean HTML: the mathematics as MathML, raw
    HTML and addresses filtered by :func:`clean`."""
    pieces: list[str] = []

    def protect(m: re.Match) -> str:
        if m.group("code") is not None:
            return m.group("code")
        block = m.group("block") or m.group("block2")
        tex = block if block is not None else (m.group("inline2") or m.group("inline"))
        pieces.append(math_html(tex.strip(), display=block is not None))
        return _PLACEHOLDER.format(len(pieces) - 1)

    rendered = _markdown(_MATH.sub(protect, text))
    for i, mathml in enumerate(pieces):
        rendered = rendered.replace(_PLACEHOLDER.format(i), mathml, 1)
    return clean(rendered)


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _pre(text: str, kind: str) -> str:
    return f'<pre class="{kind}">{html.escape(_ANSI.sub("", text))}</pre>'


def _image(mime: str, data, alt: str) -> str:
    payload = _text(data).strip()
    if mime == "image/svg+xml":  # an SVG drawn as an image runs no script and fetches nothing
        payload = base64.b64encode(payload.encode()).decode()
    return clean(f'<img src="data:{mime};base64,{payload}" alt="{html.escape(alt, quote=True)}">')


def output_html(output: dict, default_alt: str = "Figure from the notebook; no description") -> str:
    """One nbformat output of a code cell as clean HTML: streams, text and errors escaped (ANSI
    colours removed), HTML and Markdown cleaned, images as data: URIs whose alt text is the
    output's ``metadata["labkit"]["alt"]`` when labkit's plotting set one, else ``default_alt``."""
    kind = output.get("output_type")
    if kind == "stream":
        return _pre(_text(output.get("text", "")), "stderr" if output.get("name") == "stderr" else "stream")
    if kind == "error":
        trace = "\n".join(output.get("traceback") or [f"{output.get('ename')}: {output.get('evalue')}"])
        return _pre(trace, "error")
    if kind not in ("display_data", "execute_result"):
        return ""
    data = output.get("data") or {}
    alt = ((output.get("metadata") or {}).get("labkit") or {}).get("alt") or default_alt
    for mime in ("image/png", "image/jpeg", "image/svg+xml", "image/gif"):
        if mime in data:
            return _image(mime, data[mime], str(alt))
    if "text/html" in data:
        return f'<div class="output-html">{clean(_text(data["text/html"]))}</div>'
    if "text/markdown" in data:
        return f'<div class="output-markdown">{markdown_html(_text(data["text/markdown"]))}</div>'
    if "text/latex" in data:
        return markdown_html(_text(data["text/latex"]))
    if "text/plain" in data:
        return _pre(_text(data["text/plain"]), "stream")
    return ""
