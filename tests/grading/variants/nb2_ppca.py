"""Variants of the solution cells of 2_ppca."""

from grading.variants import SQUARED_ERRORS

CELLS = {
    "ppca-cost": {
        "downstream": ("ppca-training-tests", "ppca-encode-decode-sample-tests", "ppca-error-tests"),
        "correct": {
            "MultivariateNormal with the D x D covariance": '''
def ppca_log_likelihood(model, X):
    D = model.W.shape[0]
    C = model.W @ model.W.T + model.sigma2 * torch.eye(D, device=X.device, dtype=model.W.dtype)
    return torch.distributions.MultivariateNormal(model.mu, C).log_prob(X)

def ppca_cost(model, x):
    return -ppca_log_likelihood(model, x).sum() / x.shape[0]
''',
            "Cholesky of M, computed in float64": '''
def ppca_log_likelihood(model, X):
    W, mu, s2 = model.W.double(), model.mu.double(), model.sigma2.double()
    D, M = W.shape
    L = torch.linalg.cholesky(W.T @ W + s2 * torch.eye(M, dtype=W.dtype, device=W.device))
    d = X.double() - mu
    a = torch.linalg.solve_triangular(L, (d @ W).T, upper=False)
    quad = ((d ** 2).sum(1) - (a ** 2).sum(0)) / s2
    logdet = (D - M) * torch.log(s2) + 2 * torch.log(torch.diagonal(L)).sum()
    return (-0.5 * (D * math.log(2 * math.pi) + logdet + quad)).to(X.dtype)
''',
        },
        "wrong": {
            "no log det": '''
def ppca_log_likelihood(model, X):
    W, mu, s2 = model.W, model.mu, model.sigma2
    D, M = W.shape
    Mm = W.T @ W + s2 * torch.eye(M, device=W.device, dtype=W.dtype)
    d = X - mu
    Wd = d @ W
    quad = ((d ** 2).sum(1) - (Wd * torch.linalg.solve(Mm, Wd.T).T).sum(1)) / s2
    return -0.5 * (D * math.log(2 * math.pi) + quad)
''',
            "quadratic form without the W part": '''
def ppca_log_likelihood(model, X):
    W, mu, s2 = model.W, model.mu, model.sigma2
    D, M = W.shape
    Mm = W.T @ W + s2 * torch.eye(M, device=W.device, dtype=W.dtype)
    quad = ((X - mu) ** 2).sum(1) / s2
    return -0.5 * (D * math.log(2 * math.pi) + (D - M) * torch.log(s2) + torch.logdet(Mm) + quad)
''',
            "cost with the wrong sign": '''
def ppca_cost(model, x):
    return ppca_log_likelihood(model, x).mean()
''',
            "cost summed over the minibatch": '''
def ppca_cost(model, x):
    return -ppca_log_likelihood(model, x).sum()
''',
        },
    },
    "ppca-encode-decode-sample": {
        "downstream": ("ppca-error-tests",),
        "correct": {
            "Gaussian conditioning, torch.distributions sampler": '''
def ppca_encode(model, X):
    W, mu, s2 = model.W, model.mu, model.sigma2
    C = W @ W.T + s2 * torch.eye(W.shape[0], device=W.device, dtype=W.dtype)
    K = torch.linalg.solve(C, W).T
    return (X - mu) @ K.T, torch.eye(W.shape[1], device=W.device, dtype=W.dtype) - K @ W

def ppca_sample(model, n, temperature=1.0):
    W = model.W
    prior = torch.distributions.Normal(torch.zeros(W.shape[1], dtype=W.dtype, device=W.device), temperature)
    return ppca_decode(model, prior.sample((n,)))
''',
            "float64 inverse and a loop": '''
def ppca_encode(model, X):
    W, mu, s2 = model.W.double(), model.mu.double(), model.sigma2.double()
    Minv = torch.linalg.inv(W.T @ W + s2 * torch.eye(W.shape[1], dtype=torch.float64, device=W.device))
    means = torch.stack([Minv @ W.T @ (x.double() - mu) for x in X]) if len(X) <= 100 else (X.double() - mu) @ W @ Minv.T
    return means.to(X.dtype), (s2 * Minv).to(X.dtype)

def ppca_decode(model, Z):
    return torch.addmm(model.mu, Z, model.W.T)
''',
        },
        "wrong": {
            "x not centred": '''
def ppca_encode(model, X):
    W, s2 = model.W, model.sigma2
    Mm = W.T @ W + s2 * torch.eye(W.shape[1], device=W.device, dtype=W.dtype)
    return torch.linalg.solve(Mm, (X @ W).T).T, s2 * torch.linalg.inv(Mm)
''',
            "covariance without sigma^2": '''
def ppca_encode(model, X):
    W, mu, s2 = model.W, model.mu, model.sigma2
    Mm = W.T @ W + s2 * torch.eye(W.shape[1], device=W.device, dtype=W.dtype)
    return torch.linalg.solve(Mm, ((X - mu) @ W).T).T, torch.linalg.inv(Mm)
''',
            "T^2 instead of T": '''
def ppca_sample(model, n, temperature=1.0):
    W = model.W
    return ppca_decode(model, temperature ** 2 * torch.randn(n, W.shape[1], device=W.device, dtype=W.dtype))
''',
            "uniform noise": '''
def ppca_sample(model, n, temperature=1.0):
    W = model.W
    return ppca_decode(model, temperature * torch.rand(n, W.shape[1], device=W.device, dtype=W.dtype))
''',
            "decode without mu": '''
def ppca_decode(model, Z):
    return Z @ model.W.T
''',
            "encode returns the means only: the cells below stop with an error": '''
def ppca_encode(model, X):
    W, mu, s2 = model.W, model.mu, model.sigma2
    Mm = W.T @ W + s2 * torch.eye(W.shape[1], device=W.device, dtype=W.dtype)
    return torch.linalg.solve(Mm, ((X - mu) @ W).T).T
''',
        },
    },
    "ppca-squared-errors": SQUARED_ERRORS,
}
