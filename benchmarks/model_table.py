"""The models' figures on the MNIST test set with two latent dimensions, as a markdown table.

    LABKIT_DATA=../shared/data .venv/bin/python benchmarks/model_table.py [--seed 0] [--iw-samples 200]

Trains every model with the lab's budget (20 epochs, batch 500, Adam lr 0.01)
on the 60000 training images and evaluates on the 10000 test images:
the average squared reconstruction error (squared error summed over the 784
pixels, averaged over images) and log-likelihoods in nats per image.
Output: docs/models.md. (`labkit lab` will supersede this script.)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labkit.data import load_mnist  # noqa: E402
from labkit.models import PCA, PPCA, VAE, NonlinearModel  # noqa: E402
from labkit.train import fit  # noqa: E402


def recon_error(model, X) -> float:
    with torch.no_grad():
        return (X - model.reconstruct(X)).pow(2).sum(1).mean().item()


def mean_of(fn, X, chunk=1000) -> float:
    with torch.no_grad():
        return torch.cat([fn(x) for x in X.split(chunk)]).double().mean().item()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--iw-samples", type=int, default=200, help="K of the VAE's importance-weighted estimate")
    p.add_argument("--mc-samples", type=int, default=10_000, help="K of the nonlinear model's Monte Carlo estimate")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    X, _ = load_mnist("train")
    Xt, _ = load_mnist("test")
    budget = dict(epochs=args.epochs, batch_size=500, lr=0.01, seed=args.seed, device=args.device, progress=False)
    rows = []  # (model, reconstruction error, test log-likelihood, test ELBO)

    def trained(model):
        fit(model, X, **budget)
        return model.cpu().eval()

    pca = PCA(2).fit(X)
    rows.append(("PCA", recon_error(pca, Xt), None, None))

    ppca = PPCA(2).fit(X)
    rows.append(("PPCA, closed form", recon_error(ppca, Xt), mean_of(ppca.log_likelihood, Xt), None))

    torch.manual_seed(args.seed)  # the initialisation
    ppca = trained(PPCA(2))
    rows.append(("PPCA, gradient-trained", recon_error(ppca, Xt), mean_of(ppca.log_likelihood, Xt), None))

    torch.manual_seed(args.seed)
    nonlinear = trained(NonlinearModel())
    torch.manual_seed(args.seed)
    ll = mean_of(lambda x: nonlinear.log_likelihood(x, n_samples=args.mc_samples), Xt)
    rows.append((f"Nonlinear model (Monte Carlo, K={args.mc_samples} prior samples)", None, ll, None))

    torch.manual_seed(args.seed)
    vae = trained(VAE())
    torch.manual_seed(args.seed)
    elbo = mean_of(vae.elbo, Xt)
    torch.manual_seed(args.seed)
    iw = mean_of(lambda x: vae.log_likelihood(x, n_samples=args.iw_samples), Xt, chunk=200)
    rows.append((f"VAE (importance-weighted, K={args.iw_samples})", recon_error(vae, Xt), iw, elbo))

    def cell(v, fmt):
        return "—" if v is None else format(v, fmt)

    print("| model | recon. error | test log-lik. (nats/image) | test ELBO (nats/image) |")
    print("| --- | ---: | ---: | ---: |")
    for name, err, ll, elbo in rows:
        print(f"| {name} | {cell(err, '.2f')} | {cell(ll, '.1f')} | {cell(elbo, '.1f')} |")
    print(f"\nseed {args.seed}, {args.epochs} epochs, batch 500, Adam lr 0.01, latent dimension 2, "
          f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads")


if __name__ == "__main__":
    main()
