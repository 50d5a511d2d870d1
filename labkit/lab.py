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
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from labkit.errors import OptionError
from labkit.metrics import per_digit_mean, squared_errors
from labkit.report import format_per_digit, format_table, write_figures, write_report, write_tables

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


# --------------------------------------------------------------------------- checks of the options


def _whole(low: int, high: float = float("inf")):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


# parameter: (accepts the value, what is expected); the latent dimension is at most the 784 pixels of an image
_LIMITS: dict[str, tuple[Callable, str]] = {
    "latent_dim": (_whole(1, 784), "a whole number from 1 to 784 (the pixels of an image)"),
    "epochs": (_whole(1), "a positive whole number"),
    "batch_size": (_whole(1), "a positive whole number"),
    "lr": (lambda v: isinstance(v, (int, float)) and 0 < v < float("inf"), "a positive number"),
    "seed": (_whole(0), "a whole number >= 0"),
    "train_size": (lambda v: v is None or _whole(1)(v), "a positive whole number (or None: all 60000)"),
    "iw_samples": (_whole(1), "a positive whole number"),
}


def check_options(options: dict, *, flags: bool = False) -> None:
    """Raise OptionError for the first value out of range, named as a parameter (``latent_dim=``)
    or, with ``flags=True``, as the command line's flag (``--latent-dim``)."""
    for name, value in options.items():
        if name in _LIMITS and not _LIMITS[name][0](value):
            spelled = "--" + name.replace("_", "-") if flags else f"{name}="
            raise OptionError(f"{spelled} must be {_LIMITS[name][1]}, got {value!r}")


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


def _chunked(fn, X: torch.Tensor, chunk: int = 2000) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([fn(X[i : i + chunk]) for i in range(0, len(X), chunk)])


def _reconstruction(result: ModelResult, reconstruct, X, y) -> None:
    err = squared_errors(X, _chunked(reconstruct, X).to(X.device)).cpu()
    result.recon_error = err.mean().item()
    result.recon_error_per_digit = per_digit_mean(err.double(), y.cpu()).tolist()


# --------------------------------------------------------------------------- the models


@dataclass(frozen=True)
class ModelSpec:
    """One model of ``labkit lab``: how it is built and trained, what is measured, which figures show it.

    ``build(latent_dim, data_dim, seed)`` makes it, its initial weights drawn from ``seed`` alone; a model with a
    ``desc`` is trained by ``labkit.train.fit`` (``desc`` labels the progress bar), one without
    by its own closed-form ``model.fit(X)``. ``log_likelihood(model, x, iw_samples)`` (nats per
    image) and the ELBO are estimated after ``torch.manual_seed(seed)``, in chunks of ``chunk``
    images, on the training device when ``on_device``, else on the CPU.
    """

    name: str
    build: Callable[[int, int, int], torch.nn.Module]
    desc: str | None = None
    on_device: bool = False
    reconstructs: bool = True
    log_likelihood: Callable | None = None
    log_likelihood_kind: Callable[[torch.nn.Module, int], str] | None = None
    chunk: int = 2000
    elbo: bool = False
    encode: Callable | None = None  # (model, X) -> Z (N, M): an encodings figure
    in_reconstructions: bool = False  # a row of the reconstructions figure
    samples: bool = False  # samples at three temperatures (and the latent grid when M = 2)


def _models():
    from labkit.models import PCA, PPCA, VAE, NonlinearModel

    exact = lambda model, iw: "exact"
    return (
        ModelSpec("PCA", lambda M, D, s: PCA(M),
                  encode=lambda m, x: m.encode(x), in_reconstructions=True),
        ModelSpec("PPCA (closed form)", lambda M, D, s: PPCA(M, data_dim=D, seed=s),
                  log_likelihood=lambda m, x, iw: m.log_likelihood(x), log_likelihood_kind=exact,
                  encode=lambda m, x: m.encode(x)[0], in_reconstructions=True, samples=True),
        ModelSpec("PPCA (gradient)", lambda M, D, s: PPCA(M, data_dim=D, seed=s), desc="PPCA",
                  log_likelihood=lambda m, x, iw: m.log_likelihood(x), log_likelihood_kind=exact),
        ModelSpec("Nonlinear model", lambda M, D, s: NonlinearModel(latent_dim=M, data_dim=D, seed=s), desc="Nonlinear",
                  on_device=True, reconstructs=False,
                  log_likelihood=lambda m, x, iw: m.log_likelihood(x),
                  log_likelihood_kind=lambda m, iw: f"Monte Carlo, K={m.n_samples} prior samples", samples=True),
        ModelSpec("VAE", lambda M, D, s: VAE(latent_dim=M, data_dim=D, seed=s), desc="VAE", on_device=True, elbo=True,
                  log_likelihood=lambda m, x, iw: m.log_likelihood(x, n_samples=iw), chunk=500,
                  log_likelihood_kind=lambda m, iw: f"importance-weighted, K={iw}",
                  encode=lambda m, x: m.encode(x)[0], in_reconstructions=True, samples=True),
    )


#: The models of ``labkit lab``, in the order of its table.
MODELS: tuple[ModelSpec, ...] = _models()


def _train(spec: ModelSpec, X, Xt, latent_dim: int, seed: int, budget: dict):
    """(model, result): the model built and trained, the result with its training time (and losses)."""
    from labkit.train import fit

    result = ModelResult(spec.name)
    model = spec.build(latent_dim, X.shape[1], seed)
    if spec.desc is None:
        t0 = time.perf_counter()
        model.fit(X)
        result.train_seconds = time.perf_counter() - t0
        return model, result
    hist = fit(model, X, X_test=Xt, desc=spec.desc, seed=seed, **budget)
    result.train_seconds = hist.seconds
    result.history = {"train_loss": list(hist.train_loss), "test_loss": list(hist.test_loss)}
    return (model.eval() if spec.on_device else model.cpu().eval()), result


def _evaluate(spec: ModelSpec, model, result: ModelResult, Xt, yt, seed: int, iw_samples: int) -> None:
    """The test measures of ``spec`` into ``result``: reconstruction error, ELBO, log-likelihood."""
    if spec.reconstructs:
        _reconstruction(result, model.reconstruct, Xt, yt)
    if spec.elbo:
        torch.manual_seed(seed)
        result.elbo = _chunked(model.elbo, Xt).mean().item()
    if spec.log_likelihood is not None:
        torch.manual_seed(seed)
        result.log_likelihood = _chunked(lambda x: spec.log_likelihood(model, x, iw_samples), Xt,
                                         chunk=spec.chunk).mean().item()
        result.log_likelihood_kind = spec.log_likelihood_kind(model, iw_samples)


def _load(data_dir, train_size, log, latent_dim, device):
    """(X, y, X_test, y_test) of MNIST, the training set cut to ``train_size``; fails at once when data is missing."""
    from labkit.data import load_mnist

    X, y = load_mnist("train", root=data_dir)
    Xt, yt = load_mnist("test", root=data_dir)
    if train_size is not None:
        X, y = X[:train_size], y[:train_size]
    log(f"MNIST: {len(X)} training and {len(Xt)} test images; latent dimension {latent_dim}; device {device}")
    return X, y, Xt, yt


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
    models: tuple[ModelSpec, ...] = MODELS,
) -> dict:
    """Train every model of ``models``, write table, figures and report into ``out``; return the summary dict.

    Raises OptionError for a value out of range (naming the parameter), ``labkit.data.MNISTError``
    when MNIST cannot be loaded (before any training)."""
    check_options(dict(latent_dim=latent_dim, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                       train_size=train_size, iw_samples=iw_samples))
    device = torch.device(device)
    started = time.perf_counter()
    X, y, Xt, yt = _load(data_dir, train_size, log, latent_dim, device)
    test_on = {"cpu": (Xt, yt), "device": (Xt.to(device), yt.to(device))}
    budget = dict(epochs=epochs, batch_size=batch_size, lr=lr, device=device, progress=progress)
    results: list[ModelResult] = []
    trained = {}
    for spec in models:
        model, result = _train(spec, X, Xt, latent_dim, seed, budget)
        _evaluate(spec, model, result, *test_on["device" if spec.on_device else "cpu"], seed, iw_samples)
        results.append(result)
        trained[spec.name] = model.cpu() if spec.on_device else model

    config = dict(
        latent_dim=latent_dim, epochs=epochs, batch_size=batch_size, lr=lr, device=str(device), seed=seed,
        train_size=len(X), test_size=len(Xt), iw_samples=iw_samples, torch=torch.__version__,
        python=platform.python_version(), machine=platform.machine(),
    )
    summary = {"config": config, "models": [vars(r) for r in results]}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_tables(out, results, config)
    figures = write_figures(out, models, trained, results, (X, y, Xt, yt), seed)
    write_report(out, results, config, figures)
    summary["seconds"] = time.perf_counter() - started
    _log_summary(log, out, results, figures, summary["seconds"])
    return summary


def _log_summary(log, out: Path, results, figures, seconds: float) -> None:
    log("")
    log(format_table(results))
    log("")
    log(format_per_digit(results))
    log(f"\nWrote {out / 'results.csv'}, {out / 'results.json'}, {len(figures)} figures and {out / 'report.html'} "
        f"({seconds:.1f} s in all)")


# --------------------------------------------------------------------------- command line


def run_from_args(args) -> int:
    quick = args.quick
    options = dict(
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
    check_options(options, flags=True)
    from labkit.data import MNISTNotFoundError

    try:
        run(**options)
    except MNISTNotFoundError as e:
        raise e.for_command_line("--data-dir") from None
    return 0
