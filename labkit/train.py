"""One training loop for every gradient-trained model (PPCA, NonlinearModel, VAE).

    >>> from labkit.train import fit
    >>> history = fit(model, X, X_test=Xt)       # X, Xt: (N, 784) float32; Adam, lr 0.01, 20 epochs, batch 500
    >>> history.train_loss[-1], history.test_loss[-1], history.seconds

The loop minimises ``model.loss(x)`` (or ``loss(model, x)`` when given): the
mean over the batch of a per-image cost in nats. The whole data set is one
in-memory tensor, moved to the device once; minibatches are index slices
(``labkit.data.batches``) in an order drawn from a seeded CPU generator, so a
run on the CPU is reproducible from ``seed``.

Speed: nothing waits for the device inside an epoch. Batch losses are kept
as tensors and read once per epoch, which is also when the loop checks that
the loss and the parameters are finite. If they are not, the model gets back
the parameters it had at the start of that epoch and ``TrainingDivergedError``
says where it happened.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from tqdm.auto import tqdm

from labkit.data import batches, default_device
from labkit.errors import OptionError, TrainingError

__all__ = ["fit", "History", "TrainingDivergedError", "grading_mode"]

EVAL_CHUNK = 10_000  # rows per forward pass when computing the test loss


class TrainingDivergedError(TrainingError):
    """The loss became NaN or infinite; ``epoch`` and ``batch`` (1-based) say where."""

    def __init__(self, message: str, epoch: int, batch: int | None):
        super().__init__(message)
        self.epoch, self.batch = epoch, batch


@dataclass
class History:
    """What ``fit`` did: losses per epoch (nats per image), wall time and the number of epochs run."""

    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    epochs: int = 0


def grading_mode() -> bool:
    """True when the environment variable LABKIT_GRADING is "1" or "true": notebooks then train briefly."""
    return os.environ.get("LABKIT_GRADING", "").strip().lower() in ("1", "true")


def _check_data(X, name: str, dim: int) -> None:
    expected = f"a tensor of shape (N, {dim}) float32 (images as rows of {dim} pixels in [0, 1])"
    if not isinstance(X, torch.Tensor):
        raise ValueError(f"{name} must be {expected}, got {type(X).__name__}")
    if X.dim() != 2 or X.shape[1] != dim or X.shape[0] == 0:
        hint = " (flatten images with X.reshape(len(X), -1))" if X.dim() > 2 else ""
        raise ValueError(f"{name} must be {expected}, got shape {tuple(X.shape)}{hint}")
    if X.dtype != torch.float32:
        hint = " (convert with X.float() / 255 for raw pixels)" if not X.dtype.is_floating_point else " (X.float())"
        raise ValueError(f"{name} must be {expected}, got dtype {X.dtype}{hint}")


@torch.no_grad()
def _mean_loss(loss_fn, model, X: torch.Tensor) -> float:
    """Mean of loss_fn over X, in chunks of EVAL_CHUNK rows, weighted by chunk size."""
    total = sum(loss_fn(model, X[i : i + EVAL_CHUNK]).double() * len(X[i : i + EVAL_CHUNK])
                for i in range(0, len(X), EVAL_CHUNK))
    return total.item() / len(X)


def _check_inputs(model, X, X_test, epochs, batch_size, lr) -> None:
    dim = getattr(model, "data_dim", 784)
    _check_data(X, "X", dim)
    if X_test is not None:
        _check_data(X_test, "X_test", dim)
    _check_budget(epochs, batch_size, lr)


def _check_budget(epochs, batch_size, lr) -> None:
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise OptionError(f"{name}= must be a positive integer, got {value!r}")
    if not lr > 0:
        raise OptionError(f"lr= must be positive, got {lr!r}")


def _adam(params, lr: float) -> torch.optim.Optimizer:
    try:  # the fused Adam updates each parameter in one kernel: several times faster on the CPU
        return torch.optim.Adam(params, lr=lr, fused=True)
    except RuntimeError:  # a device or dtype without a fused implementation
        return torch.optim.Adam(params, lr=lr)


def _batch_sizes(n: int, batch_size: int) -> torch.Tensor:
    """The size of each minibatch of an epoch (float64), the last one holding the rest."""
    return torch.tensor([min(batch_size, n - i) for i in range(0, n, batch_size)], dtype=torch.float64)


def _train_epoch(model, loss_fn, optimizer, X, batch_size: int, order: torch.Generator) -> list[torch.Tensor]:
    """One pass over X in minibatches; the batch losses, still on the device (nothing waits for it)."""
    model.train()
    batch_losses = []
    for xb in batches(X, batch_size=batch_size, shuffle=True, generator=order):
        value = loss_fn(model, xb)
        if value.dim() != 0 or not value.requires_grad:
            raise ValueError("the loss must be a scalar computed from the model's parameters (the mean over "
                             f"the batch); got shape {tuple(value.shape)}, requires_grad={value.requires_grad}")
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
        batch_losses.append(value.detach().float())
    return batch_losses


def _read_epoch(batch_losses, params) -> tuple[torch.Tensor, bool]:
    """One read from the device per epoch: the batch losses (float64, CPU) and whether all parameters are finite."""
    finite = torch.stack([torch.isfinite(p).all() for p in params]).all().float().view(1)
    summary = torch.cat([torch.stack(batch_losses), finite]).double().cpu()
    return summary[:-1], bool(summary[-1])


def _diverged(losses: torch.Tensor, epoch: int, lr: float) -> TrainingDivergedError:
    """The error for an epoch whose losses (or parameters) are not all finite: where, and what to try."""
    bad = (~torch.isfinite(losses)).nonzero()
    batch = int(bad[0]) + 1 if len(bad) else None
    what = (f"the loss became {'NaN' if losses[batch - 1].isnan() else 'infinite'} at epoch {epoch}, "
            f"batch {batch} of {len(losses)}" if batch else f"the parameters became NaN or infinite in epoch {epoch}")
    return TrainingDivergedError(
        f"training diverged: {what} (lr={lr:g}). Try a lower learning rate, e.g. lr={lr / 10:g}. "
        f"The model keeps the parameters it had at the end of epoch {epoch - 1}"
        f"{' (its initial parameters)' if epoch == 1 else ''}.",
        epoch, batch)


def fit(
    model: torch.nn.Module,
    X: torch.Tensor,
    *,
    X_test: torch.Tensor | None = None,
    loss: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor] | None = None,
    epochs: int = 20,
    batch_size: int = 500,
    lr: float = 0.01,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = True,
    desc: str | None = None,
) -> History:
    """Train ``model`` with Adam on minibatches of X; returns a ``History``.

    Args:
        model: an ``nn.Module`` with ``loss(x) -> scalar`` (unless ``loss`` is given).
        X: training images (N, D) float32, D = ``model.data_dim`` (784 for MNIST).
        X_test: optional test images (N_test, D); its mean loss is computed after every epoch.
        loss: optional ``loss(model, x) -> scalar`` used instead of ``model.loss(x)``.
        epochs, batch_size, lr: the budget; the lab's is 20 epochs, batch 500, lr 0.01.
        seed: seeds the batch order and ``torch.manual_seed`` (the sampling inside the
            loss). Initialise the model before calling fit (its own seed).
        device: where to train (default ``labkit.data.default_device()``: CUDA when present).
            The model is moved there and stays there.
        progress: show a tqdm progress bar with the losses.
        desc: label of the progress bar (default: the model's class name).

    Raises:
        ValueError: X or X_test is not (N, D) float32, or the loss is not a scalar.
        OptionError (a ValueError): a bad budget (epochs, batch_size, lr).
        TrainingDivergedError: the loss or the parameters became NaN or infinite.
    """
    _check_inputs(model, X, X_test, epochs, batch_size, lr)
    loss_fn = loss if loss is not None else (lambda m, x: m.loss(x))
    device = torch.device(device) if device is not None else default_device()
    model.to(device)
    X, X_test = X.to(device), (X_test.to(device) if X_test is not None else None)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = _adam(params, lr)
    torch.manual_seed(seed)
    order = torch.Generator().manual_seed(seed)
    sizes = _batch_sizes(len(X), batch_size)

    history = History()
    start = time.perf_counter()
    bar = tqdm(range(1, epochs + 1), desc=desc or type(model).__name__, unit="epoch", disable=not progress)
    for epoch in bar:
        saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
        losses, params_finite = _read_epoch(_train_epoch(model, loss_fn, optimizer, X, batch_size, order), params)
        if not (params_finite and torch.isfinite(losses).all()):
            model.load_state_dict(saved)
            bar.close()
            raise _diverged(losses, epoch, lr)
        history.train_loss.append((losses @ sizes).item() / len(X))  # the mean over images, batches weighted by size
        if X_test is not None:
            model.eval()
            history.test_loss.append(_mean_loss(loss_fn, model, X_test))
        history.epochs = epoch
        bar.set_postfix({"train": f"{history.train_loss[-1]:.2f}",
                         **({"test": f"{history.test_loss[-1]:.2f}"} if X_test is not None else {})})
    history.seconds = time.perf_counter() - start
    model.train()
    return history
