"""`labkit lab`: outputs, figures against independent references, determinism, bad input."""
import json
import re
import urllib.error

import numpy as np
import pytest
import torch

from labkit import cli, lab

TINY = dict(epochs=1, train_size=3000, iw_samples=5, progress=False, device="cpu")
MODELS = ["PCA", "PPCA (closed form)", "PPCA (gradient)", "Nonlinear model", "VAE"]
FIGURES = ["encodings_pca", "encodings_ppca", "encodings_vae", "reconstructions", "samples_vae", "latent_grid_vae",
           "training_curves", "errors_per_digit"]


def numbers(summary):
    """Every figure of a run, training times left out."""
    return [{k: v for k, v in m.items() if k != "train_seconds"} for m in summary["models"]]


@pytest.fixture(scope="module")
def tiny_run(mnist_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("lab")
    summary = lab.run(data_dir=mnist_root, out=out, seed=3, log=lambda *a: None, **TINY)
    return out, summary


def test_writes_table_figures_and_a_self_contained_report(tiny_run):
    out, summary = tiny_run
    saved = json.loads((out / "results.json").read_text())
    assert [m["name"] for m in saved["models"]] == MODELS
    assert saved["config"]["train_size"] == 3000 and saved["config"]["seed"] == 3
    csv_lines = (out / "results.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + len(MODELS)
    for name in FIGURES:
        png = (out / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 2000, name
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= len(FIGURES)
    # self-contained: no file, stylesheet or script is fetched from anywhere
    assert not re.search(r"""(src|href)=["'](?!data:|#)""", page)
    for name in MODELS:
        assert name in page


def test_figures_match_independent_references(tiny_run, mnist_root):
    from sklearn.decomposition import PCA as SkPCA

    from labkit.data import load_mnist

    _, summary = tiny_run
    X, _ = load_mnist("train", root=mnist_root)
    Xt, yt = load_mnist("test", root=mnist_root)
    X = X[:3000].double().numpy()
    Xt = Xt.double().numpy()
    sk = SkPCA(2).fit(X)
    errors = ((sk.inverse_transform(sk.transform(Xt)) - Xt) ** 2).sum(1)
    by_name = {m["name"]: m for m in summary["models"]}
    assert by_name["PCA"]["recon_error"] == pytest.approx(errors.mean(), rel=1e-4)
    per_digit = [errors[yt.numpy() == d].mean() for d in range(10)]
    assert by_name["PCA"]["recon_error_per_digit"] == pytest.approx(per_digit, rel=1e-4)
    # scikit-learn's PCA is the closed-form PPCA: score() is the mean log-likelihood. It estimates the
    # covariance with 1/(N-1), labkit with the maximum-likelihood 1/N: with N = 3000 that moves the
    # figure by about 1e-4 of its value (tests/test_ppca.py checks 1e-4 on all 60000 images).
    assert by_name["PPCA (closed form)"]["log_likelihood"] == pytest.approx(sk.score(Xt), rel=1e-3)
    vae = by_name["VAE"]
    assert vae["elbo"] <= vae["log_likelihood"] + 1.0  # the IW estimate is the tighter bound (K = 5, small noise)
    assert all(np.isfinite(m["train_seconds"]) for m in summary["models"])


def test_same_seed_same_numbers_on_cpu(tiny_run, mnist_root, tmp_path):
    _, first = tiny_run
    again = lab.run(data_dir=mnist_root, out=tmp_path, seed=3, log=lambda *a: None, **TINY)
    assert numbers(again) == numbers(first)
    other = lab.run(data_dir=mnist_root, out=tmp_path, seed=4, log=lambda *a: None, **TINY)
    assert numbers(other) != numbers(first)


def test_the_table_of_model_specifications_is_what_runs(mnist_root, tmp_path):
    assert [spec.name for spec in lab.MODELS] == MODELS
    only_pca = lab.run(data_dir=mnist_root, out=tmp_path, seed=3, log=lambda *a: None, models=lab.MODELS[:1], **TINY)
    assert [m["name"] for m in only_pca["models"]] == ["PCA"]
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["encodings_pca.png", "errors_per_digit.png",
                                                              "reconstructions.png"]
    assert len((tmp_path / "results.csv").read_text().splitlines()) == 2


def test_table_lists_every_model_with_time():
    results = [lab.ModelResult(n, recon_error=1.5, recon_error_per_digit=[1.0] * 10, train_seconds=2.0) for n in MODELS]
    table = lab.format_table(results)
    assert all(name in table for name in MODELS) and "train time" in table
    assert lab.format_per_digit(results).count("1.0") == 10 * len(MODELS)


@pytest.mark.parametrize("argv, complaint", [
    (["--epochs", "0"], "expected a positive whole number"),
    (["--latent-dim", "two"], "expected a positive whole number"),
    (["--lr", "-1"], "expected a positive number"),
    (["--device", "tpu"], "unknown device"),
    (["--seed", "-3"], "expected a whole number >= 0"),
    (["--bogus"], "unrecognized arguments"),
])
def test_bad_option_gets_a_usage_message_not_a_traceback(argv, complaint, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["lab", *argv])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: labkit") and complaint in err and "Traceback" not in err


def test_without_data_and_internet_it_stops_at_once(tmp_path, monkeypatch, capsys):
    import torchvision.datasets

    class OfflineMNIST:
        def __init__(self, *args, **kwargs):
            raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.datasets, "MNIST", OfflineMNIST)
    out = tmp_path / "results"
    code = cli.main(["lab", "--data-dir", str(tmp_path / "nowhere"), "--out", str(out), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("labkit: MNIST is not in") and "Fix it in one of three ways" in err
    assert "--data-dir /path/to/data" in err and "root=" not in err  # the command's flag, not the library's parameter
    assert not out.exists()  # nothing was trained or written


def test_device_option_refuses_cuda_without_a_gpu(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(SystemExit):
        cli.main(["lab", "--device", "cuda"])
    assert "no CUDA GPU is available" in capsys.readouterr().err
