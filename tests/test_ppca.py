"""Probabilistic PCA against independent references: scikit-learn's probabilistic PCA,
torch.distributions.MultivariateNormal and brute-force Gaussian conditioning."""
import math

import numpy as np
import pytest
import torch
from torch.distributions import MultivariateNormal

from labkit.models import PPCA
from labkit.train import fit


def random_ppca(d=6, m=2, seed=0, dtype=torch.float64) -> PPCA:
    """A PPCA with arbitrary (not fitted) parameters."""
    g = torch.Generator().manual_seed(seed)
    model = PPCA(m, data_dim=d).to(dtype)
    with torch.no_grad():
        model.W.copy_(torch.randn(d, m, generator=g))
        model.mu.copy_(torch.randn(d, generator=g))
        model.log_sigma2.fill_(math.log(0.3))
    return model


def covariance(model: PPCA) -> torch.Tensor:
    """C = W W^T + sigma^2 I, built directly (D x D)."""
    W = model.W.detach().double()
    return W @ W.T + model.sigma2.detach().double() * torch.eye(model.data_dim, dtype=torch.float64)


def low_rank_data(n=500, d=10, m=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    Z = torch.randn(n, m, generator=g, dtype=torch.float64)
    A = torch.randn(m, d, generator=g, dtype=torch.float64) * 2
    return Z @ A + 0.5 * torch.randn(n, d, generator=g, dtype=torch.float64) + 1.0


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_log_likelihood_equals_multivariate_normal(dtype):
    model = random_ppca(dtype=dtype)
    X = torch.randn(50, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2
    expected = MultivariateNormal(model.mu.detach().double(), covariance(model)).log_prob(X)
    got = model.log_likelihood(X.to(dtype))
    assert got.shape == (50,) and got.dtype == dtype
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    torch.testing.assert_close(got.double(), expected, rtol=tol, atol=tol)
    torch.testing.assert_close(model.loss(X.to(dtype)).double(), -expected.mean(), rtol=tol, atol=tol)


def test_encode_equals_gaussian_conditioning_of_the_joint():
    """p(z|x) from the joint Gaussian of (z, x): [z; x] ~ N([0; mu], [[I, W^T], [W, C]])."""
    model = random_ppca(d=5, m=3, seed=2)
    W, mu, C = model.W.detach(), model.mu.detach(), covariance(model)
    X = torch.randn(7, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    gain = W.T @ torch.linalg.inv(C)  # Cov(z, x) Cov(x)^-1
    expected_mean = (X - mu) @ gain.T
    expected_cov = torch.eye(3, dtype=torch.float64) - gain @ W
    mean, cov = model.encode(X)
    assert mean.shape == (7, 3) and cov.shape == (3, 3)
    torch.testing.assert_close(mean, expected_mean, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(cov, expected_cov, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(model.reconstruct(X), expected_mean @ W.T + mu)


def test_closed_form_matches_sklearn_score_on_small_data():
    """scikit-learn's PCA.score is the average PPCA log-likelihood at its own estimate.

    scikit-learn normalises the covariance by N - 1 instead of N (maximum
    likelihood), which scales C by N / (N - 1); the average log-likelihood of
    the training data is stationary at the maximum, so the two differ only in
    second order, far below the tolerance.
    """
    from sklearn.decomposition import PCA as SkPCA

    X = low_rank_data()
    model = PPCA(3, data_dim=10).double().fit(X)
    sk = SkPCA(3, svd_solver="full").fit(X.numpy())
    ours = model.log_likelihood(X).mean().item()
    assert ours == pytest.approx(sk.score(X.numpy()), rel=1e-4)
    # and the parameters agree with scikit-learn's noise variance and covariance (up to N/(N-1))
    n = len(X)
    assert model.sigma2.item() == pytest.approx(sk.noise_variance_ * (n - 1) / n, rel=1e-10)
    np.testing.assert_allclose(covariance(model).numpy(), sk.get_covariance() * (n - 1) / n, atol=1e-10)


def test_closed_form_is_a_maximum_of_the_likelihood():
    """At the closed-form estimate the gradient of the average log-likelihood vanishes."""
    X = low_rank_data(seed=4)
    model = PPCA(3, data_dim=10).double().fit(X)
    model.loss(X).backward()
    for p in model.parameters():
        assert p.grad.abs().max() < 1e-8
    best = model.log_likelihood(X).mean()
    with torch.no_grad():  # any perturbation lowers it
        model.W.mul_(1.05)
        assert model.log_likelihood(X).mean() < best


def test_sample_shapes_temperature_and_generator():
    model = random_ppca(d=4, m=2, seed=5)
    g = torch.Generator().manual_seed(0)
    a = model.sample(3, generator=g)
    b = model.sample(3, generator=torch.Generator().manual_seed(0))
    assert a.shape == (3, 4)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(model.sample(2, temperature=0.0), model.mu.detach().expand(2, 4))
    # with the pixel noise, samples have the model's covariance C (and a hotter temperature spreads them)
    S = model.sample(100_000, noise=True, generator=torch.Generator().manual_seed(1)).detach()
    torch.testing.assert_close(torch.cov(S.T), covariance(model), atol=0.1, rtol=0.05)
    hot = model.sample(10_000, temperature=2.0, generator=torch.Generator().manual_seed(2)).detach()
    assert hot.var(0).sum() > 3 * model.sample(10_000, generator=torch.Generator().manual_seed(2)).detach().var(0).sum()


def test_wrong_data_shape():
    with pytest.raises(ValueError, match=r"\(N, 784\)"):
        PPCA(2).log_likelihood(torch.zeros(3, 28, 28))


# --------------------------------------------------------------------------- real MNIST


@pytest.mark.mnist
def test_closed_form_matches_sklearn_score_on_mnist(mnist_test):
    from sklearn.decomposition import PCA as SkPCA

    X, _ = mnist_test
    model = PPCA(2).fit(X)
    sk = SkPCA(2, svd_solver="full").fit(X.double().numpy())
    ll = model.log_likelihood(X)
    assert ll.dtype == torch.float32
    assert ll.mean().item() == pytest.approx(sk.score(X.double().numpy()), rel=1e-4)


@pytest.mark.mnist
@pytest.mark.slow  # trains on all 60000 training images
def test_gradient_training_reaches_the_closed_form_on_mnist(mnist_train):
    """Adam on -mean log p(x) (lr 0.01, batch 500) ends within 1 nat per image of the maximum."""
    X, _ = mnist_train
    best = PPCA(2).fit(X).log_likelihood(X).mean().item()
    torch.manual_seed(0)
    model = PPCA(2)
    history = fit(model, X, epochs=10, progress=False, device="cpu")
    reached = model.log_likelihood(X).mean().item()
    assert history.train_loss[0] > history.train_loss[-1]
    assert best - 1.0 < reached <= best + 1e-3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (the notebooks fit on the GPU when present)")
def test_fit_moves_the_model_to_the_data_device():
    X = torch.rand(200, 10, device="cuda")
    model = PPCA(2, data_dim=10).fit(X)
    assert model.W.device.type == "cuda"
    assert model.encode(X)[0].device.type == "cuda" and model.log_likelihood(X).isfinite().all()
