"""labkit.course.render: Markdown and mathematics as clean HTML, cell outputs as clean HTML.

The checks on what survives are made with the standard library's HTML parser, independently of
the sanitiser: no script or style element, no event-handler attribute, no address that runs code
or fetches from elsewhere."""
from __future__ import annotations

import base64
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from labkit.course.render import CSP, markdown_html, math_html, output_html

pytest.importorskip("latex2mathml")

SOLUTIONS = Path(__file__).resolve().parent.parent / "solutions"

HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<a href='javascript:alert(1)'>click</a>",
    "<a href=' JaVaScRiPt:alert(1)'>click</a>",
    "<svg onload=alert(1)><circle r=5 /></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<iframe src='https://example.org'></iframe>",
    "<style>body { background: url(https://example.org/x.png) }</style>",
    "![tracker](https://example.org/pixel.png)",
    "<div style='background:url(https://example.org/x)'>x</div>",
    "<form action='https://example.org'><input name=a></form>",
    r"$\text{<script>alert(1)</script>}$",
    "<object data='https://example.org/x.swf'></object>",
    "<a href='data:text/html,<script>alert(1)</script>'>x</a>",
]


class Elements(HTMLParser):
    """Every start tag and its attributes."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def elements(fragment: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Elements()
    parser.feed(fragment)
    return parser.tags


def assert_inert(fragment: str) -> None:
    """Nothing in ``fragment`` runs or loads from elsewhere."""
    for tag, attrs in elements(fragment):
        assert tag not in {"script", "style", "iframe", "object", "embed", "form", "input", "link", "meta", "base"}, fragment
        for name, value in attrs.items():
            assert not name.startswith("on"), fragment
            assert name != "style", fragment
            if name in ("src", "href", "action", "data", "xlink:href") and value:
                v = value.strip().lower()
                assert not v.startswith(("javascript:", "vbscript:")), fragment
                if name == "src":
                    assert v.startswith("data:image/"), fragment
                if name == "href":
                    assert v.startswith(("http:", "https:", "mailto:", "#")), fragment


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_markdown_is_inert(text):
    assert_inert(markdown_html(text))


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_html_outputs_are_inert(text):
    out = {"output_type": "display_data", "data": {"text/html": text, "text/plain": "x"}, "metadata": {}}
    assert_inert(output_html(out))
    md = {"output_type": "display_data", "data": {"text/markdown": text}, "metadata": {}}
    assert_inert(output_html(md))


def test_mathematics_becomes_mathml_and_dollars_in_code_or_prices_stay_text():
    page = markdown_html(r"The SVD $\mathbf{X} = \mathbf{U}\boldsymbol{\Sigma}\mathbf{V}^\top$; "
                         r"`$x$` in code; it costs $5 and $6; escaped \$7." "\n\n"
                         r"$$\log p(\mathbf{x}) \ge \mathcal{L}$$")
    tags = [t for t, _ in elements(page)]
    assert tags.count("math") == 2
    assert ("math", {"xmlns": "http://www.w3.org/1998/Math/MathML", "display": "block"}) in elements(page)
    assert "\\mathbf" not in page and "\\log" not in page
    assert "<code>$x$</code>" in page
    assert "costs $5 and $6" in page and "escaped $7" in page


def test_every_formula_of_the_solution_notebooks_converts():
    """Each $...$ of the instructor's Markdown cells gives MathML, not the fallback code."""
    count = 0
    for path in sorted(SOLUTIONS.glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "markdown":
                page = markdown_html("".join(cell["source"]))
                assert 'class="tex"' not in page, (path.name, "".join(cell["source"])[:200])
                count += page.count("<math")
    assert count > 100


def test_unreadable_tex_is_kept_as_code():
    for tex in (r"\frac{1}{", r"\left( x", "x^", r"\begin{matrix} a < b"):
        assert math_html(tex) == f'<code class="tex">{tex.replace("<", "&lt;")}</code>'
    page = markdown_html(r"a broken formula $x^$ stays readable")
    assert '<code class="tex">x^</code>' in page


def test_outputs():
    png = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
    image = {"output_type": "display_data", "data": {"image/png": png + "\n", "text/plain": "<Figure>"},
             "metadata": {"labkit": {"alt": 'Scatter of "z"'}}}
    assert elements(output_html(image)) == [("img", {"src": f"data:image/png;base64,{png}", "alt": 'Scatter of "z"'})]
    image["metadata"] = {}
    assert elements(output_html(image, default_alt="Figure 2 of cell 5; no description"))[0][1]["alt"] == \
        "Figure 2 of cell 5; no description"
    svg = {"output_type": "display_data", "data": {"image/svg+xml": "<svg onload='alert(1)'/>"}, "metadata": {}}
    (tag, attrs), = elements(output_html(svg))
    assert tag == "img" and attrs["src"].startswith("data:image/svg+xml;base64,")
    stderr = {"output_type": "stream", "name": "stderr", "text": ["\x1b[31mUserWarning <b>\x1b[0m\n"]}
    assert output_html(stderr) == '<pre class="stderr">UserWarning &lt;b&gt;\n</pre>'
    error = {"output_type": "error", "ename": "CheckFailed", "evalue": "x",
             "traceback": ["\x1b[0;31mCheckFailed\x1b[0m: expected 2, got <1>"]}
    assert output_html(error) == '<pre class="error">CheckFailed: expected 2, got &lt;1&gt;</pre>'
    text = {"output_type": "execute_result", "data": {"text/plain": "tensor([1, 2])"}, "metadata": {}}
    assert output_html(text) == '<pre class="stream">tensor([1, 2])</pre>'


def test_the_policy_loads_and_runs_nothing():
    assert "default-src 'none'" in CSP and "script-src" not in CSP
