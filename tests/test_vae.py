"""The VAE and the nonlinear model against independent references.

Where log p(x) is exact: a VAE whose decoder is linear, f(z) = W z + mu, *is*
the PPCA model, so its exact log p(x) = log N(x; mu, W W^T + sigma^2 I) comes
from torch.distributions.MultivariateNormal, and its exact posterior and
expected ELBO from Gaussian algebra written out in this file. None of these
use labkit's code: the VAE only gets its encoder and decoder swapped for
linear layers holding the chosen parameters.
"""
import math

import pytest
import torch
from torch import nn
from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence

from labkit.models import PCA, VAE, NonlinearModel, kl_to_standard_normal_logvar
from labkit.train import fit

D, M = 5, 2


def test_kl_equals_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mean, logvar = torch.randn(20, 3, generator=g), 2 * torch.randn(20, 3, generator=g)
    q = Independent(Normal(mean, (0.5 * logvar).exp()), 1)
    p = Independent(Normal(torch.zeros(3), torch.ones(3)), 1)
    got = kl_to_standard_normal_logvar(mean, logvar)
    assert got.shape == (20,)
    torch.testing.assert_close(got, kl_divergence(q, p))


# --------------------------------------------------------------------------- linear-Gaussian VAE = PPCA


def linear_gaussian(seed=0):
    """W (D, M) with orthogonal columns, mu (D,), sigma^2: PPCA parameters whose posterior is diagonal."""
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(D, M, generator=g, dtype=torch.float64))
    W = Q * torch.tensor([2.0, 1.0], dtype=torch.float64)
    mu = torch.randn(D, generator=g, dtype=torch.float64)
    return W, mu, 0.5


def linear_vae(W, mu, sigma2, post_mean, post_logvar):
    """A float64 VAE with decoder z -> W z + mu and an affine encoder x -> [A (x - mu); logvar]."""
    vae = VAE(latent_dim=M, hidden=8, data_dim=D).double()
    dec, enc_mean, enc_logvar = nn.Linear(M, D).double(), nn.Linear(D, M).double(), nn.Linear(D, M).double()
    with torch.no_grad():
        dec.weight.copy_(W)
        dec.bias.copy_(mu)
        enc_mean.weight.copy_(post_mean)
        enc_mean.bias.copy_(-post_mean @ mu)
        enc_logvar.weight.zero_()
        enc_logvar.bias.copy_(post_logvar)
        vae.log_sigma2.fill_(math.log(sigma2))
    vae.decoder, vae.encoder, vae.encoder_mean, vae.encoder_logvar = dec, nn.Identity(), enc_mean, enc_logvar
    return vae


def exact_posterior(W, sigma2):
    """p(z|x) = N(A (x - mu), S) by conditioning the joint Gaussian: A = W^T C^-1, S = I - W^T C^-1 W."""
    C = W @ W.T + sigma2 * torch.eye(D, dtype=torch.float64)
    A = W.T @ torch.linalg.inv(C)
    return A, torch.eye(M, dtype=torch.float64) - A @ W


def exact_log_likelihood(W, mu, sigma2, X):
    return MultivariateNormal(mu, W @ W.T + sigma2 * torch.eye(D, dtype=torch.float64)).log_prob(X)


def expected_elbo(W, mu, sigma2, A, logvar, X):
    """E_q[log p(x|z)] - KL[q || p(z)] in closed form for q = N(A (x - mu), diag(exp(logvar)))."""
    m = (X - mu) @ A.T
    var = logvar.exp()
    recon = Normal(m @ W.T + mu, math.sqrt(sigma2)).log_prob(X).sum(-1) - (W.pow(2).sum(0) * var).sum() / (2 * sigma2)
    q = Independent(Normal(m, var.sqrt().expand_as(m)), 1)
    p = Independent(Normal(torch.zeros_like(m), torch.ones_like(m)), 1)
    return recon - kl_divergence(q, p)


def data(n, seed):
    return 2 * torch.randn(n, D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_with_the_exact_posterior_the_importance_weighted_estimate_is_exact():
    W, mu, sigma2 = linear_gaussian()
    A, S = exact_posterior(W, sigma2)
    assert torch.allclose(S, S.diagonal().diag())  # orthogonal columns of W: the posterior is diagonal
    vae = linear_vae(W, mu, sigma2, A, S.diagonal().log())
    X = data(30, seed=1)
    exact = exact_log_likelihood(W, mu, sigma2, X)
    torch.manual_seed(0)
    for K in (1, 7):  # every importance weight equals p(x): no Monte Carlo error at all
        torch.testing.assert_close(vae.log_likelihood(X, n_samples=K), exact, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(vae.log_likelihood(X, n_samples=7, max_elements=100), exact, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(expected_elbo(W, mu, sigma2, A, S.diagonal().log(), X), exact)


def test_elbo_is_one_reparameterised_sample():
    W, mu, sigma2 = linear_gaussian(seed=2)
    A, S = exact_posterior(W, sigma2)
    logvar = S.diagonal().log() + 0.7
    vae = linear_vae(W, mu, sigma2, 0.6 * A, logvar)
    X = data(10, seed=3)
    torch.manual_seed(5)
    got = vae.elbo(X)
    torch.manual_seed(5)  # the same noise, by hand with torch.distributions
    m = (X - mu) @ (0.6 * A).T
    z = m + (0.5 * logvar).exp() * torch.randn_like(m)
    q = Independent(Normal(m, (0.5 * logvar).exp().expand_as(m)), 1)
    p = Independent(Normal(torch.zeros_like(m), torch.ones_like(m)), 1)
    expected = Normal(z @ W.T + mu, math.sqrt(sigma2)).log_prob(X).sum(-1) - kl_divergence(q, p)
    torch.testing.assert_close(got, expected)
    torch.manual_seed(5)
    torch.testing.assert_close(vae.loss(X), -expected.mean())


def test_elbo_below_importance_weighted_below_exact_and_tightening_with_k():
    """For an imperfect q: ELBO ~ IWAE(K=1) < IWAE(10) < IWAE(100) < IWAE(1000) <= log p(x), on average."""
    W, mu, sigma2 = linear_gaussian(seed=4)
    A, S = exact_posterior(W, sigma2)
    logvar = S.diagonal().log() - 1.0  # too narrow ...
    vae = linear_vae(W, mu, sigma2, 0.7 * A, logvar)  # ... and shrunk towards 0
    X = data(2000, seed=5)
    exact = exact_log_likelihood(W, mu, sigma2, X).mean().item()
    elbo = expected_elbo(W, mu, sigma2, 0.7 * A, logvar, X).mean().item()
    torch.manual_seed(0)
    sampled_elbo = vae.elbo(X.repeat(10, 1)).mean().item()
    iwae = {K: vae.log_likelihood(X, n_samples=K).mean().item() for K in (1, 10, 100, 1000)}
    assert exact - elbo > 0.5  # a clearly imperfect q: the bounds have room to tighten
    assert sampled_elbo == pytest.approx(elbo, abs=0.05)
    assert iwae[1] == pytest.approx(elbo, abs=0.1)
    assert elbo < iwae[10] < iwae[100] < iwae[1000] <= exact
    assert exact - iwae[1000] < 0.25 * (exact - elbo)


# --------------------------------------------------------------------------- nonlinear model


def test_nonlinear_log_likelihood_is_the_monte_carlo_average():
    torch.manual_seed(0)
    model = NonlinearModel(latent_dim=2, hidden=16, data_dim=D, n_samples=50).double()
    with torch.no_grad():
        model.log_sigma2.fill_(math.log(0.2))
    X = torch.rand(9, D, dtype=torch.float64)
    got = model.log_likelihood(X, generator=torch.Generator().manual_seed(3))
    z = torch.randn(50, 2, generator=torch.Generator().manual_seed(3)).double()
    log_p = Normal(model.decode(z), math.sqrt(0.2)).log_prob(X[:, None, :]).sum(-1)  # (9, 50)
    expected = torch.logsumexp(log_p, 1) - math.log(50)
    torch.testing.assert_close(got, expected)
    chunked = model.log_likelihood(X, generator=torch.Generator().manual_seed(3), max_elements=120)
    torch.testing.assert_close(chunked, expected)
    assert model.loss(X).dim() == 0


def test_nonlinear_model_with_a_linear_decoder_estimates_the_ppca_likelihood():
    """With f(z) = W z + mu the model is PPCA; its Monte Carlo estimate converges to the exact log p(x)."""
    W, mu, sigma2 = linear_gaussian(seed=6)
    model = NonlinearModel(latent_dim=M, hidden=8, data_dim=D, n_samples=200_000).double()
    dec = nn.Linear(M, D).double()
    with torch.no_grad():
        dec.weight.copy_(W)
        dec.bias.copy_(mu)
        model.log_sigma2.fill_(math.log(sigma2))
    model.decoder = dec
    z = torch.randn(200, M, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    X = z @ W.T + mu + math.sqrt(sigma2) * torch.randn(200, D, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        got = model.log_likelihood(X, generator=torch.Generator().manual_seed(0))
    exact = exact_log_likelihood(W, mu, sigma2, X)
    assert (got - exact).abs().mean() < 0.02


def test_samples_and_shapes():
    torch.manual_seed(0)
    for model in (VAE(), NonlinearModel()):
        a = model.sample(4, generator=torch.Generator().manual_seed(1))
        b = model.sample(4, generator=torch.Generator().manual_seed(1))
        assert a.shape == (4, 784) and torch.equal(a, b)
        torch.testing.assert_close(model.sample(3, temperature=0.0), model.decode(torch.zeros(3, 2)).detach())
        assert model.decode(torch.zeros(5, 2)).shape == (5, 784)
    vae = VAE()
    X = torch.rand(6, 784)
    mean, logvar = vae.encode(X)
    assert mean.shape == logvar.shape == (6, 2)
    assert vae.reconstruct(X).shape == (6, 784)
    assert vae.elbo(X).shape == (6,) and vae.log_likelihood(X, n_samples=3).shape == (6,)
    assert NonlinearModel(n_samples=5).log_likelihood(X).shape == (6,)


# --------------------------------------------------------------------------- the lab's budget on MNIST


def recon_error(X, X_rec) -> float:
    """Mean over images of the squared error summed over the pixels."""
    return (X - X_rec).pow(2).sum(1).mean().item()


@pytest.mark.mnist
@pytest.mark.slow
def test_vae_reconstructs_mnist_better_than_pca(mnist_train, mnist_test):
    X, _ = mnist_train
    Xt, _ = mnist_test
    pca_error = recon_error(Xt, PCA(2).fit(X).reconstruct(Xt))
    torch.manual_seed(0)
    vae = VAE()
    history = fit(vae, X, epochs=20, batch_size=500, lr=0.01, progress=False, device="cpu")
    with torch.no_grad():
        vae_error = recon_error(Xt, vae.reconstruct(Xt))
    assert 40 < pca_error < 48
    assert vae_error < 0.85 * pca_error, (vae_error, pca_error)
    assert history.train_loss[-1] < history.train_loss[0]


def test_nonlinear_model_and_vae_train():
    """A few epochs on small synthetic images lower both losses (MNIST-scale training: test above)."""
    g = torch.Generator().manual_seed(0)
    X = torch.sigmoid(torch.randn(1000, 3, generator=g) @ torch.randn(3, 784, generator=g))
    for model in (NonlinearModel(hidden=32, n_samples=16), VAE(hidden=32)):
        torch.manual_seed(0)
        history = fit(model, X, epochs=3, batch_size=100, progress=False, device="cpu")  # 30 steps
        assert history.train_loss[-1] < history.train_loss[0] - 50, (type(model).__name__, history.train_loss)
