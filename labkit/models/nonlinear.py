"""The nonlinear latent-variable model of the lab (Section 3.3), trained without an encoder.

    p(z)   = N(z; 0, I_M)
    p(x|z) = N(x; f(z), sigma^2 I_D)        f: decoder MLP  M -> 400 -> D (sigmoid output), learned log sigma^2

Its log-likelihood log p(x) = log E_{p(z)}[p(x|z)] has no closed form; it is
estimated by simple Monte Carlo with K samples from the prior,

    log p(x) ~ log (1/K) sum_k N(x; f(z_k), sigma^2 I),   z_k ~ N(0, I),

and training minimises the negative of this estimate (a biased but
consistent objective: by Jensen's inequality it is a lower bound on log p(x)
in expectation). One set of K samples is shared by the whole batch, so the B x K
squared distances come from one matrix product:

    ||x - f_k||^2 = ||x||^2 - 2 x . f_k + ||f_k||^2

With M = 2 a hundred prior samples cover the latent space well enough:
with the lab's budget this model reaches a higher estimated test
log-likelihood than the VAE's importance-weighted estimate (`labkit lab`
prints both).
What it lacks is an encoder (p(z|x) has no closed form), and in more latent
dimensions prior samples would rarely land where an image is likely; the
VAE's encoder proposes the z that matter.

Default K = 100, as in the lab's notebook (notebooks/3_vae.ipynb imports this
class). Decoder: the VAE's (``labkit.models.vae.decoder_network``), sigmoid output.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from labkit.models.init import global_rng_kept, init_generator, reset_linear_layers
from labkit.models.prior import sample_prior
from labkit.models.vae import decoder_network

__all__ = ["NonlinearModel"]

LOG_2PI = math.log(2 * math.pi)


class NonlinearModel(nn.Module):
    """Decoder-only model with latent dimension M = ``latent_dim``, trained on a K = ``n_samples`` Monte Carlo estimate.

    Submodule ``decoder`` (M -> D, sigmoid output) is a plain ``nn.Sequential``; any module with
    those shapes may replace it. Parameter ``log_sigma2`` is log sigma^2.
    Initialisation: PyTorch's default for ``nn.Linear`` (weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))),
    log sigma^2 = 0. With ``seed`` (or ``generator``) the layers are drawn from a ``torch.Generator`` of
    their own and torch's global random state is left as it was (``NonlinearModel(seed=s)`` has the
    parameters that ``torch.manual_seed(s); NonlinearModel()`` gives); with neither, from the global random state.
    """

    def __init__(self, latent_dim: int = 2, hidden: int = 400, data_dim: int = 784, n_samples: int = 100, *,
                 seed: int | None = None, generator: torch.Generator | None = None):
        super().__init__()
        self.latent_dim, self.hidden, self.data_dim, self.n_samples = latent_dim, hidden, data_dim, n_samples
        g = init_generator(seed, generator)
        with global_rng_kept(g is not None):
            self.decoder = decoder_network(latent_dim, hidden, data_dim)
        self.log_sigma2 = nn.Parameter(torch.zeros(()))
        if g is not None:
            reset_linear_layers(self, g)

    @property
    def sigma2(self) -> torch.Tensor:
        """sigma^2 = exp(log_sigma2), the pixel noise variance of p(x|z)."""
        return self.log_sigma2.exp()

    def decode(self, Z: torch.Tensor) -> torch.Tensor:
        """f(z), the mean of p(x|z), for every row of Z (N, M) -> (N, D)."""
        return self.decoder(Z)

    def log_likelihood(self, X: torch.Tensor, n_samples: int | None = None,
                       generator: torch.Generator | None = None, max_elements: int = 2**24) -> torch.Tensor:
        """Monte Carlo estimate of log p(x) with K prior samples, for every row of X (N, D) -> (N,) nats.

        K = ``n_samples`` (default ``self.n_samples``); the same K samples serve all rows.
        Rows are processed in chunks so that a chunk's (rows, K) distances hold at most
        ``max_elements`` numbers.
        """
        K = n_samples or self.n_samples
        p = self.log_sigma2
        device = generator.device if generator is not None else p.device
        z = torch.randn(K, self.latent_dim, generator=generator, device=device).to(p.device, p.dtype)
        f = self.decode(z)  # (K, D)
        f2 = f.pow(2).sum(1)  # (K,)
        const = -0.5 * X.shape[1] * (LOG_2PI + self.log_sigma2) - math.log(K)
        out = []
        for x in X.split(max(1, max_elements // K)):
            dist2 = (x.pow(2).sum(1, keepdim=True) - 2 * x @ f.T + f2).clamp(min=0)  # (B, K)
            out.append(torch.logsumexp(-0.5 * dist2 / self.sigma2, dim=1) + const)
        return torch.cat(out)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """-mean of the Monte Carlo log-likelihood over the batch x (B, D): a scalar in nats per image."""
        return -self.log_likelihood(x).mean()

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images f(z), z ~ N(0, temperature^2 I): (n, D). These are means of p(x|z), without pixel noise."""
        return self.decode(sample_prior(n, self.latent_dim, self.log_sigma2, temperature, generator))

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}, hidden={self.hidden}, data_dim={self.data_dim}, n_samples={self.n_samples}"
