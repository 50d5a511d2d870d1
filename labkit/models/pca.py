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
    On the CPU numpy computes ``b.T @ b`` with the symmetric BLAS routine (syrk),
    half the work of a general matrix product; the shifted block is written into
    one reused buffer, and its column sums are a matrix-vector product.

    (Multiplying the raw, unshifted blocks, as scikit-learn's PCA does, saves the
    shift, about 15% of the time, but the float32 sums then lose digits to the
    subtraction of mu mu^T: with 20 components the reconstructions of the MNIST
    test images drift past 1e-5 of the exact SVD's, tests/test_pca.py.)
    """
    if X.dim() != 2 or X.shape[0] < 1:
        raise ValueError(f"expected data of shape (N, D) with N >= 1, got {tuple(X.shape)}")
    if not X.dtype.is_floating_point:
        raise ValueError(f"expected floating-point data (float32 or float64), got {X.dtype}")
    n, d = X.shape
    if X.device.type == "cpu":
        Xn = X.detach().contiguous().numpy()
        centre = Xn[:block].mean(0)
        buffer = np.empty((min(block, n), d), dtype=Xn.dtype)
        ones = np.ones(len(buffer), dtype=Xn.dtype)
        total, S = np.zeros(d), np.zeros((d, d))
        for start in range(0, n, block):
            rows = min(block, n - start)
            b = np.subtract(Xn[start : start + rows], centre, out=buffer[:rows])
            total += ones[:rows] @ b
            S += b.T @ b
        centre, total, S = (torch.from_numpy(a) for a in (centre, total, S))
    else:
        X = X.detach()
        centre = X[:block].mean(0)
        total = torch.zeros(d, dtype=torch.float64, device=X.device)
        S = torch.zeros(d, d, dtype=torch.float64, device=X.device)
        for start in range(0, n, block):
            b = X[start : start + block] - centre
            total += b.sum(0, dtype=torch.float64)
            S += (b.T @ b).double()
    shift = total / n
    return centre.double() + shift, S / n - torch.outer(shift, shift)


def eigh_descending(S: torch.Tensor, k: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest eigenvalues (k,) in descending order and their eigenvectors (D, k), as
    columns, of a symmetric S (D, D); all D of them when k is None.

    Each eigenvector's largest-magnitude entry is made positive (deterministic signs).
    """
    d = S.shape[0]
    k = d if k is None else k
    if S.device.type == "cpu":  # numpy's LAPACK is the faster one on the CPU here
        evals, evecs = (torch.from_numpy(a) for a in np.linalg.eigh(S.numpy()))
    else:
        evals, evecs = torch.linalg.eigh(S)
    evals, evecs = evals[d - k :].flip(0), evecs[:, d - k :].flip(1)
    biggest = evecs.abs().argmax(0)
    signs = torch.sign(evecs[biggest, torch.arange(evecs.shape[1], device=evecs.device)])
    signs[signs == 0] = 1
    return evals, evecs * signs


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
