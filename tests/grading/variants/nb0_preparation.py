"""Variants of the solution cells of 0_preparation (the default dtype there is float64)."""

CELLS = {
    "q3_1-code": {
        "correct": {
            "eigh of X^T X": '''
def pca_map(x, X, M):
    evals, evecs = torch.linalg.eigh(X.T @ X)
    return x @ evecs[:, -M:].flip(1)
''',
            "float32 SVD": '''
def pca_map(x, X, M):
    _, _, Vh = torch.linalg.svd(X.float(), full_matrices=False)
    return x.float() @ Vh[:M].T
''',
            "signs flipped, loop over vectors": '''
def pca_map(x, X, M):
    _, _, Vh = torch.linalg.svd(X, full_matrices=False)
    return torch.stack([-(Vh[:M] @ row) for row in x])
''',
        },
        "wrong": {
            "ignores x (encodes the data points)": '''
def pca_map(x, X, M):
    U, S, Vh = torch.linalg.svd(X, full_matrices=False)
    return (U[:, :M] * S[:M])[: len(x)]
''',
            "columns of Vh": '''
def pca_map(x, X, M):
    U, S, Vh = torch.linalg.svd(X, full_matrices=False)
    return x @ Vh[:, :M]
''',
            "smallest directions": '''
def pca_map(x, X, M):
    evals, evecs = torch.linalg.eigh(X.T @ X)
    return x @ evecs[:, :M]
''',
        },
        "reference": {
            "labkit PCA": '''
from labkit.models import PCA
def pca_map(x, X, M):
    pca = PCA(M).fit(X.float())
    return (x.float() @ pca.V).double()
''',
        },
    },
    "q3_2-code": {
        "correct": {
            "eigh of the covariance": '''
def pca_encode(x, X, M):
    mu = X.mean(0)
    _, evecs = torch.linalg.eigh(torch.cov(X.T))
    return (x - mu) @ evecs[:, -M:].flip(1)

def pca_decode(z, X, M):
    mu = X.mean(0)
    _, evecs = torch.linalg.eigh(torch.cov(X.T))
    return z @ evecs[:, -M:].flip(1).T + mu
''',
            "float32": '''
def pca_encode(x, X, M):
    X, x = X.float(), x.float()
    mu = X.mean(0)
    return (x - mu) @ torch.linalg.svd(X - mu, full_matrices=False)[2][:M].T

def pca_decode(z, X, M):
    X = X.float()
    mu = X.mean(0)
    return z.float() @ torch.linalg.svd(X - mu, full_matrices=False)[2][:M] + mu
''',
        },
        "wrong": {
            "no centring": '''
def pca_encode(x, X, M):
    return x @ torch.linalg.svd(X, full_matrices=False)[2][:M].T

def pca_decode(z, X, M):
    return z @ torch.linalg.svd(X, full_matrices=False)[2][:M]
''',
            "new vectors centred with their own mean": '''
def pca_encode(x, X, M):
    mu = X.mean(0)
    return (x - x.mean(0)) @ torch.linalg.svd(X - mu, full_matrices=False)[2][:M].T
''',
            "mean not added back": '''
def pca_decode(z, X, M):
    mu = X.mean(0)
    return z @ torch.linalg.svd(X - mu, full_matrices=False)[2][:M]
''',
        },
    },
    "q3_3-code": {
        "correct": {
            "float32 outer products": '''
def ppca_marginal(W, mu, sigma2):
    W = W.float()
    C = sum(torch.outer(W[:, j], W[:, j]) for j in range(W.shape[1])) + sigma2 * torch.eye(W.shape[0], dtype=torch.float32)
    return mu.float(), C
''',
            "diag_embed": '''
def ppca_marginal(W, mu, sigma2):
    return mu.clone(), torch.einsum("dm,em->de", W, W) + torch.diag_embed(torch.full((W.shape[0],), float(sigma2)))
''',
        },
        "wrong": {
            "no noise": '''
def ppca_marginal(W, mu, sigma2):
    return mu, W @ W.T
''',
            "sigma instead of sigma^2": '''
def ppca_marginal(W, mu, sigma2):
    return mu, W @ W.T + math.sqrt(sigma2) * torch.eye(W.shape[0])
''',
            "zero mean": '''
def ppca_marginal(W, mu, sigma2):
    return torch.zeros_like(mu), W @ W.T + sigma2 * torch.eye(W.shape[0])
''',
        },
    },
    "q3_4-code": {
        "correct": {
            "precision form": '''
def ppca_posterior(x, W, mu, sigma2):
    P = torch.eye(W.shape[1]) + W.T @ W / sigma2
    cov = torch.linalg.inv(P)
    return (x - mu) @ W @ cov.T / sigma2, cov
''',
            "float32 Gaussian conditioning": '''
def ppca_posterior(x, W, mu, sigma2):
    W, x, mu = W.float(), x.float(), mu.float()
    C = W @ W.T + sigma2 * torch.eye(W.shape[0], dtype=torch.float32)
    K = W.T @ torch.linalg.inv(C)
    return (x - mu) @ K.T, torch.eye(W.shape[1], dtype=torch.float32) - K @ W
''',
        },
        "wrong": {
            "no sigma^2 in the covariance": '''
def ppca_posterior(x, W, mu, sigma2):
    Mm = W.T @ W + sigma2 * torch.eye(W.shape[1])
    return torch.linalg.solve(Mm, W.T @ (x - mu).T).T, torch.linalg.inv(Mm)
''',
            "x not centred": '''
def ppca_posterior(x, W, mu, sigma2):
    Mm = W.T @ W + sigma2 * torch.eye(W.shape[1])
    return torch.linalg.solve(Mm, W.T @ x.T).T, sigma2 * torch.linalg.inv(Mm)
''',
            "M not inverted": '''
def ppca_posterior(x, W, mu, sigma2):
    Mm = W.T @ W + sigma2 * torch.eye(W.shape[1])
    return torch.linalg.solve(Mm, W.T @ (x - mu).T).T, sigma2 * Mm
''',
        },
    },
    "q3_5-code": {
        "correct": {
            "torch.distributions": '''
def kl_to_standard_normal(mean, var):
    from torch.distributions import Normal, kl_divergence
    return kl_divergence(Normal(mean, var.sqrt()), Normal(torch.zeros_like(mean), torch.ones_like(var))).sum(-1)
''',
            "float32 loop over coordinates": '''
def kl_to_standard_normal(mean, var):
    mean, var = mean.float(), var.float()
    total = torch.zeros(mean.shape[0])
    for i in range(mean.shape[1]):
        total = total + 0.5 * (var[:, i] + mean[:, i] ** 2 - 1 - torch.log(var[:, i]))
    return total
''',
        },
        "wrong": {
            "no -1": '''
def kl_to_standard_normal(mean, var):
    return 0.5 * (var + mean ** 2 - torch.log(var)).sum(dim=-1)
''',
            "variance as standard deviation": '''
def kl_to_standard_normal(mean, var):
    return 0.5 * (var ** 2 + mean ** 2 - 1 - 2 * torch.log(var)).sum(dim=-1)
''',
            "log sign": '''
def kl_to_standard_normal(mean, var):
    return 0.5 * (var + mean ** 2 - 1 + torch.log(var)).sum(dim=-1)
''',
            "sum over the rows": '''
def kl_to_standard_normal(mean, var):
    return 0.5 * (var + mean ** 2 - 1 - torch.log(var)).sum(dim=0)
''',
        },
        "reference": {
            "labkit's KL with log var": '''
import labkit.models.vae
def kl_to_standard_normal(mean, var):
    return labkit.models.vae.kl_to_standard_normal_logvar(mean, torch.log(var))
''',
        },
    },
}
