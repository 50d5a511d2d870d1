"""PCA against independent references: the full SVD in float64 and scikit-learn."""
import numpy as np
import pytest
import torch

from labkit.models import PCA
from labkit.models.pca import eigh_descending, mean_and_covariance


def svd_reference(X: torch.Tensor, m: int):
    """mu, V_M (D, M), singular values (M,) from the float64 SVD of the centred data (Question 3.2)."""
    Xd = X.double()
    mu = Xd.mean(0)
    _, s, Vt = torch.linalg.svd(Xd - mu, full_matrices=False)
    return mu, Vt[:m].T, s[:m]


def anisotropic_data(n=400, d=12, seed=0, dtype=torch.float64):
    """Correlated Gaussian data with a well-separated spectrum and a non-zero mean."""
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(d, d, generator=g, dtype=torch.float64) * torch.logspace(0.5, -1, d, dtype=torch.float64)
    X = torch.randn(n, d, generator=g, dtype=torch.float64) @ A.T + 3 * torch.randn(d, generator=g, dtype=torch.float64)
    return X.to(dtype)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize("m", [1, 3, 6])
def test_equals_full_svd_on_small_data(dtype, tol, m):
    X = anisotropic_data(dtype=dtype)
    pca = PCA(m).fit(X)
    mu, V, s = svd_reference(X, m)
    assert pca.V.dtype == dtype and pca.V.shape == (12, m) and pca.mu.shape == (12,)
    # same subspace: compare the projectors V V^T (independent of the signs)
    torch.testing.assert_close((pca.V @ pca.V.T).double(), V @ V.T, atol=tol, rtol=0)
    torch.testing.assert_close(pca.singular_values.double(), s, rtol=tol, atol=0)
    # same reconstructions x~ = V V^T (x - mu) + mu
    expected = (X.double() - mu) @ V @ V.T + mu
    torch.testing.assert_close(pca.reconstruct(X).double(), expected, atol=tol * 10, rtol=0)
    # same encodings once the SVD's columns are sign-aligned to labkit's
    signs = torch.sign((pca.V.double() * V).sum(0))
    torch.testing.assert_close(pca.encode(X).double(), (X.double() - mu) @ (V * signs), atol=tol * 10, rtol=0)


def test_new_data_are_mapped_with_the_training_mean_and_directions():
    """Questions 3.1/3.2: z = V^T (x - mu) with mu and V from the training data, x~ = V z + mu."""
    X = anisotropic_data(seed=1)
    X_new = anisotropic_data(n=5, seed=2)
    pca = PCA(3).fit(X)
    z = pca.encode(X_new)
    torch.testing.assert_close(z, (X_new - X.mean(0)) @ pca.V)
    torch.testing.assert_close(pca.decode(z), z @ pca.V.T + X.mean(0))
    # decoding then encoding again is the identity on the principal subspace
    torch.testing.assert_close(pca.encode(pca.decode(z)), z)
    torch.testing.assert_close(pca.V.T @ pca.V, torch.eye(3, dtype=X.dtype))


def test_sign_convention_is_deterministic_and_matches_sklearn():
    from sklearn.decomposition import PCA as SkPCA

    X = anisotropic_data(seed=3)
    pca = PCA(4).fit(X)
    V = pca.V
    largest = V.abs().argmax(0)
    assert (V[largest, torch.arange(4)] > 0).all()
    # flipping the data's sign flips nothing in the components: they are normalised the same way
    torch.testing.assert_close(PCA(4).fit(-X).V, V)
    sk = SkPCA(4, svd_solver="full").fit(X.numpy())
    np.testing.assert_allclose(V.T.numpy(), sk.components_, atol=1e-10)
    np.testing.assert_allclose(pca.explained_variance.numpy(), sk.explained_variance_, rtol=1e-10)
    np.testing.assert_allclose(pca.explained_variance_ratio.numpy(), sk.explained_variance_ratio_, rtol=1e-10)
    np.testing.assert_allclose(pca.singular_values.numpy(), sk.singular_values_, rtol=1e-10)


def test_errors():
    with pytest.raises(RuntimeError, match="fit"):
        PCA(2).encode(torch.zeros(3, 5))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        PCA(2).fit(torch.zeros(10))
    with pytest.raises(ValueError):
        PCA(0)


def images_with_still_pixels(n=700, d=40, seed=0, dtype=torch.float32):
    """Data like MNIST's borders: pixel 0 never changes, pixel 1 changes only from row 450 on, pixel 2 only in
    the last row, pixel 3 is constant at 0.3 (not a round number in binary)."""
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, d, generator=g, dtype=torch.float64) ** 3
    X[:, 0] = 0
    X[:450, 1] = 0
    X[:-1, 2] = 0.7
    X[:, 3] = 0.3
    return X.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("block", [100, 256, 700, 10_000])
def test_mean_and_covariance_equal_float64_brute_force(dtype, block):
    """Pixels that start still and change in a later block (or never) lose nothing: against the float64 sums,
    for blocks smaller and larger than the data."""
    X = images_with_still_pixels(dtype=dtype)
    mu, S = mean_and_covariance(X, block=block)
    Xd = X.double()
    mu_ref = Xd.mean(0)
    S_ref = (Xd - mu_ref).T @ (Xd - mu_ref) / len(X)
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    assert mu.dtype == S.dtype == torch.float64 and S.shape == (40, 40)
    torch.testing.assert_close(mu, mu_ref, atol=tol, rtol=0)
    torch.testing.assert_close(S, S_ref, atol=tol, rtol=0)
    assert (S[0] == 0).all() and (S[3] == 0).all() and S[2, 2] > 0 and S[1, 1] > 0  # constant pixels: exactly 0
    # and the same as torch.cov (1/N normalisation) on the same data
    torch.testing.assert_close(S, torch.cov(Xd.T, correction=0), atol=tol, rtol=0)


def test_nan_or_inf_in_the_data_is_a_clear_error():
    X = images_with_still_pixels()
    X[5, 7] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        PCA(2).fit(X)
    X[5, 7] = float("inf")
    with pytest.raises(ValueError, match="NaN or infinite"):
        mean_and_covariance(X)


def random_covariance(d, decay, seed=0):
    g = torch.Generator().manual_seed(seed)
    Q = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))[0]
    return (Q * decay) @ Q.T


@pytest.mark.parametrize("k", [1, 2, 3, 6])
def test_eigh_descending_equals_numpy_eigh(k):
    """eigh_descending's k largest eigenpairs against numpy's full eigh: values, projector and signs."""
    d = 300
    S = random_covariance(d, torch.arange(1, d + 1, dtype=torch.float64) ** -1.5)  # a decay like MNIST's
    evals, evecs = eigh_descending(S, k)
    w, V = np.linalg.eigh(S.numpy())
    w, V = torch.from_numpy(w[::-1][:k].copy()), torch.from_numpy(V[:, ::-1][:, :k].copy())
    torch.testing.assert_close(evals, w, rtol=1e-10, atol=0)
    torch.testing.assert_close(evecs @ evecs.T, V @ V.T, atol=1e-10, rtol=0)
    torch.testing.assert_close(evecs.T @ evecs, torch.eye(k, dtype=torch.float64), atol=1e-12, rtol=0)
    assert (evecs[evecs.abs().argmax(0), torch.arange(k)] > 0).all()  # the sign convention


def test_eigh_descending_on_a_flat_spectrum():
    """Eigenvalues 1 + 1e-4 i, nearly equal: still the two largest, against numpy's full eigh."""
    d = 300
    S = random_covariance(d, 1 + 1e-4 * torch.arange(d, 0, -1, dtype=torch.float64))
    evals, evecs = eigh_descending(S, 2)
    w, V = np.linalg.eigh(S.numpy())
    torch.testing.assert_close(evals, torch.from_numpy(w[::-1][:2].copy()), rtol=1e-12, atol=0)
    V = torch.from_numpy(V[:, ::-1][:, :2].copy())
    torch.testing.assert_close(evecs @ evecs.T, V @ V.T, atol=1e-8, rtol=0)


# --------------------------------------------------------------------------- real MNIST


@pytest.fixture(scope="module")
def mnist_svd(mnist_test):
    X, _ = mnist_test
    return svd_reference(X, 20)


@pytest.mark.mnist
@pytest.mark.parametrize("m", [2, 20])
def test_equals_full_svd_on_mnist_test_set(mnist_test, mnist_svd, m):
    X, _ = mnist_test
    mu, V, s = mnist_svd
    V, s = V[:, :m], s[:m]
    pca = PCA(m).fit(X)
    assert pca.V.dtype == torch.float32
    torch.testing.assert_close((pca.V @ pca.V.T).double(), V @ V.T, atol=1e-5, rtol=0)
    torch.testing.assert_close(pca.singular_values.double(), s, rtol=1e-5, atol=0)
    expected = (X.double() - mu) @ V @ V.T + mu
    torch.testing.assert_close(pca.reconstruct(X).double(), expected, atol=1e-5, rtol=0)


@pytest.mark.mnist
def test_explained_variance_matches_sklearn_on_mnist(mnist_test):
    from sklearn.decomposition import PCA as SkPCA

    X, _ = mnist_test
    pca = PCA(5).fit(X)
    sk = SkPCA(5, svd_solver="full").fit(X.double().numpy())
    np.testing.assert_allclose(pca.explained_variance.numpy(), sk.explained_variance_, rtol=1e-5)
    np.testing.assert_allclose(pca.explained_variance_ratio.numpy(), sk.explained_variance_ratio_, rtol=1e-5)
    np.testing.assert_allclose(pca.V.T.numpy(), sk.components_, atol=1e-5)
