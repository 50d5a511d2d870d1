"""Probabilistic PCA (Section 3.2 of the lab; Tipping & Bishop, 1999).

The model, with latent z (M,) and data x (D,):

    p(z)   = N(z; 0, I_M)
    p(x|z) = N(x; W z + mu, sigma^2 I_D)
    p(x)   = N(x; mu, C),        C = W W^T + sigma^2 I_D          (Question 3.3)
    p(z|x) = N(z; M^-1 W^T (x - mu), sigma^2 M^-1),  M = W^T W + sigma^2 I_M   (Question 3.4)

Parameters: W (D, M), mu (D,) and log_sigma2 = log sigma^2 (a scalar; the log
keeps sigma^2 > 0 during gradient training).

Two ways to fit it:

    >>> ppca = PPCA(2).fit(X)                       # closed-form maximum likelihood
    >>> ppca = PPCA(2); labkit.train.fit(ppca, X)   # Adam on loss(x) = -mean log p(x)

Closed form (Tipping & Bishop, 1999, eqs. 7-8): with S the covariance of the
data (1/N normalisation) and lambda_1 >= ... >= lambda_D its eigenvalues,
eigenvectors U, mu is the data mean, sigma^2 = mean of the D - M discarded
eigenvalues lambda_{M+1..D}, and W = U_M (L_M - sigma^2 I)^{1/2} (rotation R = I).

Initialisation for gradient training (the lab asks how): W ~ N(0, 0.1^2)
entrywise, mu = 0 and sigma^2 = 1 (log_sigma2 = 0). W is drawn from a generator
of its own with ``PPCA(seed=s)`` (or ``generator=``; the global random state is
left as it was, and W is the one ``torch.manual_seed(s); PPCA()`` gives), and from
torch's global random state without (``seed=None``). See ``labkit.models.init``.

log p(x) never forms the D x D matrix C; it uses the M x M matrix M:

    log det C = (D - M) log sigma^2 + log det M
    C^-1      = (I - W M^-1 W^T) / sigma^2

so it costs O(N D M). The M x M algebra is float64; the result has the dtype of x.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from labkit.models.init import init_generator
from labkit.models.pca import eigh_descending, mean_and_covariance
from labkit.models.prior import sample_prior

__all__ = ["PPCA"]

LOG_2PI = math.log(2 * math.pi)


class PPCA(nn.Module):
    """Probabilistic PCA with M = ``n_components`` latent dimensions for data of dimension D = ``data_dim``.

    Initial parameters: W ~ N(0, 0.1^2) entrywise, mu = 0, log sigma^2 = 0. W is drawn from a
    ``torch.Generator`` seeded with ``seed`` (or from ``generator``) without touching torch's
    global random state; with neither, from the global random state (``torch.manual_seed``).
    """

    def __init__(self, n_components: int = 2, data_dim: int = 784, *, seed: int | None = None,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.n_components = self.latent_dim = n_components
        self.data_dim = data_dim
        g = init_generator(seed, generator)
        W = torch.randn(data_dim, n_components, generator=g, device=g.device if g is not None else None)
        self.W = nn.Parameter(0.1 * W.cpu())  # (D, M)
        self.mu = nn.Parameter(torch.zeros(data_dim))  # (D,)
        self.log_sigma2 = nn.Parameter(torch.zeros(()))  # ()

    @property
    def sigma2(self) -> torch.Tensor:
        """sigma^2 = exp(log_sigma2), a scalar tensor."""
        return self.log_sigma2.exp()

    # ------------------------------------------------------------------ fitting

    @torch.no_grad()
    def fit(self, X: torch.Tensor) -> "PPCA":
        """Closed-form maximum-likelihood estimate from X (N, D); returns self.

        The model moves to the device of X (as ``labkit.train.fit`` moves it to its device),
        so that encode, decode and log_likelihood then take data from the same device.
        """
        self._check_data(X)
        self.to(X.device)
        M, D = self.latent_dim, self.data_dim
        mu, S = mean_and_covariance(X)
        lam, U = eigh_descending(S, M)  # the M largest eigenvalues and their eigenvectors
        sigma2 = (S.trace() - lam.sum()) / (D - M)  # mean of the discarded eigenvalues
        W = U * (lam - sigma2).clamp(min=0).sqrt()
        self.W.copy_(W)
        self.mu.copy_(mu)
        self.log_sigma2.copy_(sigma2.log())
        return self

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """-mean log p(x) over the batch x (B, D): a scalar in nats per image."""
        return -self.log_likelihood(x).mean()

    # ------------------------------------------------------------------ densities

    def _cholesky_M(self) -> torch.Tensor:
        """The Cholesky factor L (M, M) of M = W^T W + sigma^2 I, in float64."""
        W = self.W.double()
        Mmat = W.T @ W + self.sigma2.double() * torch.eye(self.latent_dim, dtype=W.dtype, device=W.device)
        return torch.linalg.cholesky_ex(Mmat)[0]  # no error check: no device sync during training

    def log_likelihood(self, X: torch.Tensor) -> torch.Tensor:
        """log N(x; mu, C) in nats for every row of X (N, D) -> (N,).

        The (N, D) work stays in the dtype of X (fast); the M x M algebra and
        the combination of the terms are float64.
        """
        self._check_data(X)
        L = self._cholesky_M()
        e = X - self.mu.to(X.dtype)  # (N, D)
        a = (e @ self.W.to(X.dtype)).double()  # (N, M), W^T (x - mu) per row
        b = torch.linalg.solve_triangular(L, a.T, upper=False)  # (M, N); ||b||^2 = e^T W M^-1 W^T e
        quad = (e.square().sum(1).double() - b.square().sum(0)) / self.sigma2.double()  # e^T C^-1 e
        log_det_C = (self.data_dim - self.latent_dim) * self.log_sigma2.double() + 2 * L.diagonal().log().sum()
        return (-0.5 * (self.data_dim * LOG_2PI + log_det_C + quad)).to(X.dtype)

    # ------------------------------------------------------------------ encoding, decoding

    def encode(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The posterior p(z|x) = N(mean, cov) for every row of X (N, D).

        Returns:
            mean: (N, M), M^-1 W^T (x - mu) per row.
            cov: (M, M), sigma^2 M^-1 (the same for every x).
        """
        self._check_data(X)
        L = self._cholesky_M()
        a = (X.double() - self.mu.double()) @ self.W.double()  # (N, M)
        mean = torch.cholesky_solve(a.T, L).T  # M^-1 W^T (x - mu); M is symmetric
        cov = self.sigma2.double() * torch.cholesky_inverse(L)
        return mean.to(X.dtype), cov.to(X.dtype)

    def decode(self, Z: torch.Tensor) -> torch.Tensor:
        """W z + mu, the mean of p(x|z), for every row of Z (N, M) -> (N, D)."""
        return Z @ self.W.T + self.mu

    def reconstruct(self, X: torch.Tensor) -> torch.Tensor:
        """decode(posterior mean of z given x): X (N, D) -> (N, D)."""
        return self.decode(self.encode(X)[0])

    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None,
               noise: bool = False) -> torch.Tensor:
        """n images W z + mu with z ~ N(0, temperature^2 I): (n, D).

        These are the means of p(x|z), as in the lab's figures; with ``noise=True``
        the pixel noise sigma * eps, eps ~ N(0, I), is added, giving samples of p(x)
        itself (at temperature 1).
        """
        x = self.decode(sample_prior(n, self.latent_dim, self.W, temperature, generator))
        if noise:
            device = generator.device if generator is not None else x.device
            eps = torch.randn(x.shape, generator=generator, device=device).to(x.device, x.dtype)
            x = x + self.sigma2.sqrt() * eps
        return x

    def _check_data(self, X):
        if X.dim() != 2 or X.shape[1] != self.data_dim:
            raise ValueError(f"expected data of shape (N, {self.data_dim}), got {tuple(X.shape)}")

    def extra_repr(self) -> str:
        return f"n_components={self.latent_dim}, data_dim={self.data_dim}"
