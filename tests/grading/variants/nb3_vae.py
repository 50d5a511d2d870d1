"""Variants of the solution cells of 3_vae. SLOW_MC, correct but slow, is graded end to end under
--jobs 2 by test_autograde_agreement.py (too slow to re-run here for every variant)."""

from grading.variants import SQUARED_ERRORS, changed

SLOW_MC = '''
def mc_log_likelihood(model, X, Z):
    # correct but slow: one image at a time, with torch.distributions
    F = model.decode(Z)
    rows = []
    for x in X:
        log_p = torch.distributions.Normal(F, model.sigma2.sqrt()).log_prob(x).sum(dim=1)
        rows.append(torch.logsumexp(log_p, dim=0) - math.log(len(Z)))
    return torch.stack(rows)
'''

# A right vae_cost by the lab's formulas; each mistake below changes a line or two of it.
SAMPLE_LINE = "    z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)\n"
VAE_COST = f'''
def vae_cost(model, x):
    mean, logvar = model.encode(x)
{SAMPLE_LINE}    D = x.shape[1]
    log_px = -0.5 * D * torch.log(2 * math.pi * model.sigma2) - 0.5 * ((x - model.decode(z)) ** 2).sum(1) / model.sigma2
    return -(log_px - kl_term(mean, logvar)).mean()
'''

CELLS = {
    "closest-pairs": {
        "correct": {
            "squared distances, combinations": '''
import itertools
def closest_digit_pairs(means, k=5):
    d2 = ((means[:, None, :] - means[None, :, :]) ** 2).sum(-1)
    return sorted(itertools.combinations(range(10), 2), key=lambda p: float(d2[p[0], p[1]]))[:k]
''',
            "argsort of the upper triangle, numpy ints": '''
def closest_digit_pairs(means, k=5):
    d = torch.cdist(means.double(), means.double())
    i, j = torch.triu_indices(10, 10, offset=1)
    order = torch.argsort(d[i, j], stable=True)[:k]
    return [(i[o].numpy(), j[o].numpy()) for o in order]
''',
        },
        "wrong": {
            "nearest neighbour per digit": '''
def closest_digit_pairs(means, k=5):
    d = torch.cdist(means, means)
    d.fill_diagonal_(float("inf"))
    nearest = d.argmin(dim=1).tolist()
    pairs = sorted({(min(i, j), max(i, j)) for i, j in enumerate(nearest)}, key=lambda p: d[p].item())
    return pairs[:k]
''',
            "farthest first": '''
def closest_digit_pairs(means, k=5):
    d = torch.cdist(means, means)
    pairs = [(i, j) for i in range(10) for j in range(i + 1, 10)]
    return sorted(pairs, key=lambda p: -d[p].item())[:k]
''',
            "pairs with itself": '''
def closest_digit_pairs(means, k=5):
    d = torch.cdist(means, means)
    pairs = [(i, j) for i in range(10) for j in range(i, 10)]
    return sorted(pairs, key=lambda p: d[p].item())[:k]
''',
        },
    },
    "mc-cost": {
        "downstream": ("nonlinear-training-tests",),
        "correct": {
            "torch.distributions, broadcast": '''
def mc_log_likelihood(model, X, Z):
    F = model.decode(Z)
    log_p = torch.distributions.Normal(F, model.sigma2.sqrt()).log_prob(X[:, None, :]).sum(-1)
    return torch.logsumexp(log_p, dim=1) - math.log(Z.shape[0])
''',
            "logsumexp by hand, float32 Z": '''
def mc_log_likelihood(model, X, Z):
    F = model.decode(Z.to(X.dtype))
    D = X.shape[1]
    sq = ((X[:, None, :] - F[None, :, :]) ** 2).sum(-1)
    log_p = -0.5 * D * (math.log(2 * math.pi) + model.log_sigma2) - 0.5 * sq / model.sigma2
    top = log_p.max(dim=1, keepdim=True).values
    return (top + torch.log(torch.exp(log_p - top).mean(dim=1, keepdim=True))).squeeze(1)
''',
            "cdist, float64": '''
def mc_log_likelihood(model, X, Z):
    F = model.decode(Z).double()
    s2 = model.sigma2.double()
    sq = torch.cdist(X.double(), F) ** 2
    log_p = -0.5 * X.shape[1] * torch.log(2 * math.pi * s2) - 0.5 * sq / s2
    return (torch.logsumexp(log_p, dim=1) - math.log(Z.shape[0])).to(X.dtype)
''',
        },
        "wrong": {
            "mean of the logs": '''
def mc_log_likelihood(model, X, Z):
    F = model.decode(Z)
    log_p = torch.distributions.Normal(F, model.sigma2.sqrt()).log_prob(X[:, None, :]).sum(-1)
    return log_p.mean(dim=1)
''',
            "no -log K": '''
def mc_log_likelihood(model, X, Z):
    F = model.decode(Z)
    log_p = torch.distributions.Normal(F, model.sigma2.sqrt()).log_prob(X[:, None, :]).sum(-1)
    return torch.logsumexp(log_p, dim=1)
''',
            "sigma instead of sigma^2": '''
def mc_log_likelihood(model, X, Z):
    F = model.decode(Z)
    log_p = torch.distributions.Normal(F, model.sigma2).log_prob(X[:, None, :]).sum(-1)
    return torch.logsumexp(log_p, dim=1) - math.log(Z.shape[0])
''',
            "cost with the wrong sign": '''
def nonlinear_cost(model, x):
    Z = torch.randn(N_SAMPLES, model.latent_dim, device=x.device, dtype=x.dtype)
    return mc_log_likelihood(model, x, Z).mean()
''',
            "log of a sum of exps (underflows at D = 784)": '''
def mc_log_likelihood(model, X, Z):
    F = model.decode(Z)
    log_p = torch.distributions.Normal(F, model.sigma2.sqrt()).log_prob(X[:, None, :]).sum(-1)
    return torch.log(torch.exp(log_p).mean(dim=1))
''',
            "fixed samples": '''
_Z_FIXED = {}
def nonlinear_cost(model, x):
    key = (x.device, x.dtype, model.latent_dim)
    if key not in _Z_FIXED:
        _Z_FIXED[key] = torch.randn(N_SAMPLES, model.latent_dim, generator=torch.Generator().manual_seed(0),
                                    dtype=x.dtype).to(x.device)
    return -mc_log_likelihood(model, x, _Z_FIXED[key]).mean()
''',
        },
        "hidden_only": ("log of a sum of exps (underflows at D = 784)",),
    },
    "vae-kl": {
        "downstream": ("vae-cost-tests", "vae-training-tests"),
        "correct": {
            "torch.distributions": '''
def kl_term(mean, logvar):
    from torch.distributions import Normal, kl_divergence
    return kl_divergence(Normal(mean, torch.exp(0.5 * logvar)), Normal(torch.zeros_like(mean), 1.0)).sum(-1)
''',
            "float32 loop over the coordinates": '''
def kl_term(mean, logvar):
    total = 0.0
    for i in range(mean.shape[1]):
        m, lv = mean[:, i].float(), logvar[:, i].float()
        total = total + (lv.exp() - lv - 1 + m * m) / 2
    return total
''',
        },
        "wrong": {
            "sign slip": '''
def kl_term(mean, logvar):
    return -0.5 * (logvar.exp() + mean ** 2 - 1.0 - logvar).sum(dim=-1)
''',
            "exp(logvar) as the standard deviation": '''
def kl_term(mean, logvar):
    return 0.5 * ((2 * logvar).exp() + mean ** 2 - 1.0 - 2 * logvar).sum(dim=-1)
''',
            "no -1": '''
def kl_term(mean, logvar):
    return 0.5 * (logvar.exp() + mean ** 2 - logvar).sum(dim=-1)
''',
            "no 1/2": '''
def kl_term(mean, logvar):
    return (logvar.exp() + mean ** 2 - 1.0 - logvar).sum(dim=-1)
''',
        },
        "reference": {
            "labkit's kl_to_standard_normal_logvar": '''
import labkit.models.vae
kl_term = labkit.models.vae.kl_to_standard_normal_logvar
''',
        },
    },
    "vae-cost": {
        "downstream": ("vae-training-tests",),
        "correct": {
            "torch.distributions and rsample": '''
def vae_cost(model, x):
    from torch.distributions import Normal
    mean, logvar = model.encode(x)
    z = Normal(mean, torch.exp(0.5 * logvar)).rsample()
    log_px = Normal(model.decode(z), model.sigma2.sqrt()).log_prob(x).sum(-1)
    return (kl_term(mean, logvar) - log_px).mean()
''',
            "std from sqrt, mse_loss": '''
def vae_cost(model, x):
    mean, logvar = model.encode(x)
    eps = torch.randn(mean.shape, device=mean.device, dtype=mean.dtype)
    z = mean + logvar.exp().sqrt() * eps
    sq = torch.nn.functional.mse_loss(model.decode(z), x, reduction="none").sum(1)
    D = x.shape[1]
    elbo = -0.5 * D * (math.log(2 * math.pi) + model.log_sigma2) - 0.5 * sq / model.sigma2 - kl_term(mean, logvar)
    return -elbo.mean()
''',
        },
        "reference": {
            "labkit's VAE.loss": '''
from labkit.models import VAE as ReferenceVAE
def vae_cost(model, x):
    return ReferenceVAE.loss(model, x)
''',
        },
        "wrong": {
            "variance where the standard deviation belongs": changed(VAE_COST, ("exp(0.5 * logvar)", "exp(logvar)")),
            "KL added to the ELBO": changed(VAE_COST, ("(log_px - kl_term", "(log_px + kl_term")),
            "no sample (z = mean)": changed(VAE_COST, (SAMPLE_LINE, ""), ("model.decode(z)", "model.decode(mean)")),
            "uniform noise": changed(VAE_COST, ("torch.randn_like", "torch.rand_like")),
        },
    },
    "vae-reconstruct-sample": {
        "downstream": ("vae-error-tests",),
        "correct": {
            "torch.distributions sampler": '''
def vae_sample(model, n, temperature=1.0):
    p = next(model.decoder.parameters())
    prior = torch.distributions.Normal(torch.zeros(n, model.latent_dim, device=p.device, dtype=p.dtype), temperature)
    return model.decode(prior.sample())
''',
            "float32 model dtype from a parameter, encode()[0]": '''
def vae_reconstruct(model, X):
    return model.decode(model.encode(X)[0])

def vae_sample(model, n, temperature=1.0):
    p = next(model.parameters())
    return model.decode(torch.randn(n, model.latent_dim, device=p.device, dtype=p.dtype) * temperature)
''',
        },
        "wrong": {
            "T^2 instead of T": '''
def vae_sample(model, n, temperature=1.0):
    p = next(model.parameters())
    return model.decode(temperature ** 2 * torch.randn(n, model.latent_dim, device=p.device, dtype=p.dtype))
''',
            "uniform noise": '''
def vae_sample(model, n, temperature=1.0):
    p = next(model.parameters())
    return model.decode(temperature * torch.rand(n, model.latent_dim, device=p.device, dtype=p.dtype))
''',
            "reconstruct from a sample of q": '''
def vae_reconstruct(model, X):
    mean, logvar = model.encode(X)
    return model.decode(mean + torch.exp(0.5 * logvar) * torch.randn_like(mean))
''',
            "reconstruct returns the decoded mean and logvar: the cells below stop with an error": '''
def vae_reconstruct(model, X):
    mean, logvar = model.encode(X)
    return model.decode(mean), logvar
''',
        },
    },
    "vae-squared-errors": SQUARED_ERRORS,
}
