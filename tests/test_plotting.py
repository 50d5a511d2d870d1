"""labkit.plotting on synthetic data: what each figure holds, input checks, and the
latent explorer's fallback. Every figure is also saved as PNG, so that rendering errors surface."""
import matplotlib

matplotlib.use("Agg")

import builtins
import statistics
import sys
import types

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from labkit import plotting

SEP = 29  # 28 pixels and a one-pixel separator


def save(fig, tmp_path, name="fig"):
    assert isinstance(fig, Figure)
    path = tmp_path / f"{name}.png"
    fig.savefig(path, dpi=40)
    assert path.stat().st_size > 0
    return path


def digit_images(n, seed=0):
    """n random images (n, 784), each with a distinctive first pixel (its index)."""
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, 784, generator=g)
    X[:, 0] = torch.arange(n) / 1000
    return X


def mosaic_of(ax):
    (im,) = ax.images
    return np.ma.filled(im.get_array().astype(float), np.nan)


@pytest.fixture(autouse=True)
def no_pyplot_leftovers():
    plt.close("all")
    yield
    assert plt.get_fignums() == [], "a plotting function left a figure open in pyplot"


def test_digit_colors_are_petroff10():
    """The palette itself; that it stays distinguishable is the accessibility tests' concern."""
    assert len(plotting.DIGIT_COLORS) == 10 == len(set(plotting.DIGIT_COLORS))
    if "petroff10" in matplotlib.color_sequences:  # matplotlib >= 3.10
        petroff10 = [matplotlib.colors.to_hex(c) for c in matplotlib.color_sequences["petroff10"]]
        assert [matplotlib.colors.to_hex(c) for c in plotting.DIGIT_COLORS] == petroff10


# --------------------------------------------------------------------------- show_images


def test_show_images_mosaic_holds_the_images(tmp_path):
    X = digit_images(7).requires_grad_()
    fig = plotting.show_images(X, nrow=3, title="seven")
    (ax,) = fig.axes
    m = mosaic_of(ax)
    assert m.shape == (3 * SEP - 1, 3 * SEP - 1)
    imgs = X.detach().reshape(-1, 28, 28).numpy()
    for i in range(7):
        r, c = divmod(i, 3)
        np.testing.assert_allclose(m[r * SEP:r * SEP + 28, c * SEP:c * SEP + 28], imgs[i], rtol=1e-6)
    assert np.isnan(m[28, :]).all() and np.isnan(m[:, 28]).all()  # separators
    assert np.isnan(m[2 * SEP:, 1 * SEP:]).all()  # the two empty cells of the last row
    assert fig._suptitle.get_text() == "seven"
    save(fig, tmp_path)


def test_show_images_numpy_3d_labels_and_many_images(tmp_path):
    X = digit_images(12).reshape(-1, 28, 28).numpy()
    fig = plotting.show_images(X, labels=np.arange(12) % 10)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.texts] == [str(d % 10) for d in range(12)]
    # the digit's colour, lightened where it would not stand out on the black of an MNIST image
    assert matplotlib.colors.to_hex(ax.texts[3].get_color()) == plotting.palette.text_color(plotting.DIGIT_COLORS[3], "black")
    save(fig, tmp_path, "labels")

    big = plotting.show_images(torch.rand(400, 784))
    assert len(big.axes) == 1 and len(big.axes[0].images) == 1  # one imshow, not 400 axes
    assert mosaic_of(big.axes[0]).shape == (20 * SEP - 1, 20 * SEP - 1)
    save(big, tmp_path, "big")


@pytest.mark.parametrize("shape", [(5, 100), (5, 28, 27), (784, 2), (2, 3, 4, 5)])
def test_show_images_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match=r"784 pixels per row \(28x28\).*got shape"):
        plotting.show_images(torch.zeros(shape))


def test_show_images_rejects_wrong_number_of_labels():
    with pytest.raises(ValueError, match="one entry per image"):
        plotting.show_images(torch.rand(4, 784), labels=[1, 2])


# --------------------------------------------------------------------------- encodings


def encodings(n=600, seed=0, dim=2):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    Z = torch.randn(n, dim, generator=g) + 3 * torch.stack([y.float().cos(), y.float().sin()], 1).repeat(1, dim // 2 + 1)[:, :dim]
    return Z, y


def scatter_points(ax):
    (coll,) = ax.collections
    return coll.get_offsets().data, coll.get_facecolors()[:, :3]


def test_plot_encodings_train_and_test(tmp_path):
    Z, y = encodings(600)
    Zt, yt = encodings(200, seed=1)
    fig = plotting.plot_encodings(Z.requires_grad_(), y, Zt.numpy(), yt.numpy(), title="PCA")
    assert len(fig.axes) == 2
    a, b = fig.axes
    assert a.get_xlim() == b.get_xlim() and a.get_ylim() == b.get_ylim()
    pts, cols = scatter_points(a)
    assert len(pts) == 600
    palette = np.array([matplotlib.colors.to_rgb(c) for c in plotting.DIGIT_COLORS])
    assert len(np.unique(cols.round(6), axis=0)) == 10  # ten digit groups
    # each point carries its digit's colour
    rows = {tuple(p): d for p, d in zip(Z.detach().numpy().astype(float).round(5), y.tolist())}
    for p, c in zip(pts.round(5), cols):
        np.testing.assert_allclose(c, palette[rows[tuple(p)]], atol=1e-6)
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == [str(d) for d in range(10)]
    assert a.get_xlabel() == "$z_1$" and a.get_ylabel() == "$z_2$"
    save(fig, tmp_path)


def test_plot_encodings_subsamples_deterministically(tmp_path):
    Z, y = encodings(3000)
    f1 = plotting.plot_encodings(Z, y, max_points=500, seed=3)
    f2 = plotting.plot_encodings(Z, y, max_points=500, seed=3)
    f3 = plotting.plot_encodings(Z, y, max_points=500, seed=4)
    p1, p2, p3 = (scatter_points(f.axes[0])[0] for f in (f1, f2, f3))
    assert len(p1) == 500 and len(f1.axes) == 1
    np.testing.assert_array_equal(p1, p2)
    assert not np.array_equal(p1, p3)
    assert len({tuple(r) for r in p1}) == 500  # without replacement
    save(f1, tmp_path)


def test_plot_encodings_more_than_two_dims_says_so(tmp_path):
    Z, y = encodings(100, dim=5)
    fig = plotting.plot_encodings(Z, y, title="VAE")
    assert "of 5 latent dimensions" in fig._suptitle.get_text()
    np.testing.assert_allclose(np.sort(scatter_points(fig.axes[0])[0][:, 0]), np.sort(Z[:, 0].numpy()), rtol=1e-6)
    save(fig, tmp_path)


def test_plot_encodings_checks_inputs():
    Z, y = encodings(50)
    with pytest.raises(ValueError, match=r"y_train must have shape \(50,\)"):
        plotting.plot_encodings(Z, y[:40])
    with pytest.raises(ValueError, match="digits 0-9"):
        plotting.plot_encodings(Z, y + 5)
    with pytest.raises(ValueError, match="M >= 2 columns"):
        plotting.plot_encodings(Z[:, :1], y)
    with pytest.raises(ValueError, match="y_test is missing"):
        plotting.plot_encodings(Z, y, Z)


def test_plot_mean_encodings_places_digits_at_means(tmp_path):
    Z, y = encodings(500)
    fig = plotting.plot_mean_encodings(Z, y)
    ax = fig.axes[0]
    texts = {t.get_text(): t.get_position() for t in ax.texts}
    assert sorted(texts) == [str(d) for d in range(10)]
    for d in range(10):
        np.testing.assert_allclose(texts[str(d)], Z[y == d].mean(0).numpy(), rtol=1e-5)
        assert matplotlib.colors.to_hex(ax.texts[d].get_color()) == plotting.DIGIT_COLORS[d]
    save(fig, tmp_path)

    fig2 = plotting.plot_mean_encodings(Z.numpy(), y.numpy(), ax=fig.axes[0], background=False)
    assert fig2 is fig and len(fig.axes[0].texts) == 20


def test_a_figure_of_the_students_own_is_shown_once():
    """Given axes of a pyplot figure (plt.subplots), the figure leaves pyplot's registry: Jupyter shows
    it as the cell's value only, not a second time as an open pyplot figure."""
    import matplotlib.pyplot as plt

    Z, y = encodings(200)
    fig, axes = plt.subplots(1, 2)
    assert plt.get_fignums() == [fig.number]
    assert plotting.plot_mean_encodings(Z, y, ax=axes[0]) is fig
    assert plt.get_fignums() == []
    assert plotting.plot_mean_encodings(Z, y, ax=axes[1]) is fig and len(axes[1].texts) == 10


# --------------------------------------------------------------------------- reconstructions, samples


def test_plot_reconstructions_rows_and_errors(tmp_path):
    X = digit_images(8)
    R1, R2 = (X * 0.5).requires_grad_(), (X.clamp(0.2, 0.8)).numpy()
    fig = plotting.plot_reconstructions(X, {"PCA": R1, "VAE": R2}, n=6, labels=torch.arange(8), title="t",
                                        show_errors=True)
    assert len(fig.axes) == 3
    assert [ax.get_ylabel() for ax in fig.axes] == ["original", "PCA", "VAE"]
    for ax, imgs in zip(fig.axes, (X, R1.detach(), torch.from_numpy(R2))):
        m = mosaic_of(ax)
        assert m.shape == (28, 6 * SEP - 1)
        for i in range(6):
            np.testing.assert_allclose(m[:, i * SEP:i * SEP + 28], imgs[i].reshape(28, 28).numpy(), rtol=1e-6)
    err = ((X[:6] - R1.detach()[:6]) ** 2).sum(1)
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == [f"{e:.1f}" for e in err.tolist()]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == [str(d) for d in range(6)]
    save(fig, tmp_path)

    single = plotting.plot_reconstructions(X.reshape(-1, 28, 28), X * 0.9)
    assert len(single.axes) == 2 and mosaic_of(single.axes[0]).shape == (28, 8 * SEP - 1)
    save(single, tmp_path, "single")


def test_plot_reconstructions_checks_inputs():
    X = digit_images(5)
    with pytest.raises(ValueError, match=r"reconstructions 'VAE' has 3 images, but 5 originals"):
        plotting.plot_reconstructions(X, {"VAE": X[:3]})
    with pytest.raises(ValueError, match="784 pixels per row"):
        plotting.plot_reconstructions(X, {"VAE": X[:, :700]})


def test_plot_samples_is_reproducible_and_restores_the_rng(tmp_path):
    calls = []

    def sample_fn(n, temperature):
        calls.append((n, temperature, torch.is_grad_enabled()))
        return torch.sigmoid(temperature * torch.randn(n, 784, requires_grad=True))

    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    fig = plotting.plot_samples(sample_fn, temperatures=(0.5, 1.0, 2), n=6, seed=7, title="samples")
    assert torch.equal(torch.rand(3), before), "plot_samples must leave the global random state alone"
    assert calls == [(6, 0.5, False), (6, 1.0, False), (6, 2.0, False)]
    assert [ax.get_title() for ax in fig.axes] == ["T = 0.5", "T = 1.0", "T = 2.0"]
    # the seed is set before each call: panel T equals sigmoid(T * same noise)
    torch.manual_seed(7)
    noise = torch.randn(6, 784)
    for ax, t in zip(fig.axes, (0.5, 1.0, 2.0)):
        m = mosaic_of(ax)
        assert m.shape == (2 * SEP - 1, 3 * SEP - 1)
        for i in range(6):
            r, c = divmod(i, 3)
            np.testing.assert_allclose(m[r * SEP:r * SEP + 28, c * SEP:c * SEP + 28],
                                       torch.sigmoid(t * noise[i]).reshape(28, 28).numpy(), rtol=1e-5)
    again = plotting.plot_samples(sample_fn, temperatures=(0.5, 1.0, 2), n=6, seed=7)
    np.testing.assert_array_equal(mosaic_of(again.axes[2]), mosaic_of(fig.axes[2]))
    save(fig, tmp_path)


def test_plot_samples_checks_the_output():
    with pytest.raises(ValueError, match="returned 5 images, expected 4"):
        plotting.plot_samples(lambda n, t: torch.rand(n + 1, 784), n=4)
    with pytest.raises(ValueError, match="784 pixels per row"):
        plotting.plot_samples(lambda n, t: torch.rand(n, 10), n=4)


# --------------------------------------------------------------------------- training curves


def test_plot_training_curves(tmp_path):
    hist = types.SimpleNamespace(train_loss=[3.0, 2.0, 1.5], test_loss=[3.2, 2.4, 2.0], seconds=1.0)
    fig = plotting.plot_training_curves({"VAE": hist, "PPCA": [5.0, 4.0], "NL": {"train_loss": [1, 0.5]}},
                                        title="loss", log=True)
    (ax,) = fig.axes
    lines = [l for l in ax.get_lines()]
    assert len(lines) == 4  # VAE train + test, PPCA, NL
    np.testing.assert_array_equal(lines[0].get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(lines[1].get_ydata(), [3.2, 2.4, 2.0])
    assert lines[0].get_linestyle() == "-" and lines[1].get_linestyle() == "--"
    assert lines[0].get_color() == lines[1].get_color() != lines[2].get_color()
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "epoch"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["VAE", "PPCA", "NL", "training", "test"]
    save(fig, tmp_path)

    one = plotting.plot_training_curves(np.array([-700.0, -800.0]), ylabel="negative ELBO")
    assert one.axes[0].get_ylabel() == "negative ELBO" and len(one.axes[0].get_lines()) == 1
    save(one, tmp_path, "one")


def test_plot_training_curves_checks_inputs():
    with pytest.raises(ValueError, match="log=True needs positive losses"):
        plotting.plot_training_curves([-1.0, -2.0], log=True)
    with pytest.raises(ValueError, match="no training losses"):
        plotting.plot_training_curves(types.SimpleNamespace(train_loss=[], test_loss=[]))
    with pytest.raises(TypeError, match="train_loss"):
        plotting.plot_training_curves({"x": object()})


# --------------------------------------------------------------------------- latent grid


class Decoder:
    """Records its calls; image k has pixel 0 = k/1000 and pixel 1 = z_1 of its point."""

    def __init__(self):
        self.calls = []

    def __call__(self, z):
        self.calls.append((z.clone(), torch.is_grad_enabled()))
        out = torch.zeros(len(z), 784, requires_grad=True) + 0.5
        out = out.clone()
        out.data[:, 0] = torch.arange(len(z)) / 1000
        return out


@pytest.mark.parametrize("quantiles", [False, True])
def test_plot_latent_grid_decodes_the_right_grid_once(tmp_path, quantiles):
    n, extent = 5, 2.0
    dec = Decoder()
    fig = plotting.plot_latent_grid(dec, n=n, extent=extent, quantiles=quantiles, title="grid")
    assert len(dec.calls) == 1
    z, grad = dec.calls[0]
    assert not grad and z.shape == (n * n, 2)
    if quantiles:
        v = [statistics.NormalDist().inv_cdf((i + 0.5) / n) for i in range(n)]
    else:
        v = [-extent + 2 * extent * i / (n - 1) for i in range(n)]
    expected = [(v[c], v[n - 1 - r]) for r in range(n) for c in range(n)]  # rows top to bottom: z_2 falls
    np.testing.assert_allclose(z.numpy(), expected, atol=1e-6)
    (ax,) = fig.axes
    m = mosaic_of(ax)
    assert m.shape == (n * 28, n * 28)  # seamless
    for k in range(n * n):
        r, c = divmod(k, n)
        assert m[r * 28, c * 28] == pytest.approx(k / 1000)
    assert ax.get_xlabel() == "$z_1$" and ax.get_ylabel() == "$z_2$"
    if not quantiles:  # the axes are in z coordinates
        assert ax.images[0].get_extent() == pytest.approx([-2.5, 2.5, -2.5, 2.5])
    save(fig, tmp_path)


def test_plot_latent_grid_higher_latent_dim_and_module_device(tmp_path):
    class Dec(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 784).double()
            self.seen = None

        def decode(self, z):
            self.seen = z
            return torch.sigmoid(self.lin(z))

    model = Dec()
    fig = plotting.plot_latent_grid(model.decode, n=4, latent_dim=4)
    assert model.seen.shape == (16, 4) and model.seen.dtype == torch.float64  # follows the model
    assert (model.seen[:, 2:] == 0).all()
    assert "z_{4} = 0" in fig._suptitle.get_text()
    save(fig, tmp_path)


def test_plot_latent_grid_checks_decoder_output():
    with pytest.raises(ValueError, match="returned 24 images for 25 latent points"):
        plotting.plot_latent_grid(lambda z: torch.zeros(len(z) - 1, 784), n=5)
    with pytest.raises(ValueError, match="784 pixels per row"):
        plotting.plot_latent_grid(lambda z: torch.zeros(len(z), 10), n=5)


# --------------------------------------------------------------------------- errors per digit


def test_plot_errors_per_digit(tmp_path):
    e = torch.linspace(10, 40, 10)
    fig = plotting.plot_errors_per_digit(e, title="errors")
    (ax,) = fig.axes
    np.testing.assert_allclose([p.get_height() for p in ax.patches], e.numpy())
    save(fig, tmp_path)

    grouped = plotting.plot_errors_per_digit({"PCA": e, "PPCA": e.numpy() / 2, "VAE": e / 3})
    ax = grouped.axes[0]
    assert len(ax.patches) == 30
    np.testing.assert_allclose([p.get_height() for p in ax.patches[10:20]], e.numpy() / 2, rtol=1e-6)
    assert [t.get_text() for t in grouped.legends[0].get_texts()] == ["PCA", "PPCA", "VAE"]
    save(grouped, tmp_path, "grouped")

    with pytest.raises(ValueError, match=r"errors\['VAE'\] must have one value per digit, shape \(10,\)"):
        plotting.plot_errors_per_digit({"VAE": torch.ones(9)})


# --------------------------------------------------------------------------- latent explorer


def test_latent_explorer_falls_back_without_ipywidgets(monkeypatch, capsys, tmp_path):
    real_import = builtins.__import__

    def no_ipywidgets(name, *args, **kwargs):
        if name == "ipywidgets" or name.startswith("ipywidgets."):
            raise ImportError("No module named 'ipywidgets'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "ipywidgets", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_ipywidgets)
    fig = plotting.latent_explorer(Decoder(), extent=2.0)
    assert isinstance(fig, Figure)
    assert capsys.readouterr().out.strip() == "ipywidgets is not available; showing a static grid instead"
    save(fig, tmp_path)


def test_latent_explorer_falls_back_without_a_kernel(capsys):
    pytest.importorskip("ipywidgets")
    fig = plotting.latent_explorer(Decoder())  # pytest runs no IPython kernel
    assert isinstance(fig, Figure)
    assert "showing a static grid instead" in capsys.readouterr().out


def test_latent_explorer_widget_with_a_faked_kernel(monkeypatch):
    widgets = pytest.importorskip("ipywidgets")
    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: types.SimpleNamespace(kernel=object()))
    dec = Decoder()
    box = plotting.latent_explorer(dec, latent_dim=2, extent=2.5)
    assert isinstance(box, widgets.Widget)
    controls, image, position = box.children
    sliders = [w for w in controls.children if isinstance(w, widgets.FloatSlider)]
    assert [s.description for s in sliders] == ["z₁", "z₂"] and sliders[0].max == 2.5
    assert image.value[:8] == b"\x89PNG\r\n\x1a\n" and position.value[:4] == b"\x89PNG"
    sliders[0].value = 1.25
    sliders[1].value = -0.5
    z, grad = dec.calls[-1]
    assert not grad and z.tolist() == [[1.25, -0.5]]
    old_position = position.value
    sliders[0].value = -2.0
    assert position.value != old_position

    five = plotting.latent_explorer(Decoder(), latent_dim=5)
    assert len(five.children) == 2  # no position panel beyond 2-D
    assert sum(isinstance(w, widgets.FloatSlider) for w in five.children[0].children) == 5


# --------------------------------------------------------------------------- drawing into given axes


def test_every_figure_function_takes_ax():
    import inspect

    names = [n for n in plotting.__all__ if n.startswith(("plot_", "show_"))]
    assert len(names) == 8
    for name in names:
        assert "ax" in inspect.signature(getattr(plotting, name)).parameters, name


def test_one_panel_figures_draw_into_the_given_axes():
    fig, axes = plt.subplots(2, 2)
    X = digit_images(6)
    assert plotting.show_images(X, nrow=3, title="six", ax=axes[0, 0]) is fig
    assert plt.get_fignums() == []  # the figure left pyplot's registry: Jupyter shows it once
    np.testing.assert_allclose(mosaic_of(axes[0, 0])[:28, :28], X[0].reshape(28, 28).numpy(), rtol=1e-6)
    assert axes[0, 0].get_title() == "six" and fig._suptitle is None
    assert plotting.plot_training_curves([3.0, 2.0], ax=axes[0, 1]) is fig
    np.testing.assert_array_equal(axes[0, 1].get_lines()[0].get_ydata(), [3.0, 2.0])
    assert plotting.plot_latent_grid(Decoder(), n=3, title="grid", ax=axes[1, 0]) is fig
    assert mosaic_of(axes[1, 0]).shape == (3 * 28, 3 * 28) and axes[1, 0].get_title() == "grid"
    e = torch.linspace(10, 40, 10)
    assert plotting.plot_errors_per_digit({"PCA": e, "VAE": e / 2}, ax=axes[1, 1]) is fig
    assert len(axes[1, 1].patches) == 20 and axes[1, 1].get_legend() is not None and not fig.legends
    assert len(fig.axes) == 4  # nothing added


def test_several_panel_figures_draw_into_given_axes_or_a_subfigure():
    Z, y = encodings(300)
    fig, axes = plt.subplots(1, 2)
    assert plotting.plot_encodings(Z, y, Z[:100], y[:100], title="PCA", ax=axes) is fig
    assert [len(scatter_points(ax)[0]) for ax in axes] == [300, 100]
    assert fig._suptitle.get_text() == "PCA" and len(fig.legends) == 1
    with pytest.raises(ValueError, match="a sequence of 2 Axes"):
        plotting.plot_encodings(Z, y, Z, y, ax=axes[0])

    root = plt.figure(layout="constrained")
    left, right = root.subfigures(1, 2)
    X = digit_images(5)
    assert plotting.plot_reconstructions(X, {"PCA": X * 0.5, "VAE": X}, title="rec", ax=left) is root
    assert [ax.get_ylabel() for ax in left.axes] == ["original", "PCA", "VAE"] and left._suptitle.get_text() == "rec"
    assert plotting.plot_samples(lambda n, t: torch.rand(n, 784), temperatures=(0.5, 1.0), n=4, ax=right) is root
    assert [ax.get_title() for ax in right.axes] == ["T = 0.5", "T = 1.0"]
    assert plt.get_fignums() == [] and len(root.axes) == 5

    _, three = plt.subplots(3, 1)
    plotting.plot_reconstructions(X, {"PCA": X * 0.5, "VAE": X}, ax=three)
    assert [ax.get_ylabel() for ax in three] == ["original", "PCA", "VAE"]
    with pytest.raises(TypeError, match="ax must be a matplotlib Axes"):
        plotting.show_images(X, ax="left")
