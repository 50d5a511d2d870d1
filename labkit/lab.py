"""`labkit lab`: the whole lab, headless, with one comparison table and a report.

Trains PCA, PPCA (closed form and gradient-trained), the nonlinear decoder
model and the VAE on MNIST with the lab's defaults (latent dimension 2,
batch 500, Adam with learning rate 0.01, 20 epochs), then prints, for every
model, the average squared test reconstruction error (overall and per digit),
the test log-likelihood in nats per image and the training time. Writes the
table (CSV and JSON), the figures (PNG) and one self-contained HTML report
into the output folder.

    labkit lab                      # the full run
    labkit lab --quick              # a first look in well under a minute
    labkit lab --epochs 5 --latent-dim 4 --out results/m4
"""
from __future__ import annotations

import argparse
import base64
import csv
import html
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from labkit.plotting import per_digit_mean

DIGITS = range(10)
# --quick: 400 Adam steps per model (20000 images, batch 500, 10 epochs), the fewest with which the
# VAE already reconstructs clearly better than PCA and gradient-trained PPCA nears its closed form.
QUICK = dict(train_size=20000, epochs=10, iw_samples=50)


# --------------------------------------------------------------------------- options


def _number(kind: type, accept, expected: str):
    """An argparse type: ``kind(text)`` when ``accept`` takes it, else an error that says ``expected``."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, lambda v: v >= 1, "a positive whole number")
_nonnegative_int = _number(int, lambda v: v >= 0, "a whole number >= 0")
_positive_float = _number(float, lambda v: 0 < v < float("inf"), "a positive number")


def _device(text: str) -> torch.device:
    from labkit.data import default_device

    if text == "auto":
        return default_device()
    try:
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; use auto, cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError("--device cuda, but no CUDA GPU is available here; use cpu or auto")
    return device


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "lab",
        help="run the whole lab headless and write a comparison report",
        description=__doc__.split("\n\n")[1],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--latent-dim", type=_positive_int, default=2, help="latent dimension M of every model")
    p.add_argument("--epochs", type=_positive_int, default=None, help="epochs of every gradient-trained model (default: 20, or 10 with --quick)")
    p.add_argument("--batch-size", type=_positive_int, default=500, help="minibatch size")
    p.add_argument("--lr", type=_positive_float, default=0.01, help="Adam learning rate")
    p.add_argument("--device", type=_device, default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--data-dir", metavar="DIR", help="folder holding MNIST/raw (default: $LABKIT_DATA, else data/)")
    p.add_argument("--out", type=Path, default=Path("results"), help="output folder")
    p.add_argument("--seed", type=_nonnegative_int, default=0, help="random seed; the same seed gives the same numbers on CPU")
    p.add_argument("--train-size", type=_positive_int, default=None, help="use only the first N training images (default: all 60000, or 20000 with --quick)")
    p.add_argument("--iw-samples", type=_positive_int, default=None, help="importance samples K for the VAE's log-likelihood estimate (default 200, or 50 with --quick)")
    p.add_argument("--quick", action="store_true", help="a first look in under 30 s: fewer images, epochs and samples")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run_from_args)


# --------------------------------------------------------------------------- results


@dataclass
class ModelResult:
    name: str
    recon_error: float | None = None  # mean over test images of sum over pixels of (x - x~)^2
    recon_error_per_digit: list[float] | None = None
    log_likelihood: float | None = None  # nats per test image: exact (PPCA) or estimate
    log_likelihood_kind: str = ""
    elbo: float | None = None
    train_seconds: float = 0.0
    history: dict = field(default_factory=dict)


def squared_errors(X: torch.Tensor, X_rec: torch.Tensor) -> torch.Tensor:
    """Squared reconstruction error of each image, summed over its 784 pixels: (N,)."""
    return ((X - X_rec) ** 2).sum(dim=1)


def _chunked(fn, X: torch.Tensor, chunk: int = 2000) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([fn(X[i : i + chunk]) for i in range(0, len(X), chunk)])


def _reconstruction(result: ModelResult, reconstruct, X, y) -> None:
    err = squared_errors(X, _chunked(reconstruct, X).to(X.device)).cpu()
    result.recon_error = err.mean().item()
    result.recon_error_per_digit = per_digit_mean(err.double(), y.cpu()).tolist()


# --------------------------------------------------------------------------- the run


def run(
    *,
    latent_dim: int = 2,
    epochs: int = 20,
    batch_size: int = 500,
    lr: float = 0.01,
    device: torch.device | str = "cpu",
    data_dir=None,
    out: Path = Path("results"),
    seed: int = 0,
    train_size: int | None = None,
    iw_samples: int = 200,
    progress: bool = True,
    log=print,
) -> dict:
    """Train every model, write table, figures and report into ``out``; return the summary dict."""
    from labkit.data import load_mnist
    from labkit.models import PCA, PPCA, VAE, NonlinearModel
    from labkit.train import fit

    device = torch.device(device)
    started = time.perf_counter()
    X, y = load_mnist("train", root=data_dir)  # fails at once, before any work, when data is missing
    Xt, yt = load_mnist("test", root=data_dir)
    if train_size is not None:
        X, y = X[:train_size], y[:train_size]
    log(f"MNIST: {len(X)} training and {len(Xt)} test images; latent dimension {latent_dim}; device {device}")
    Xt_dev = Xt.to(device)
    budget = dict(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device, progress=progress)
    results: list[ModelResult] = []
    models = {}

    # PCA ------------------------------------------------------------------
    torch.manual_seed(seed)
    r = ModelResult("PCA")
    t0 = time.perf_counter()
    pca = PCA(latent_dim).fit(X)
    r.train_seconds = time.perf_counter() - t0
    _reconstruction(r, pca.reconstruct, Xt, yt)
    results.append(r)
    models["PCA"] = pca

    # PPCA, closed form ----------------------------------------------------
    r = ModelResult("PPCA (closed form)")
    t0 = time.perf_counter()
    ppca = PPCA(latent_dim, data_dim=X.shape[1]).fit(X)
    r.train_seconds = time.perf_counter() - t0
    _reconstruction(r, ppca.reconstruct, Xt, yt)
    r.log_likelihood = _chunked(ppca.log_likelihood, Xt).mean().item()
    r.log_likelihood_kind = "exact"
    results.append(r)
    models["PPCA (closed form)"] = ppca

    # PPCA, gradient-trained ---------------------------------------------
    torch.manual_seed(seed)
    r = ModelResult("PPCA (gradient)")
    ppca_sgd = PPCA(latent_dim, data_dim=X.shape[1])
    hist = fit(ppca_sgd, X, X_test=Xt, desc="PPCA", **budget)
    ppca_sgd = ppca_sgd.cpu().eval()
    r.train_seconds, r.history = hist.seconds, _history(hist)
    _reconstruction(r, ppca_sgd.reconstruct, Xt, yt)
    r.log_likelihood = _chunked(ppca_sgd.log_likelihood, Xt).mean().item()
    r.log_likelihood_kind = "exact"
    results.append(r)
    models["PPCA (gradient)"] = ppca_sgd

    # Nonlinear decoder model ----------------------------------------------
    torch.manual_seed(seed)
    r = ModelResult("Nonlinear model")
    nonlinear = NonlinearModel(latent_dim=latent_dim, data_dim=X.shape[1])
    hist = fit(nonlinear, X, X_test=Xt, desc="Nonlinear", **budget)
    nonlinear = nonlinear.eval()
    r.train_seconds, r.history = hist.seconds, _history(hist)
    torch.manual_seed(seed)
    r.log_likelihood = _chunked(nonlinear.log_likelihood, Xt_dev).mean().item()
    r.log_likelihood_kind = f"Monte Carlo, K={nonlinear.n_samples} prior samples"
    results.append(r)
    models["Nonlinear model"] = nonlinear.cpu()

    # VAE -----------------------------------------------------------------
    torch.manual_seed(seed)
    r = ModelResult("VAE")
    vae = VAE(latent_dim=latent_dim, data_dim=X.shape[1])
    hist = fit(vae, X, X_test=Xt, desc="VAE", **budget)
    vae = vae.eval()
    r.train_seconds, r.history = hist.seconds, _history(hist)
    _reconstruction(r, vae.reconstruct, Xt_dev, yt.to(device))
    torch.manual_seed(seed)
    r.elbo = _chunked(vae.elbo, Xt_dev).mean().item()
    torch.manual_seed(seed)
    r.log_likelihood = _chunked(lambda x: vae.log_likelihood(x, n_samples=iw_samples), Xt_dev, chunk=500).mean().item()
    r.log_likelihood_kind = f"importance-weighted, K={iw_samples}"
    results.append(r)
    models["VAE"] = vae.cpu()

    config = dict(
        latent_dim=latent_dim, epochs=epochs, batch_size=batch_size, lr=lr, device=str(device), seed=seed,
        train_size=len(X), test_size=len(Xt), iw_samples=iw_samples, torch=torch.__version__,
        python=platform.python_version(), machine=platform.machine(),
    )
    summary = {"config": config, "models": [vars(r) for r in results]}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _write_tables(out, results, config)
    figures = _write_figures(out, models, results, X, y, Xt, yt, seed)
    _write_report(out, results, config, figures)
    summary["seconds"] = time.perf_counter() - started
    log("")
    log(format_table(results))
    log("")
    log(format_per_digit(results))
    log(f"\nWrote {out / 'results.csv'}, {out / 'results.json'}, {len(figures)} figures and {out / 'report.html'} "
        f"({summary['seconds']:.1f} s in all)")
    return summary


def _history(hist) -> dict:
    return {"train_loss": list(hist.train_loss), "test_loss": list(hist.test_loss)}


# --------------------------------------------------------------------------- tables


def _fmt(value, spec=".2f") -> str:
    return "-" if value is None else format(value, spec)


COLUMNS = ["model", "recon. error", "test log-lik. (nats)", "test ELBO (nats)", "train time (s)"]


def _rows(results):
    return [
        [r.name, _fmt(r.recon_error), _fmt(r.log_likelihood, ".1f"), _fmt(r.elbo, ".1f"), _fmt(r.train_seconds, ".1f")]
        for r in results
    ]


def _text_table(header, rows) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


def format_table(results) -> str:
    """The main table: one row per model."""
    notes = [f"  {r.name}: log-likelihood {r.log_likelihood_kind}" for r in results if r.log_likelihood_kind]
    return (
        _text_table(COLUMNS, _rows(results))
        + "\nrecon. error: mean over test images of the squared error summed over 784 pixels\n"
        + "\n".join(notes)
    )


def format_per_digit(results) -> str:
    """Average squared test reconstruction error per digit, one row per model."""
    rows = [[r.name, *(f"{e:.1f}" for e in r.recon_error_per_digit)] for r in results if r.recon_error_per_digit]
    return "reconstruction error per digit\n" + _text_table(["model", *map(str, DIGITS)], rows)


def _write_tables(out: Path, results, config) -> None:
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "recon_error", *(f"recon_error_digit_{d}" for d in DIGITS), "log_likelihood",
                    "log_likelihood_kind", "elbo", "train_seconds"])
        for r in results:
            per = r.recon_error_per_digit or [None] * 10
            w.writerow([r.name, r.recon_error, *per, r.log_likelihood, r.log_likelihood_kind, r.elbo, r.train_seconds])
    payload = {"config": config, "models": [vars(r) for r in results]}
    (out / "results.json").write_text(json.dumps(payload, indent=2) + "\n")


# --------------------------------------------------------------------------- figures and report


def _write_figures(out: Path, models, results, X, y, Xt, yt, seed) -> dict[str, str]:
    """Save the lab's figures as PNG; returns {file name: caption}."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from labkit import plotting

    figures: dict[str, str] = {}

    def save(fig, name, caption):
        fig.savefig(out / name, dpi=110)
        figures[name] = caption
        try:
            import matplotlib.pyplot as plt

            plt.close(fig)
        except Exception:
            pass

    n_show = 5000
    with torch.no_grad():
        encoders = {
            "PCA": models["PCA"].encode,
            "PPCA (closed form)": lambda x: models["PPCA (closed form)"].encode(x)[0],
            "VAE": lambda x: models["VAE"].encode(x)[0],
        }
        for name, encode in encoders.items():
            slug = name.split()[0].lower()
            save(plotting.plot_encodings(encode(X[:n_show]), y[:n_show], encode(Xt[:n_show]), yt[:n_show],
                                         title=f"{name}: encodings of training and test images"),
                 f"encodings_{slug}.png", f"{name}: 2-D encodings coloured by digit (training left, test right)")
        recon = {name: models[name].reconstruct(Xt[:12]) for name in ("PCA", "PPCA (closed form)", "VAE")}
        save(plotting.plot_reconstructions(Xt[:12], recon, n=12, title="Test images and their reconstructions"),
             "reconstructions.png", "Originals (top) and reconstructions by each model")
        for name in ("PPCA (closed form)", "Nonlinear model", "VAE"):
            slug = name.split()[0].lower()
            model = models[name]
            save(plotting.plot_samples(lambda n, t, m=model: m.sample(n, temperature=t), seed=seed,
                                       title=f"{name}: samples from the prior at several temperatures"),
                 f"samples_{slug}.png", f"{name}: samples at temperatures 0.5, 1.0 and 1.5")
            if model_latent_dim(model) == 2:
                save(plotting.plot_latent_grid(model.decode, title=f"{name}: decoded latent grid"),
                     f"latent_grid_{slug}.png", f"{name}: images decoded from a grid of latent points z")
    histories = {r.name: _Hist(**r.history) for r in results if r.history}
    if histories:
        save(plotting.plot_training_curves(histories, title="Training (solid) and test (dashed) loss"),
             "training_curves.png", "Loss per epoch: negative log-likelihood or negative ELBO, nats per image")
    errors = {r.name: torch.tensor(r.recon_error_per_digit) for r in results if r.recon_error_per_digit}
    save(plotting.plot_errors_per_digit(errors, title="Average squared test reconstruction error per digit"),
         "errors_per_digit.png", "Which digits each model reconstructs well")
    return figures


@dataclass
class _Hist:
    train_loss: list
    test_loss: list


def model_latent_dim(model) -> int:
    for attr in ("latent_dim", "n_components"):
        if hasattr(model, attr):
            return int(getattr(model, attr))
    return 0


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-weight:600} h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:1em 0;font-variant-numeric:tabular-nums}
th,td{padding:.35em .8em;border-bottom:1px solid #e5e5e5;text-align:right} th:first-child,td:first-child{text-align:left}
th{background:#f6f6f6} figure{margin:1.5em 0} figure img{max-width:100%;border:1px solid #eee}
figcaption{color:#555;font-size:.95em} .note{color:#555;font-size:.9em} code{background:#f3f3f3;padding:0 .2em}
"""


def _html_table(header, rows) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _write_report(out: Path, results, config, figures: dict[str, str]) -> None:
    per_digit_rows = [[r.name, *(f"{e:.1f}" for e in r.recon_error_per_digit)] for r in results if r.recon_error_per_digit]
    kinds = "".join(f"<li>{html.escape(r.name)}: {html.escape(r.log_likelihood_kind)}</li>" for r in results if r.log_likelihood_kind)
    figs = []
    for name, caption in figures.items():
        data = base64.b64encode((out / name).read_bytes()).decode()
        figs.append(f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    cfg = ", ".join(f"{k} = {v}" for k, v in config.items())
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>labkit lab report</title><style>{_CSS}</style></head>
<body>
<h1>Unsupervised learning with variational autoencoders: lab report</h1>
<p class="note">{html.escape(cfg)}</p>
<h2>Models on the MNIST test set</h2>
{_html_table(COLUMNS, _rows(results))}
<p class="note">Reconstruction error: mean over the test images of the squared error summed over the 784 pixels.
Log-likelihoods in nats per image:</p><ul class="note">{kinds}</ul>
<h2>Reconstruction error per digit</h2>
{_html_table(["model", *map(str, DIGITS)], per_digit_rows)}
<h2>Figures</h2>
{''.join(figs)}
</body></html>
"""
    (out / "report.html").write_text(page)


# --------------------------------------------------------------------------- command line


def run_from_args(args) -> int:
    quick = args.quick
    run(
        latent_dim=args.latent_dim,
        epochs=args.epochs or (QUICK["epochs"] if quick else 20),
        batch_size=args.batch_size,
        lr=args.lr,
        device=args.device,
        data_dir=args.data_dir,
        out=args.out,
        seed=args.seed,
        train_size=args.train_size or (QUICK["train_size"] if quick else None),
        iw_samples=args.iw_samples or (QUICK["iw_samples"] if quick else 200),
        progress=not args.no_progress,
    )
    return 0
