"""The numbers the lab compares models by: tensors in, tensors out, no figures.

    >>> from labkit import metrics
    >>> e = metrics.squared_errors(X_test, model.reconstruct(X_test))   # (N,)
    >>> metrics.per_digit_mean(e, y_test)                               # (10,): the error of each digit

Owns: the computations that the figures (``labkit.plotting``), ``labkit lab`` and the
solution notebooks share. Imports nothing from labkit. The notation is the notebooks':
an image is a row x (D,) of pixel values, its reconstruction x~ (D,), D = 784 for MNIST.

In the notebooks the students write ``squared_errors`` themselves (notebooks 1-3); this
one is the kit's, for ``labkit lab`` and the figures.
"""
from __future__ import annotations

import torch

__all__ = ["squared_errors", "per_digit_mean"]

N_DIGITS = 10


def _tensor(x, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor, got {type(x).__name__}; convert it with torch.as_tensor({name})")
    return x


def squared_errors(X: torch.Tensor, X_rec: torch.Tensor) -> torch.Tensor:
    """The squared reconstruction error of each image, summed over its pixels:

        e(x_n) = ||x_n - x~_n||^2 = sum_{j=1}^D (x_nj - x~_nj)^2

    Args:
        X: images (N, D), one per row.
        X_rec: their reconstructions (N, D), on the same device.

    Returns:
        e: (N,), in the dtype of ``X - X_rec``; differentiable (nothing is detached).
    """
    _tensor(X, "X")
    _tensor(X_rec, "X_rec")
    if X.ndim != 2 or X_rec.shape != X.shape:
        raise ValueError(f"X and X_rec must be matrices (N, D) of the same shape, one image per row; got shapes "
                         f"{tuple(X.shape)} and {tuple(X_rec.shape)} (flatten images with X.reshape(len(X), -1))")
    return ((X - X_rec) ** 2).sum(dim=1)


def _digits(labels, n: int, device: torch.device) -> torch.Tensor:
    """Labels (n,) or (n, 1) as an int64 tensor on ``device``, checked to be whole digits 0-9."""
    lab = _tensor(labels, "labels").detach()
    if lab.ndim == 2 and lab.shape[1] == 1:
        lab = lab[:, 0]
    if lab.ndim != 1 or lab.shape[0] != n:
        raise ValueError(f"labels must have shape ({n},), one digit per row, got shape {tuple(lab.shape)}")
    if lab.is_floating_point():
        if not bool((torch.isfinite(lab) & (lab == lab.round())).all()):
            raise ValueError("labels must hold whole digits 0-9")
    elif lab.dtype == torch.bool or lab.is_complex():
        raise ValueError(f"labels must hold digits 0-9, got dtype {lab.dtype}")
    lab = lab.to(torch.int64)
    if lab.numel() and (lab.min() < 0 or lab.max() >= N_DIGITS):
        raise ValueError(f"labels must hold digits 0-9, got values from {lab.min().item()} to {lab.max().item()}")
    return lab.to(device)


def per_digit_mean(values: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The average of per-sample values over the samples of each digit:

        m_d = (1 / N_d) sum_{n : y_n = d} v_n,     d = 0, ..., 9,  N_d = #{n : y_n = d}

    Args:
        values: v (N,) (e.g. squared errors) or (N, K) (e.g. encodings z_n, K = M).
        labels: y (N,), the digits 0-9 (any device; moved to that of ``values``).

    Returns:
        m: (10,) or (10, K), row d for digit d, NaN for a digit without samples; detached,
        on the device of ``values``, in its dtype (float32 for integer values). Sums are
        accumulated in float64 (float32 on MPS) with ``bincount`` / ``index_add_``.
    """
    v = _tensor(values, "values").detach()
    if v.ndim not in (1, 2):
        raise ValueError(f"values must have shape (N,) or (N, K), got shape {tuple(v.shape)}")
    lab = _digits(labels, v.shape[0], v.device)
    acc = torch.float32 if v.device.type == "mps" else torch.float64
    counts = torch.bincount(lab, minlength=N_DIGITS).to(acc)
    if v.ndim == 1:
        sums = torch.bincount(lab, weights=v.to(acc), minlength=N_DIGITS)
    else:
        sums = torch.zeros(N_DIGITS, v.shape[1], dtype=acc, device=v.device).index_add_(0, lab, v.to(acc))
        counts = counts[:, None]
    out = sums / counts  # 0 / 0 = NaN for a digit without samples
    return out.to(v.dtype if v.is_floating_point() else torch.float32)
