"""Seeded initial parameters for PPCA, the nonlinear model and the VAE, without torch's global random state.

    >>> VAE(seed=0)                                   # the same initial parameters whatever was drawn before
    >>> VAE(generator=torch.Generator().manual_seed(0))   # the same numbers, from a generator of your own

A model built with ``seed`` (or ``generator``) draws its initial parameters from its own
``torch.Generator`` and leaves the global random state as it was, so what earlier notebook
cells or a student's code drew no longer changes it. The distributions are PyTorch's defaults,
drawn in the order the layers are built:

    nn.Linear(fan_in, fan_out):  weight, bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) entrywise
    PPCA:                        W ~ N(0, 0.1^2) entrywise

so ``Model(seed=s)`` has the parameters that ``torch.manual_seed(s); Model()`` gives (tests/test_seeding.py
checks it). Without either (``seed=None``) a model initialises from the global random state, as
``nn.Module`` does.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import torch
from torch import nn

from labkit.errors import OptionError

__all__ = ["init_generator", "global_rng_kept", "reset_linear_layers"]


def init_generator(seed: int | None, generator: torch.Generator | None) -> torch.Generator | None:
    """The generator that a model's initial parameters come from: ``generator``, a new CPU one seeded
    with ``seed``, or None (the global random state) when both are None."""
    if seed is not None and generator is not None:
        raise OptionError("give seed= or generator=, not both: the generator would ignore the seed")
    if seed is None:
        if generator is not None and not isinstance(generator, torch.Generator):
            raise OptionError(f"generator= must be a torch.Generator, got {type(generator).__name__}")
        return generator
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise OptionError(f"seed= must be a non-negative integer (e.g. seed=0), got {seed!r}")
    return torch.Generator().manual_seed(seed)


@contextmanager
def global_rng_kept(keep: bool):
    """Restore torch's global CPU random state on exit when ``keep`` (the modules a model builds draw from it)."""
    if not keep:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        yield


@torch.no_grad()
def reset_linear_layers(module: nn.Module, generator: torch.Generator) -> None:
    """Redraw weight and bias of every ``nn.Linear`` in ``module`` (in ``module.modules()`` order) from
    ``generator``: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default. Drawn on the generator's device, then copied."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear) and layer.in_features > 0:
            # torch's kaiming_uniform_(weight, a=sqrt(5)) bound, computed as torch does, to the last bit
            a = math.sqrt(5)
            weight_bound = math.sqrt(3.0) * math.sqrt(2.0 / (1 + a**2)) / math.sqrt(layer.in_features)
            _uniform(layer.weight, weight_bound, generator)
            if layer.bias is not None:
                _uniform(layer.bias, 1 / math.sqrt(layer.in_features), generator)


def _uniform(p: torch.Tensor, bound: float, generator: torch.Generator) -> None:
    """p <- U(-bound, bound) entrywise, drawn on the generator's device (nn.init takes generator= from torch 2.2; the floor is 2.1)."""
    p.copy_(torch.empty(p.shape, dtype=p.dtype, device=generator.device).uniform_(-bound, bound, generator=generator))
