"""The prior p(z) = N(z; 0, I_M) that PPCA, the nonlinear model and the VAE share."""
from __future__ import annotations

import torch

__all__ = ["sample_prior"]


def sample_prior(n: int, latent_dim: int, like: torch.Tensor, temperature: float = 1.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """n latent vectors z ~ N(0, temperature^2 I_M): (n, M), on the device and in the dtype of ``like``.

    The numbers are drawn on the generator's device (so a CPU generator reproduces
    the same z whatever device the model is on), then moved.
    """
    device = generator.device if generator is not None else like.device
    z = temperature * torch.randn(n, latent_dim, generator=generator, device=device)
    return z.to(like.device, like.dtype)
