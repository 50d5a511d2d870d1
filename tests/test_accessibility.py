"""Accessible figures: a digit palette that survives colour-vision deficiencies, a second channel
(a marker per digit), a description of every figure in words, the alt text it becomes in Jupyter
and in report.html, and the explorer's images described. The pages in a browser (axe, keyboard)
are tests/test_accessibility_browser.py's.

Colour distances are CAM02-UCS (colorspacious), after simulating each deficiency at severity 100
(Machado, Oliveira and Fernandes 2009: full deuteranopia, protanopia, tritanopia).
"""
import matplotlib

matplotlib.use("Agg")

import itertools
import types
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from labkit import plotting
from labkit.plotting.describe import number, plain

# A CAM02-UCS distance of about 1 is a just-noticeable difference between two large patches side
# by side. The digits are small marks scattered apart, and the ten must be told apart at a glance,
# not merely noticed to differ; categorical palettes aim for 10 and more. petroff10's smallest
# distance is 14.5 (protanopia); tab10's, the palette before, is 4.3 (deuteranopia), 1.6
# (protanopia: its green and orange become one colour) and 9.4 (tritanopia), all below 10.
MIN_DISTANCE = 10.0
DEFICIENCIES = ["deuteranomaly", "protanomaly", "tritanomaly"]  # severity 100: the -opias
TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def min_distance(colors, deficiency: str | None) -> float:
    """The smallest CAM02-UCS distance between two of ``colors`` as seen with ``deficiency``."""
    from colorspacious import cspace_convert

    rgb = np.array([matplotlib.colors.to_rgb(c) for c in colors])
    if deficiency:
        cvd = {"name": "sRGB1+CVD", "cvd_type": deficiency, "severity": 100}
        rgb = np.clip(cspace_convert(rgb, cvd, "sRGB1"), 0, 1)
    ucs = cspace_convert(rgb, "sRGB1", "CAM02-UCS")
    return min(float(np.linalg.norm(ucs[i] - ucs[j])) for i, j in itertools.combinations(range(len(colors)), 2))


@pytest.mark.parametrize("deficiency", [None, *DEFICIENCIES])
def test_digit_colours_stay_apart_under_colour_vision_deficiencies(deficiency):
    assert min_distance(plotting.DIGIT_COLORS, deficiency) > MIN_DISTANCE


@pytest.mark.parametrize("deficiency", DEFICIENCIES)
def test_the_check_fails_on_tab10(deficiency):
    """The test above, on the palette labkit used before: it falls below the threshold."""
    assert min_distance(TAB10, deficiency) < MIN_DISTANCE


def test_the_simulation_is_a_real_one():
    """colorspacious' protanopia maps red and green (tab10's 3 and 2) close together, white onto itself."""
    from colorspacious import cspace_convert

    cvd = {"name": "sRGB1+CVD", "cvd_type": "protanomaly", "severity": 100}
    np.testing.assert_allclose(cspace_convert([1.0, 1.0, 1.0], cvd, "sRGB1"), [1, 1, 1], atol=1e-3)
    assert min_distance(["#d62728", "#2ca02c"], "protanomaly") < 0.5 * min_distance(["#d62728", "#2ca02c"], None)


# --------------------------------------------------------------------------- the second channel


def encodings(n=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    return torch.randn(n, 2, generator=g) + 3 * torch.stack([y.float().cos(), y.float().sin()], 1), y


def test_every_digit_has_its_own_marker_in_the_scatter_and_legend():
    assert len(set(plotting.DIGIT_MARKERS)) == 10
    Z, y = encodings()
    fig = plotting.plot_encodings(Z, y)
    (points,) = fig.axes[0].collections
    paths, offsets = points.get_paths(), points.get_offsets()
    assert len(paths) == len(offsets) == len(y)
    digit_of = {tuple(np.round(p, 5)): d for p, d in zip(Z.numpy().astype(float), y.tolist())}
    shapes = {}
    for path, offset in zip(paths, offsets):
        shapes.setdefault(digit_of[tuple(np.round(offset, 5))], set()).add(path.vertices.round(4).tobytes())
    assert sorted(shapes) == list(range(10)) and all(len(s) == 1 for s in shapes.values())  # one shape per digit
    assert len({next(iter(s)) for s in shapes.values()}) == 10  # ten different shapes
    legend = fig.legends[0]
    assert [h.get_marker() for h in legend.legend_handles] == plotting.DIGIT_MARKERS


def test_models_have_a_marker_on_their_curves_and_a_hatch_on_their_bars():
    histories = {name: SimpleNamespace(train_loss=[3.0, 2.0, 1.0], test_loss=[]) for name in ("PCA", "VAE")}
    lines = plotting.plot_training_curves(histories).axes[0].get_lines()
    assert [line.get_marker() for line in lines] == plotting.palette.MODEL_MARKERS[:2]
    legend = plotting.plot_training_curves(histories).axes[0].get_legend()
    assert [h.get_marker() for h in legend.legend_handles][:2] == plotting.palette.MODEL_MARKERS[:2]
    bars = plotting.plot_errors_per_digit({"PCA": torch.ones(10), "VAE": torch.ones(10)}).axes[0].patches
    assert {b.get_hatch() or "" for b in bars[:10]} != {b.get_hatch() or "" for b in bars[10:]}


def test_mean_encodings_and_labels_show_the_digit_itself():
    Z, y = encodings()
    ax = plotting.plot_mean_encodings(Z, y).axes[0]
    assert sorted(t.get_text() for t in ax.texts) == [str(d) for d in range(10)]
    labelled = plotting.show_images(torch.rand(10, 784), labels=torch.arange(10)).axes[0]
    assert [t.get_text() for t in labelled.texts] == [str(d) for d in range(10)]


def test_digit_text_contrasts_with_its_background():
    """Digits written as text keep WCAG AA's 4.5:1: tick labels on white, image labels on MNIST's black."""
    from labkit.plotting.palette import contrast

    on_white = [plotting.plot_errors_per_digit(torch.ones(10)).axes[0].get_xticklabels(),
                plotting.plot_reconstructions(X[:10], X[:10], n=10, labels=torch.arange(10)).axes[0].get_xticklabels()]
    on_black = plotting.show_images(torch.zeros(10, 784), labels=torch.arange(10)).axes[0].texts
    for labels, background in ((on_white[0], "white"), (on_white[1], "white"), (on_black, "black")):
        assert len(labels) == 10
        for label in labels:
            assert contrast(label.get_color(), background) >= 4.5, (label.get_text(), label.get_color(), background)
    assert min(contrast(c, "white") for c in plotting.DIGIT_COLORS) < 2  # the palette itself would not


# --------------------------------------------------------------------------- descriptions


W = torch.linspace(-2.0, 2.0, 2 * 784).reshape(2, 784)


def decode(z):
    return torch.sigmoid(z.float() @ W)


def history(train, test=None):
    return SimpleNamespace(train_loss=train, test_loss=test or [])


# Every plot_* and show_* function: (call, words its description must hold besides its axes').
Z, Y = encodings()
X = torch.rand(12, 784, generator=torch.Generator().manual_seed(1))
CASES = {
    "show_images": (lambda: plotting.show_images(X, nrow=4, labels=torch.arange(12) % 10),
                    ["grid of 12 images", "3 rows of 4", "labelled 0, 1, 2"]),
    "plot_encodings": (lambda: plotting.plot_encodings(Z, Y, Z[:50], Y[:50]), ["Scatter plot", "marker shape"]),
    "plot_mean_encodings": (lambda: plotting.plot_mean_encodings(Z, Y), ["mean encoding", "0 at ("]),
    "plot_reconstructions": (lambda: plotting.plot_reconstructions(X, {"PCA": X * 0.5}, n=6, labels=Y[:6],
                                                                   show_errors=True),
                             ["6 images", "reconstructions by PCA", "mean squared error: PCA"]),
    "plot_samples": (lambda: plotting.plot_samples(lambda n, t: torch.rand(n, 784) * t, temperatures=(0.5, 1.0), n=4),
                     ["temperature 0.5, 1.0", "4 images"]),
    "plot_training_curves": (lambda: plotting.plot_training_curves({"VAE": history([200.0, 150.0], [210.0, 160.0])}),
                             ["Line chart", "VAE training from 200 to 150, test from 210 to 160 over 2 epochs"]),
    "plot_latent_grid": (lambda: plotting.plot_latent_grid(decode, n=5), ["5 by 5 grid", "from -3 to 3"]),
    "plot_errors_per_digit": (lambda: plotting.plot_errors_per_digit(torch.arange(10.0) + 1),
                              ["Bar chart", "highest for digit 9 (10)", "lowest for digit 0 (1)"]),
}


def test_every_figure_function_has_a_case():
    assert set(CASES) == {n for n in plotting.__all__ if n.startswith(("plot_", "show_"))}


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_figure_is_described_with_its_axes_and_ranges(name):
    call, words = CASES[name]
    fig = call()
    text = plotting.describe(fig)
    assert fig._labkit_alt and text == plotting.describe(fig)
    for word in words:
        assert word in text, f"{name}: {word!r} not in {text!r}"
    for ax in fig.axes:  # every labelled axis with ticks: its name and the range the reader sees
        for which, axis, limits in (("x", ax.xaxis, ax.get_xlim()), ("y", ax.yaxis, ax.get_ylim())):
            label = plain(axis.get_label().get_text())
            if label and len(axis.get_ticklocs()):
                assert f"{which} axis {label} from" in text, f"{name}: no {which} axis in {text!r}"
                labels = [t.get_text() for t in axis.get_ticklabels()]
                if not any(labels):  # numbers: the limits
                    lo, hi = sorted(limits)
                    assert f"from {number(lo)} to {number(hi)}" in text, text


def test_a_description_names_z1_and_z2_and_follows_the_axes_the_caller_changed():
    fig = plotting.plot_mean_encodings(*encodings())
    ax = fig.axes[0]
    assert "x axis z1 from" in plotting.describe(fig) and "y axis z2 from" in plotting.describe(fig)
    ax.set_xlim(-5, 5)
    assert "x axis z1 from -5 to 5" in plotting.describe(fig)


def test_a_figure_of_several_calls_is_described_by_each():
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2)
    plotting.plot_mean_encodings(*encodings(), ax=a)
    plotting.plot_training_curves([3.0, 2.0, 1.0], ax=b)
    text = plotting.describe(fig)
    assert text.index("mean encoding") < text.index("Line chart") and "x axis epoch" in text
    plotting.plot_training_curves([5.0, 4.0], ax=b)  # drawn again into b: described once
    assert plotting.describe(fig).count("Line chart") == 1


def test_a_figure_labkit_did_not_draw_is_described_from_its_axes():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    ax.plot([0, 10], [1, 2])
    ax.set_xlabel("$\\beta$ value")
    ax.set_xlim(0, 10)
    assert plotting.describe(fig).startswith("A figure of 1 panel. x axis beta value from 0 to 10")
    assert plain("$z_3 = \\dots = z_{5} = 0$") == "z3 = ... = z5 = 0"


# --------------------------------------------------------------------------- alt text in Jupyter and in HTML


def png_formatters(with_png: bool):
    """IPython's formatters as a kernel has them, with (inline backend) or without (Agg) a PNG of a Figure."""
    from IPython.core.formatters import DisplayFormatter
    from matplotlib.figure import Figure

    formatters = DisplayFormatter().formatters
    if with_png:
        def png(fig):
            import base64
            import io

            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=20)
            return base64.b64encode(buf.getvalue()).decode()

        formatters["image/png"].for_type(Figure, png)
    return formatters


def test_a_shown_figure_carries_its_description_as_alt_text():
    from labkit.course.render import output_html

    fig = plotting.plot_mean_encodings(*encodings())
    data, metadata = plotting.display.bundle(fig, png_formatters(with_png=True))
    alt = plotting.describe(fig)
    assert metadata["labkit"] == {"alt": alt}
    assert data["image/png"] and data["text/plain"].startswith("<Figure")
    escaped = alt.replace('"', "&quot;").replace("'", "&#x27;")
    assert data["text/html"] == f'<img src="data:image/png;base64,{data["image/png"]}" alt="{escaped}">'
    output = {"output_type": "display_data", "data": data, "metadata": metadata}
    assert f'alt="{alt}"' in output_html(output, default_alt="none")  # contract 4, read back by render


def test_without_an_image_nothing_is_added():
    fig = plotting.plot_mean_encodings(*encodings())
    data, metadata = plotting.display.bundle(fig, png_formatters(with_png=False))
    assert set(data) == {"text/plain"} and metadata == {}


def test_ipython_shows_a_labkit_figure_through_the_hook():
    """The last expression of a cell and display(fig) both publish the bundle with the alt text."""
    from IPython.core.displaypub import CapturingDisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell
    from matplotlib.figure import Figure

    shell = InteractiveShell.instance()
    try:
        shell.display_pub = CapturingDisplayPublisher()
        shell.display_formatter.formatters["image/png"].for_type(Figure, lambda f: "iVBORw0KGgo=")
        shell.user_ns["fig"] = plotting.plot_training_curves([3.0, 2.0])
        shell.run_cell("fig", store_history=False)
        shell.run_cell("from IPython.display import display\ndisplay(fig)", store_history=False)
        outputs = shell.display_pub.outputs
        assert len(outputs) == 2
        for out in outputs:
            assert out["metadata"]["labkit"]["alt"].startswith("Line chart of the loss per epoch")
            assert out["data"]["image/png"] == "iVBORw0KGgo=" and 'alt="Line chart' in out["data"]["text/html"]
    finally:
        InteractiveShell.clear_instance()


# --------------------------------------------------------------------------- report.html and the explorer


def test_report_html_has_landmarks_skip_link_and_descriptive_alt_text(tmp_path):
    from labkit import report

    figs = report._Figures(tmp_path)
    fig = plotting.plot_errors_per_digit(torch.arange(10.0) + 1)
    alt = plotting.describe(fig)
    figs.save(fig, "errors.png", "Which digits each model reconstructs well")
    result = SimpleNamespace(name="PCA", recon_error=1.0, recon_error_per_digit=[1.0] * 10, log_likelihood=None,
                             log_likelihood_kind="", elbo=None, train_seconds=0.5)
    report.write_report(tmp_path, [result], {"seed": 0}, figs.captions)
    page = (tmp_path / "report.html").read_text()
    assert '<html lang="en">' in page and page.count("<main") == 1 and 'id="main"' in page
    assert page.index('href="#main"') < page.index("<main")
    assert f'alt="{alt}"' in page and "<figcaption>Which digits each model reconstructs well</figcaption>" in page
    assert ":focus-visible" in page and '<th scope="col">' in page


def test_the_explorer_images_say_what_they_show(monkeypatch):
    widgets = pytest.importorskip("ipywidgets")
    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: types.SimpleNamespace(kernel=object()))
    box = plotting.latent_explorer(decode, latent_dim=2, extent=2.5)
    controls, image, position = box.children
    sliders = [w for w in controls.children if isinstance(w, widgets.FloatSlider)]
    assert image.tooltip == "Image decoded from z = (0.00, 0.00)" and "latent plane" in position.tooltip
    sliders[0].value = 1.25
    assert image.tooltip == "Image decoded from z = (1.25, 0.00)" and "(1.25, 0.00)" in position.tooltip
