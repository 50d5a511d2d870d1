"""Seeded models: PPCA, NonlinearModel and VAE built with ``seed=`` (or ``generator=``) start, and after
``labkit.train.fit`` end, with the same parameters whatever torch's global random state was before,
and leave that state as it was. The reference for the distribution of the initial parameters is
PyTorch's own initialisation after ``torch.manual_seed``."""
from __future__ import annotations

import pytest
import torch

from labkit.errors import OptionError
from labkit.models import VAE, NonlinearModel, PPCA
from labkit.train import fit

SMALL = {  # small versions of the three models, for data of dimension 8
    "PPCA": lambda **kw: PPCA(2, data_dim=8, **kw),
    "NonlinearModel": lambda **kw: NonlinearModel(latent_dim=2, hidden=16, data_dim=8, n_samples=10, **kw),
    "VAE": lambda **kw: VAE(latent_dim=2, hidden=16, data_dim=8, **kw),
}
FULL = {"PPCA": PPCA, "NonlinearModel": NonlinearModel, "VAE": VAE}  # the lab's sizes


def parameters(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def built_after(draws: int, make, **kw) -> torch.nn.Module:
    """make(**kw) after drawing ``draws`` numbers from the global random state (from a different seed each time)."""
    torch.manual_seed(1000 + draws)
    torch.rand(draws)
    return make(**kw)


@pytest.mark.parametrize("name", FULL)
def test_seeded_initial_parameters_are_torch_defaults_after_manual_seed(name):
    torch.manual_seed(3)
    expected = parameters(FULL[name]())  # PyTorch's own initialisation, from the global state seeded with 3
    torch.manual_seed(99)
    assert same(parameters(FULL[name](seed=3)), expected)


@pytest.mark.parametrize("name", SMALL)
def test_same_seed_same_initial_parameters_whatever_was_drawn_before(name):
    first = parameters(built_after(0, SMALL[name], seed=7))
    for draws in (1, 13, 1000):
        assert same(parameters(built_after(draws, SMALL[name], seed=7)), first)
    assert same(parameters(SMALL[name](generator=torch.Generator().manual_seed(7))), first)


@pytest.mark.parametrize("name", SMALL)
def test_different_seeds_different_initial_parameters(name):
    a, b = parameters(SMALL[name](seed=0)), parameters(SMALL[name](seed=1))
    assert not torch.equal(a["W" if name == "PPCA" else "decoder.0.weight"], b["W" if name == "PPCA" else "decoder.0.weight"])


@pytest.mark.parametrize("name", SMALL)
def test_a_seeded_model_leaves_the_global_random_state_as_it_was(name):
    torch.manual_seed(5)
    torch.rand(3)
    state = torch.get_rng_state()
    SMALL[name](seed=0)
    SMALL[name](generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("name", SMALL)
def test_without_a_seed_the_global_random_state_decides_as_before(name):
    torch.manual_seed(5)
    a = parameters(SMALL[name]())
    state = torch.get_rng_state()
    b = parameters(SMALL[name]())  # drawn from where the first one left the global state
    assert not torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(5)
    assert same(parameters(SMALL[name]()), a) and not same(a, b)


def _trained(name: str, seed: int, draws: int) -> dict[str, torch.Tensor]:
    X = torch.rand(120, 8, generator=torch.Generator().manual_seed(42))
    model = built_after(draws, SMALL[name], seed=seed)
    torch.rand(draws + 5)  # more draws between construction and training
    fit(model, X, epochs=2, batch_size=40, lr=0.01, seed=0, device="cpu", progress=False)
    return parameters(model)


@pytest.mark.parametrize("name", SMALL)
def test_same_seed_same_trained_model_whatever_was_drawn_before(name):
    first = _trained(name, seed=11, draws=0)
    assert same(_trained(name, seed=11, draws=57), first)
    assert not same(_trained(name, seed=12, draws=0), first)  # fit's own seed is 0 in all three: the model's seed matters


@pytest.mark.parametrize("kw, message", [
    (dict(seed=-1), "seed= must be a non-negative integer"),
    (dict(seed=1.5), "seed= must be a non-negative integer"),
    (dict(seed=True), "seed= must be a non-negative integer"),
    (dict(generator=3), "generator= must be a torch.Generator"),
    (dict(seed=0, generator=torch.Generator()), "give seed= or generator=, not both"),
])
def test_bad_seed_or_generator(kw, message):
    for make in SMALL.values():
        with pytest.raises(OptionError, match=message):
            make(**kw)
