"""Variational autoencoder (Section 3.3 of the lab; Kingma & Welling, 2014).

The model is the nonlinear model of the lab,

    p(z)   = N(z; 0, I_M)
    p(x|z) = N(x; f(z), sigma^2 I_D)        f: decoder MLP  M -> 400 -> D, learned log sigma^2

trained with an encoder (inference network) for the approximate posterior

    q(z|x) = N(z; m(x), diag(s^2(x)))       encoder MLP  D -> 400 -> (m, log s^2)

by maximising the evidence lower bound, for every image x,

    ELBO(x) = E_q[log p(x|z)] - KL[q(z|x) || p(z)]
            ~ log N(x; f(m + s * eps), sigma^2 I) - KL,   eps ~ N(0, I)  (one reparameterised sample)
    KL      = 1/2 sum_i (s_i^2 + m_i^2 - 1 - log s_i^2)               (Question 3.5)

and ``log_likelihood`` estimates log p(x) itself by importance sampling with q
as the proposal (Burda et al., 2016):

    log p(x) ~ log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x),   z_k ~ q(z|x)

which is a lower bound too (in expectation), tighter than the ELBO for K > 1
and equal to log p(x) as K -> infinity. It is in nats per image, like PPCA's
exact log-likelihood, so the two can be compared.

Architecture: the one of the lab's notebook (notebooks/3_vae.ipynb imports
this class): a shared hidden layer ``encoder`` (D -> 400, ReLU), two heads
``encoder_mean`` and ``encoder_logvar`` (400 -> M each), and a decoder
M -> 400 (ReLU) -> D with a sigmoid output, so that f(z), the mean of
p(x|z), is an image with pixel values in (0, 1), like the data. `labkit lab`
trains it with the lab's budget and reports the numbers it gives.

    >>> vae = VAE(); labkit.train.fit(vae, X)
    >>> mean, logvar = vae.encode(X)         # (N, 2) each
    >>> vae.reconstruct(X)                   # (N, 784), decode(mean)
    >>> vae.log_likelihood(Xt, n_samples=200)
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from labkit.models.init import global_rng_kept, init_generator, reset_linear_layers
from labkit.models.prior import sample_prior

__all__ = ["VAE", "kl_to_standard_normal_logvar", "gaussian_log_likelihood", "decoder_network"]

LOG_2PI = math.log(2 * math.pi)


def decoder_network(latent_dim: int, hidden: int, data_dim: int) -> nn.Sequential:
    """f(z; phi): M -> hidden (ReLU) -> D (sigmoid), the decoder of the nonlinear model and of the VAE."""
    return nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, data_dim), nn.Sigmoid())


def kl_to_standard_normal_logvar(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL[N(mean, diag(exp(logvar))) || N(0, I)] per row: mean, logvar (N, M) -> (N,).  (Question 3.5)

    From the log-variances, as the VAE's encoder gives them; 0_preparation's
    ``kl_to_standard_normal(mean, var)`` takes the variances themselves."""
    return 0.5 * (logvar.exp() + mean.pow(2) - 1 - logvar).sum(-1)


def gaussian_log_likelihood(x: torch.Tensor, f: torch.Tensor, log_sigma2: torch.Tensor) -> torch.Tensor:
    """log N(x; f, sigma^2 I) summed over the last dimension D: x, f (..., D) -> (...)."""
    squared_error = F.mse_loss(f, x.expand_as(f), reduction="none").sum(-1)  # ||x - f||^2, one fused kernel
    return -0.5 * (x.shape[-1] * (LOG_2PI + log_sigma2) + squared_error / log_sigma2.exp())


class VAE(nn.Module):
    """VAE with latent dimension M = ``latent_dim`` and ``hidden`` units in each MLP.

    Submodules: ``encoder`` (D -> hidden, the shared hidden layer), the heads
    ``encoder_mean`` and ``encoder_logvar`` (hidden -> M each) and ``decoder``
    (M -> D, sigmoid output); any modules with those shapes may replace them. Parameter ``log_sigma2`` is log sigma^2 of p(x|z).
    Initialisation: PyTorch's default for ``nn.Linear`` (weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))),
    log sigma^2 = 0. With ``seed`` (or ``generator``) the layers are drawn from a ``torch.Generator`` of
    their own and torch's global random state is left as it was (``VAE(seed=s)`` has the parameters
    that ``torch.manual_seed(s); VAE()`` gives); with neither, from the global random state.
    """

    def __init__(self, latent_dim: int = 2, hidden: int = 400, data_dim: int = 784, *, seed: int | None = None,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.latent_dim, self.hidden, self.data_dim = latent_dim, hidden, data_dim
        g = init_generator(seed, generator)
        with global_rng_kept(g is not None):
            self.encoder = nn.Sequential(nn.Linear(data_dim, hidden), nn.ReLU())
            self.encoder_mean = nn.Linear(hidden, latent_dim)
            self.encoder_logvar = nn.Linear(hidden, latent_dim)
            self.decoder = decoder_network(latent_dim, hidden, data_dim)
        self.log_sigma2 = nn.Parameter(torch.zeros(()))
        if g is not None:
            reset_linear_layers(self, g)

    @property
    def sigma2(self) -> torch.Tensor:
        """sigma^2 = exp(log_sigma2), the pixel noise variance of p(x|z)."""
        return self.log_sigma2.exp()

    def encode(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x): mean (N, M) and log-variance (N, M) for every row of X (N, D)."""
        h = self.encoder(X)
        return self.encoder_mean(h), self.encoder_logvar(h)

    def decode(self, Z: torch.Tensor) -> torch.Tensor:
        """f(z), the mean of p(x|z), for every row of Z (..., M) -> (..., D)."""
        return self.decoder(Z)

    def reconstruct(self, X: torch.Tensor) -> torch.Tensor:
        """f(mean of q(z|x)): X (N, D) -> (N, D)."""
        return self.decode(self.encode(X)[0])

    def elbo(self, X: torch.Tensor) -> torch.Tensor:
        """The ELBO of every row of X (N, D), one reparameterised sample: (N,) nats."""
        mean, logvar = self.encode(X)
        z = mean + (0.5 * logvar).exp() * torch.randn_like(mean)
        return gaussian_log_likelihood(X, self.decode(z), self.log_sigma2) - kl_to_standard_normal_logvar(mean, logvar)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """-mean ELBO over the batch x (B, D): a scalar in nats per image."""
        return -self.elbo(x).mean()

    @torch.no_grad()
    def log_likelihood(self, X: torch.Tensor, n_samples: int = 200, max_elements: int = 2**24) -> torch.Tensor:
        """Importance-weighted estimate of log p(x) with K = ``n_samples`` samples of q: X (N, D) -> (N,) nats.

        The data are processed in chunks of rows so that a chunk's K decoded
        images, (rows, K, D), hold at most ``max_elements`` numbers.
        """
        K = n_samples
        rows = max(1, max_elements // (K * X.shape[1]))
        out = []
        for x in X.split(rows):
            mean, logvar = self.encode(x)  # (B, M)
            std = (0.5 * logvar).exp()
            eps = torch.randn(K, *mean.shape, dtype=mean.dtype, device=mean.device)  # (K, B, M)
            z = mean + std * eps
            log_q = -0.5 * (eps.pow(2) + logvar + LOG_2PI).sum(-1)  # (K, B)
            log_prior = -0.5 * (z.pow(2) + LOG_2PI).sum(-1)
            log_lik = gaussian_log_likelihood(x, self.decode(z), self.log_sigma2)
            out.append(torch.logsumexp(log_lik + log_prior - log_q, dim=0) - math.log(K))
        return torch.cat(out)

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images f(z), z ~ N(0, temperature^2 I): (n, D). These are means of p(x|z), without pixel noise."""
        return self.decode(sample_prior(n, self.latent_dim, self.log_sigma2, temperature, generator))

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}, hidden={self.hidden}, data_dim={self.data_dim}"
