"""Principal component analysis (Section 3.1 of the lab).

    >>> pca = PCA(2).fit(X)                # X: (N, D)
    >>> Z = pca.encode(X)                  # (N, 2)   z = V^T (x - mu)
    >>> X_rec = pca.decode(Z)              # (N, D)   x~ = V z + mu

With the centred data X - 1 mu^T = U Sigma V^T (singular values s_1 >= s_2 >= ...),
the principal subspace is spanned by the first M columns V_M of V, and any x,
from the training set or not, is encoded by z = V_M^T (x - mu) and decoded by
x~ = V_M z + mu (Questions 3.1 and 3.2).

How it is computed: the columns of V are the eigenvectors of the D x D covariance
S = (1/N) sum_n (x_n - mu)(x_n - mu)^T, with eigenvalues lambda_i = s_i^2 / N.
For N >> D (MNIST: 60000 x 784) that is far cheaper than the SVD of the N x D
matrix. One torch code path, on the CPU and on a GPU.

Signs: a singular vector is defined up to its sign, so every column of V is
flipped to make its largest-magnitude entry positive (scikit-learn's ``svd_flip``
on V): the same data give the same components on every machine.
"""
from __future__ import annotations

import torch

__all__ = ["PCA", "mean_and_covariance", "eigh_descending"]


def mean_and_covariance(X: torch.Tensor, block: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean mu (D,) and covariance S = (1/N) sum_n (x_n - mu)(x_n - mu)^T (D, D) of X (N, D), both float64.

    X is read in blocks of ``block`` rows (little memory). The sums and products within a block
    are in the dtype of X (float32 for images: fast), the sums over blocks in float64, and with c = mu
    rounded to the dtype of X, S = (1/N) sum_n (x_n - c)(x_n - c)^T - (mu - c)(mu - c)^T.
    mu = x_1 + mean_n (x_n - x_1): a pixel that never changes gets exactly 0 variance.

    Raises ValueError for data that are not (N, D) floating point or that hold NaN or inf.
    """
    if X.dim() != 2 or X.shape[0] < 1:
        raise ValueError(f"expected data of shape (N, D) with N >= 1, got {tuple(X.shape)}")
    if not X.dtype.is_floating_point:
        raise ValueError(f"expected floating-point data (float32 or float64), got {X.dtype}")
    X, n = X.detach(), X.shape[0]
    mu = X[0].double() + sum((b - X[0]).sum(0).double() for b in X.split(block)) / n
    c = mu.to(X.dtype)
    S = sum((e.T @ e).double() for e in (b - c for b in X.split(block))) / n
    S -= torch.outer(mu - c.double(), mu - c.double())
    if not bool(torch.isfinite(S).all()):
        raise ValueError("the data contain NaN or infinite values: remove or replace them first (torch.nan_to_num)")
    return mu, S


def eigh_descending(S: torch.Tensor, k: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest eigenvalues (k,), descending, and their eigenvectors (D, k) as columns of
    a symmetric S (D, D); all D when k is None. Each eigenvector's largest-magnitude entry is positive.
    """
    evals, evecs = torch.linalg.eigh(S)  # ascending
    k = len(S) if k is None else k
    evals, evecs = evals[-k:].flip(0), evecs[:, -k:].flip(1)
    signs = torch.sign(evecs.gather(0, evecs.abs().argmax(0, keepdim=True)))
    return evals, evecs * torch.where(signs == 0, 1, signs)


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
        if X.dim() != 2 or self.n_components > X.shape[1]:
            raise ValueError(f"expected data of shape (N, D) with D >= {self.n_components}, got {tuple(X.shape)}")
        n = len(X)
        mu, S = mean_and_covariance(X)
        lam, V = eigh_descending(S, self.n_components)
        lam = lam.clamp(min=0)  # S is positive semi-definite; rounding may give -1e-17
        self.mu, self.V = mu.to(X.dtype), V.to(X.dtype)
        self.singular_values = (lam * n).sqrt().to(X.dtype)  # s_i = sqrt(N lambda_i)
        self.explained_variance = (lam * n / max(n - 1, 1)).to(X.dtype)
        self.explained_variance_ratio = (lam / S.trace()).to(X.dtype)  # trace = sum of all eigenvalues
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
