"""What `labkit lab` writes and prints: the comparison tables (text, CSV, JSON), the figures
(PNG) and one self-contained HTML report.

Owns the output files of ``labkit lab`` (``results.csv``, ``results.json``, the figures,
``report.html``) and the text tables it prints. Takes the results as records with the
fields of ``labkit.lab.ModelResult`` and the trained models by name; imports from labkit
only ``labkit.plotting`` (for the figures, lazily).
"""
from __future__ import annotations

import base64
import csv
import html
import json
from dataclasses import dataclass
from pathlib import Path

import torch

DIGITS = range(10)
COLUMNS = ["model", "recon. error", "test log-lik. (nats)", "test ELBO (nats)", "train time (s)"]
N_SHOWN = 5000  # encodings drawn per data set in the figures


# --------------------------------------------------------------------------- text tables


def _fmt(value, spec=".2f") -> str:
    return "-" if value is None else format(value, spec)


def _rows(results):
    return [
        [r.name, _fmt(r.recon_error), _fmt(r.log_likelihood, ".1f"), _fmt(r.elbo, ".1f"), _fmt(r.train_seconds, ".1f")]
        for r in results
    ]


def _per_digit_rows(results):
    return [[r.name, *(f"{e:.1f}" for e in r.recon_error_per_digit)] for r in results if r.recon_error_per_digit]


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
    return "reconstruction error per digit\n" + _text_table(["model", *map(str, DIGITS)], _per_digit_rows(results))


def write_tables(out: Path, results, config) -> None:
    """``results.csv`` (one row per model) and ``results.json`` (the config and every result)."""
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "recon_error", *(f"recon_error_digit_{d}" for d in DIGITS), "log_likelihood",
                    "log_likelihood_kind", "elbo", "train_seconds"])
        for r in results:
            per = r.recon_error_per_digit or [None] * 10
            w.writerow([r.name, r.recon_error, *per, r.log_likelihood, r.log_likelihood_kind, r.elbo, r.train_seconds])
    payload = {"config": config, "models": [vars(r) for r in results]}
    (out / "results.json").write_text(json.dumps(payload, indent=2) + "\n")


# --------------------------------------------------------------------------- figures


@dataclass
class _Hist:
    train_loss: list
    test_loss: list


def model_latent_dim(model) -> int:
    for attr in ("latent_dim", "n_components"):
        if hasattr(model, attr):
            return int(getattr(model, attr))
    return 0


def _slug(name: str) -> str:
    return name.split()[0].lower()


@dataclass(frozen=True)
class Shown:
    """A figure of the report: its caption (what to look for) and its alt text (what it shows:
    ``labkit.plotting.describe``)."""

    caption: str
    alt: str


class _Figures:
    """Saves figures as PNG into ``out`` and remembers {file name: Shown}."""

    def __init__(self, out: Path):
        self.out, self.captions = out, {}

    def save(self, fig, name: str, caption: str) -> None:
        from labkit.plotting import describe

        fig.savefig(self.out / name, dpi=110)
        self.captions[name] = Shown(caption, describe(fig))
        try:
            import matplotlib.pyplot as plt

            plt.close(fig)
        except Exception:
            pass


def write_figures(out: Path, specs, models, results, data, seed) -> dict[str, Shown]:
    """Save the lab's figures as PNG; returns {file name: Shown (caption, alt text)}.

    ``specs`` are ``labkit.lab.ModelSpec`` records (their ``encode``, ``in_reconstructions``
    and ``samples`` say which figures a model appears in), ``models`` {name: trained model},
    ``data`` the (X, y, X_test, y_test) the models were trained and tested on."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from labkit import plotting

    X, y, Xt, yt = data
    figs = _Figures(out)
    with torch.no_grad():
        for spec in (s for s in specs if s.encode is not None):
            encode = lambda x, s=spec: s.encode(models[s.name], x)
            figs.save(plotting.plot_encodings(encode(X[:N_SHOWN]), y[:N_SHOWN], encode(Xt[:N_SHOWN]), yt[:N_SHOWN],
                                              title=f"{spec.name}: encodings of training and test images"),
                      f"encodings_{_slug(spec.name)}.png",
                      f"{spec.name}: 2-D encodings coloured by digit (training left, test right)")
        recon = {s.name: models[s.name].reconstruct(Xt[:12]) for s in specs if s.in_reconstructions}
        figs.save(plotting.plot_reconstructions(Xt[:12], recon, n=12, title="Test images and their reconstructions"),
                  "reconstructions.png", "Originals (top) and reconstructions by each model")
        for spec in (s for s in specs if s.samples):
            _sample_figures(figs, plotting, spec.name, models[spec.name], seed)
    histories = {r.name: _Hist(**r.history) for r in results if r.history}
    if histories:
        figs.save(plotting.plot_training_curves(histories, title="Training (solid) and test (dashed) loss"),
                  "training_curves.png", "Loss per epoch: negative log-likelihood or negative ELBO, nats per image")
    errors = {r.name: torch.tensor(r.recon_error_per_digit) for r in results if r.recon_error_per_digit}
    figs.save(plotting.plot_errors_per_digit(errors, title="Average squared test reconstruction error per digit"),
              "errors_per_digit.png", "Which digits each model reconstructs well")
    return figs.captions


def _sample_figures(figs: _Figures, plotting, name: str, model, seed: int) -> None:
    """Samples at three temperatures and, for a 2-D latent space, the decoded latent grid."""
    slug = _slug(name)
    figs.save(plotting.plot_samples(lambda n, t, m=model: m.sample(n, temperature=t), seed=seed,
                                    title=f"{name}: samples from the prior at several temperatures"),
              f"samples_{slug}.png", f"{name}: samples at temperatures 0.5, 1.0 and 1.5")
    if model_latent_dim(model) == 2:
        figs.save(plotting.plot_latent_grid(model.decode, title=f"{name}: decoded latent grid"),
                  f"latent_grid_{slug}.png", f"{name}: images decoded from a grid of latent points z")


# --------------------------------------------------------------------------- HTML


# Contrast: body text #1a1a1a and notes #4d4d4d on white (over 8:1); links underlined; a visible
# focus ring; the skip link shows when focused.
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#1a1a1a;background:#fff}
h1{font-weight:600} h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:1em 0;font-variant-numeric:tabular-nums}
th,td{padding:.35em .8em;border-bottom:1px solid #e5e5e5;text-align:right} th:first-child,td:first-child{text-align:left}
th{background:#f6f6f6} figure{margin:1.5em 0} figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#4d4d4d;font-size:.95em} .note{color:#4d4d4d;font-size:.9em} code{background:#f3f3f3;padding:0 .2em}
a{color:#0b4f9c;text-decoration:underline} :focus-visible{outline:3px solid #b35900;outline-offset:2px}
.skip{position:absolute;left:-10000px;top:auto} .skip:focus{position:static}
"""


def _html_table(header, rows) -> str:
    head = "".join(f'<th scope="col">{html.escape(str(h))}</th>' for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_figures(out: Path, figures: dict[str, str]) -> str:
    """The figures as <figure> elements with the PNG inlined (data: URLs), so the page fetches nothing."""
    figs = []
    for name, shown in figures.items():
        caption, alt = (shown.caption, shown.alt) if isinstance(shown, Shown) else (shown, shown)
        data = base64.b64encode((out / name).read_bytes()).decode()
        figs.append(f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    return "".join(figs)


def write_report(out: Path, results, config, figures: dict) -> None:
    """``report.html``: the config, both tables and every figure, self-contained; ``figures`` is
    {file name: Shown} (or a plain caption, then also the alt text). Accessible: a language, a main
    landmark and a link to skip to it, column headers, alt text that describes each figure,
    visible focus and text contrast over 7:1."""
    kinds = "".join(f"<li>{html.escape(r.name)}: {html.escape(r.log_likelihood_kind)}</li>" for r in results if r.log_likelihood_kind)
    cfg = ", ".join(f"{k} = {v}" for k, v in config.items())
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>labkit lab report</title><style>{_CSS}</style></head>
<body>
<a class="skip" href="#main">Skip to the report</a>
<main id="main">
<h1>Unsupervised learning with variational autoencoders: lab report</h1>
<p class="note">{html.escape(cfg)}</p>
<h2>Models on the MNIST test set</h2>
{_html_table(COLUMNS, _rows(results))}
<p class="note">Reconstruction error: mean over the test images of the squared error summed over the 784 pixels.
Log-likelihoods in nats per image:</p><ul class="note">{kinds}</ul>
<h2>Reconstruction error per digit</h2>
{_html_table(["model", *map(str, DIGITS)], _per_digit_rows(results))}
<h2>Figures</h2>
{_html_figures(out, figures)}
</main>
</body></html>
"""
    (out / "report.html").write_text(page)
