"""Principal component analysis (Section 3.1 of the lab).

    >>> pca = PCA(2).fit(X)                # X: (N, D)
    >>> Z = pca.encode(X)                  # (N, 2)   z = V^T (x - mu)
    >>> X_rec = pca.decode(Z)              # (N, D)   x~ = V z + mu

With the centred data X - 1 mu^T = U Sigma V^T (singular values sorted in
descending order), the principal subspace is spanned by the first M columns
of V. Any x, from the training set or not, is mapped to it by

    z = V_M^T (x - mu)                    (Questions 3.1 and 3.2)

and decoded by x~ = V_M z + mu.

How it is computed: the columns of V are the eigenvectors of the D x D
covariance S = (1/N) sum_n (x_n - mu)(x_n - mu)^T, and the singular values
are s_i = sqrt(N lambda_i). For N >> D (MNIST: 60000 x 784) that is far
cheaper than the SVD of the N x D matrix and gives the same subspace:
``mean_and_covariance`` accumulates S in float64 and the eigendecomposition
is done in float64.

Signs: a singular vector is defined up to its sign, so every column of V is
flipped to make its largest-magnitude entry positive (scikit-learn's
``svd_flip`` on V). The same data gives the same components on every machine.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["PCA", "mean_and_covariance", "eigh_descending"]


def mean_and_covariance(X: torch.Tensor, block: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean mu (D,) and covariance S = (1/N) sum_n (x_n - mu)(x_n - mu)^T (D, D), both float64.

    One pass over the data in blocks of ``block`` rows. Each block is shifted
    by a provisional centre c (the mean of the first block) and multiplied in
    the dtype of X (float32 for images: fast); the sums over blocks are float64.
    With d = mean of (x_n - c):  mu = c + d  and  S = (1/N) sum (x_n - c)(x_n - c)^T - d d^T.

    On the CPU the product ``b.T @ b`` is numpy's symmetric BLAS routine (syrk),
    half the work of a general matrix product, and a pixel that has not changed
    yet (c is its value, so x - c is exactly 0) is left out of it: MNIST has 67
    pixels that are 0 in every image, and without them the product does a fifth
    less work. A pixel joins the product in the first block where it changes;
    its sums over the earlier blocks are exactly zero, so nothing is lost.

    (Multiplying the raw, unshifted blocks, as scikit-learn's PCA does, saves the
    shift, but the float32 sums then lose digits to the subtraction of mu mu^T:
    with 20 components the reconstructions of the MNIST test images drift past
    1e-5 of the exact SVD's, tests/test_pca.py.)

    Raises ValueError for data that are not (N, D) floating point or that hold NaN or inf.
    """
    if X.dim() != 2 or X.shape[0] < 1:
        raise ValueError(f"expected data of shape (N, D) with N >= 1, got {tuple(X.shape)}")
    if not X.dtype.is_floating_point:
        raise ValueError(f"expected floating-point data (float32 or float64), got {X.dtype}")
    X = X.detach()
    if X.device.type == "cpu":
        with np.errstate(invalid="ignore", over="ignore"):  # NaN and inf are reported just below
            mu, S = _mean_and_covariance_cpu(X.contiguous().numpy(), block)
        finite = bool(np.isfinite(S).all())  # in numpy: a torch operation here would wait for numpy's BLAS threads
        mu, S = torch.from_numpy(mu), torch.from_numpy(S)
    else:
        centre = X[:block].mean(0)
        total = torch.zeros(X.shape[1], dtype=torch.float64, device=X.device)
        S = torch.zeros(X.shape[1], X.shape[1], dtype=torch.float64, device=X.device)
        for start in range(0, len(X), block):
            b = X[start : start + block] - centre
            total += b.sum(0, dtype=torch.float64)
            S += (b.T @ b).double()
        shift = total / len(X)
        mu, S = centre.double() + shift, S / len(X) - torch.outer(shift, shift)
        finite = bool(torch.isfinite(S).all())
    if not finite:
        raise ValueError("the data contain NaN or infinite values: remove or replace them (e.g. torch.nan_to_num) "
                         "before fitting")
    return mu, S


def _mean_and_covariance_cpu(X: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """``mean_and_covariance`` on the CPU, in numpy: the pixels that have not changed yet stay out of the product.

    (numpy only: torch's worker threads, still spinning after a torch operation,
    would slow down the BLAS threads of the product that follows.)
    """
    n, d = X.shape
    first = X[:block]
    still = np.ptp(first, axis=0) == 0  # constant over the first block
    centre = np.where(still, first[0], first.mean(0))  # x - c is exactly 0 while a still pixel keeps its value
    active, waiting = np.flatnonzero(~still), np.flatnonzero(still)
    buffer = np.empty(min(block, n) * d, dtype=X.dtype)
    ones = np.ones(min(block, n), dtype=X.dtype)
    total, S = np.zeros(len(active)), np.zeros((len(active), len(active)))
    for start in range(0, n, block):
        x = X[start : start + block]
        rows, k = len(x), len(active)
        changed = (np.take(x, waiting, axis=1, mode="clip") != centre[waiting]).any(0)  # (indices are in range)
        if changed.any():  # these pixels join the product; their sums over the earlier blocks are exactly 0
            active, waiting = np.concatenate([active, waiting[changed]]), waiting[~changed]
            total, S = np.pad(total, (0, len(active) - k)), np.pad(S, (0, len(active) - k))
            k = len(active)
        b = np.take(x, active, axis=1, out=buffer[: rows * k].reshape(rows, k), mode="clip")  # "clip": the fast path
        b -= centre[active]
        total += ones[:rows] @ b
        S += b.T @ b
    shift = total / n
    mu = centre.astype(np.float64)
    mu[active] += shift
    S_full = np.zeros((d, d))
    S_full[np.ix_(active, active)] = S / n - np.outer(shift, shift)
    return mu, S_full


def eigh_descending(S: torch.Tensor, k: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest eigenvalues (k,) in descending order and their eigenvectors (D, k), as
    columns, of a symmetric positive semi-definite S (D, D), such as a covariance; all D when k is None.

    Each eigenvector's largest-magnitude entry is made positive (deterministic signs).
    On the CPU, a few components of a large float64 S (k <= 6, D >= 256: the lab's M = 2
    on MNIST) come from subspace iteration, ``_top_eigenpairs``, a few times faster than
    the full decomposition; everything else from LAPACK's full ``eigh``.
    """
    d = S.shape[0]
    k = d if k is None else k
    fast = S.device.type == "cpu" and S.dtype == torch.float64 and k <= 6 and d >= 256
    found = _top_eigenpairs(S.numpy(), k) if fast else None
    if found is not None:
        evals, evecs = (torch.from_numpy(a) for a in found)
    else:
        if S.device.type == "cpu":  # numpy's LAPACK is the faster one on the CPU here
            evals, evecs = (torch.from_numpy(a) for a in np.linalg.eigh(S.numpy()))
        else:
            evals, evecs = torch.linalg.eigh(S)
        evals, evecs = evals[d - k :].flip(0), evecs[:, d - k :].flip(1)
    biggest = evecs.abs().argmax(0)
    signs = torch.sign(evecs[biggest, torch.arange(evecs.shape[1], device=evecs.device)])
    signs[signs == 0] = 1
    return evals, evecs * signs


def _top_eigenpairs(S: np.ndarray, k: int, tol: float = 1e-12, max_iter: int = 60):
    """The k largest eigenpairs of a positive semi-definite S (D, D) by subspace iteration, or None.

    A block Q of p = k + 10 orthonormal columns (started from the columns of S
    with the largest diagonal entries: no randomness) is multiplied by S and
    re-orthonormalised until the Ritz pairs (theta, v) of S in span(Q) satisfy
    ||S v - theta v|| <= tol * theta_1 for the k largest. The error shrinks by
    about lambda_{p+1} / lambda_k per step: MNIST, k = 2, takes some 20 steps.
    None when that has not happened in ``max_iter`` steps (a flat spectrum): the
    caller then does the full decomposition.
    """
    p = min(k + 10, len(S))
    Q = np.linalg.qr(S[:, np.argsort(-np.diag(S), kind="stable")[:p]])[0]
    for _ in range(max_iter):
        Z = S @ Q
        theta, U = np.linalg.eigh(Q.T @ Z)  # Rayleigh-Ritz: S restricted to span(Q)
        theta, U = theta[::-1][:k], U[:, ::-1][:, :k]
        V = Q @ U  # the Ritz vectors; S V = Z U
        if np.linalg.norm(Z @ U - V * theta, axis=0).max() <= tol * max(theta[0], np.finfo(S.dtype).tiny):
            return theta.copy(), V
        Q = np.linalg.qr(Z)[0]
    return None


class PCA:
    """PCA with M = ``n_components`` components.

    Attributes (after ``fit``, in the dtype and on the device of the data):
        mu: (D,) the data mean.
        V: (D, M) the principal directions v_1 ... v_M as columns (orthonormal).
        singular_values: (M,) s_1 >= ... >= s_M of the centred data matrix.
        explained_variance: (M,) s_i^2 / (N - 1), the variance along each v_i.
        explained_variance_ratio: (M,) the fraction of the total variance along each v_i.
    """

    def __init__(self, n_components: int = 2):
        if not isinstance(n_components, int) or n_components < 1:
            raise ValueError(f"n_components must be a positive integer, got {n_components!r}")
        self.n_components = n_components
        self.mu = self.V = None

    def fit(self, X: torch.Tensor) -> "PCA":
        """Find the mean and the principal subspace of X (N, D); returns self."""
        n, d = X.shape if X.dim() == 2 else (0, 0)
        if X.dim() != 2 or self.n_components > d:
            raise ValueError(f"expected data of shape (N, D) with D >= {self.n_components}, got {tuple(X.shape)}")
        m = self.n_components
        mu, S = mean_and_covariance(X)
        evals, evecs = eigh_descending(S, m)
        evals = evals.clamp(min=0)  # the covariance is positive semi-definite; rounding may give -1e-17
        self.mu = mu.to(X.dtype)
        self.V = evecs.to(X.dtype)
        self.singular_values = (evals * n).sqrt().to(X.dtype)
        self.explained_variance = (evals * n / max(n - 1, 1)).to(X.dtype)
        self.explained_variance_ratio = (evals / S.trace()).to(X.dtype)  # trace = sum of all eigenvalues
        return self

    def _check(self):
        if self.V is None:
            raise RuntimeError("this PCA is not fitted yet: call pca.fit(X) first")

    def encode(self, X: torch.Tensor) -> torch.Tensor:
        """z = V^T (x - mu) for every row: X (N, D) -> Z (N, M)."""
        self._check()
        return (X - self.mu) @ self.V

    def decode(self, Z: torch.Tensor) -> torch.Tensor:
        """x~ = V z + mu for every row: Z (N, M) -> (N, D)."""
        self._check()
        return Z @ self.V.T + self.mu

    def reconstruct(self, X: torch.Tensor) -> torch.Tensor:
        """decode(encode(X)): the projection of X (N, D) onto the principal subspace, (N, D)."""
        return self.decode(self.encode(X))

    def __repr__(self) -> str:
        return f"PCA(n_components={self.n_components})"
