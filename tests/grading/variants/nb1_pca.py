"""Variants of the solution cells of 1_pca (float32 MNIST in grading mode)."""

from grading.variants import SQUARED_ERRORS

CELLS = {
    "pca-fit": {
        "downstream": ("pca-encode-decode-tests", "pca-error-tests"),
        "correct": {
            "eigh of the covariance": '''
def fit_pca(X, M):
    mu = X.mean(dim=0)
    evals, evecs = torch.linalg.eigh(torch.cov((X - mu).T))
    return mu, evecs[:, -M:].flip(1)
''',
            "float64 SVD, signs flipped": '''
def fit_pca(X, M):
    X64 = X.double()
    mu = X64.mean(dim=0)
    _, _, Vh = torch.linalg.svd(X64 - mu, full_matrices=False)
    return mu.to(X.dtype), -Vh[:M].T.to(X.dtype)
''',
            "scikit-learn": '''
def fit_pca(X, M):
    from sklearn.decomposition import PCA as SkPCA
    sk = SkPCA(n_components=M, svd_solver="full").fit(X.cpu().double().numpy())
    return (torch.from_numpy(sk.mean_).to(X.device, X.dtype),
            torch.from_numpy(sk.components_.T.copy()).to(X.device, X.dtype))
''',
        },
        "wrong": {
            "not centred": '''
def fit_pca(X, M):
    mu = X.mean(dim=0)
    _, _, Vh = torch.linalg.svd(X, full_matrices=False)
    return mu, Vh[:M].T
''',
            "columns of Vh": '''
def fit_pca(X, M):
    mu = X.mean(dim=0)
    _, _, Vh = torch.linalg.svd(X - mu, full_matrices=False)
    return mu, Vh[:, :M]
''',
            "smallest eigenvectors": '''
def fit_pca(X, M):
    mu = X.mean(dim=0)
    evals, evecs = torch.linalg.eigh(torch.cov((X - mu).T))
    return mu, evecs[:, :M]
''',
            "directions as rows (M, D): the cells below stop with an error": '''
def fit_pca(X, M):
    mu = X.mean(dim=0)
    _, _, Vh = torch.linalg.svd(X - mu, full_matrices=False)
    return mu, Vh[:M]
''',
        },
        "reference": {
            "labkit PCA": '''
from labkit.models import PCA
def fit_pca(X, M):
    pca = PCA(M).fit(X)
    return pca.mu, pca.V
''',
        },
    },
    "pca-encode-decode": {
        "downstream": ("pca-error-tests",),
        "correct": {
            "einsum and addmm": '''
def pca_encode(X, mu, V):
    return torch.einsum("nd,dm->nm", X - mu, V)

def pca_decode(Z, mu, V):
    return torch.addmm(mu.expand(len(Z), -1), Z, V.T)
''',
            "float64": '''
def pca_encode(X, mu, V):
    return (X.double() - mu.double()) @ V.double()

def pca_decode(Z, mu, V):
    return Z.double() @ V.double().T + mu.double()
''',
        },
        "wrong": {
            "mu not subtracted": '''
def pca_encode(X, mu, V):
    return X @ V
''',
            "own mean": '''
def pca_encode(X, mu, V):
    return (X - X.mean(dim=0)) @ V
''',
            "mu not added": '''
def pca_decode(Z, mu, V):
    return Z @ V.T
''',
        },
    },
    "squared-errors": {"downstream": ("pca-error-tests",), **SQUARED_ERRORS},
}
