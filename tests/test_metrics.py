"""labkit.metrics against plain references (loops, torch's own mse_loss), and its errors on bad input."""
import numpy as np
import pytest
import torch

from labkit import metrics, plotting


def test_squared_errors_match_mse_loss_summed_per_image():
    g = torch.Generator().manual_seed(0)
    X, R = torch.rand(50, 784, generator=g), torch.rand(50, 784, generator=g)
    got = metrics.squared_errors(X, R)
    assert got.shape == (50,)
    torch.testing.assert_close(got, torch.nn.functional.mse_loss(X, R, reduction="none").sum(dim=1))
    # e(x) = sum_j (x_j - x~_j)^2 by hand: (0 - 0.5)^2 + (1 - 0)^2 = 1.25
    assert metrics.squared_errors(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5, 0.0]])).tolist() == [1.25]


def test_squared_errors_keep_the_graph():
    X = torch.rand(3, 4, requires_grad=True)
    metrics.squared_errors(X, torch.zeros(3, 4)).sum().backward()
    torch.testing.assert_close(X.grad, 2 * X.detach())  # d/dx (x - 0)^2 = 2x


@pytest.mark.parametrize("shapes", [((5, 784), (5, 783)), ((5, 784), (4, 784)), ((5, 28, 28), (5, 28, 28))])
def test_squared_errors_reject_mismatched_shapes(shapes):
    a, b = (torch.zeros(s) for s in shapes)
    with pytest.raises(ValueError, match=r"matrices \(N, D\) of the same shape.*got shapes"):
        metrics.squared_errors(a, b)


def test_squared_errors_want_tensors():
    with pytest.raises(TypeError, match=r"X must be a torch tensor, got ndarray; convert it with torch.as_tensor\(X\)"):
        metrics.squared_errors(np.zeros((2, 3)), torch.zeros(2, 3))


def test_per_digit_mean_matches_a_loop():
    g = torch.Generator().manual_seed(0)
    values = torch.rand(1000, generator=g, requires_grad=True)
    labels = torch.randint(0, 10, (1000,), generator=g)
    got = metrics.per_digit_mean(values, labels)
    want = torch.stack([values.detach()[labels == d].mean() for d in range(10)])
    assert got.shape == (10,) and got.dtype == torch.float32 and not got.requires_grad
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5)

    Z = torch.randn(1000, 3, generator=g, dtype=torch.float64)
    got2 = metrics.per_digit_mean(Z, labels.double()[:, None])  # (N, 1) whole-number float labels
    assert got2.shape == (10, 3) and got2.dtype == torch.float64
    np.testing.assert_allclose(got2.numpy(), torch.stack([Z[labels == d].mean(0) for d in range(10)]).numpy(), rtol=1e-10)

    counts = metrics.per_digit_mean(torch.arange(4), torch.tensor([0, 0, 3, 3]))  # integer values: float32 means
    assert counts.dtype == torch.float32 and counts[0] == 0.5 and counts[3] == 2.5
    assert torch.isnan(counts[[1, 2, 4, 5, 6, 7, 8, 9]]).all()  # digits without samples


def test_per_digit_mean_checks_labels_and_shapes():
    with pytest.raises(ValueError, match="digits 0-9, got values from 0 to 10"):
        metrics.per_digit_mean(torch.ones(3), torch.tensor([0, 1, 10]))
    with pytest.raises(ValueError, match="whole digits 0-9"):
        metrics.per_digit_mean(torch.ones(2), torch.tensor([0.0, 1.5]))
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\)"):
        metrics.per_digit_mean(torch.ones(3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"values must have shape \(N,\) or \(N, K\), got shape \(2, 2, 2\)"):
        metrics.per_digit_mean(torch.ones(2, 2, 2), torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="labels must be a torch tensor"):
        metrics.per_digit_mean(torch.ones(2), [0, 1])


def test_plotting_keeps_per_digit_mean_for_older_notebooks():
    assert plotting.per_digit_mean is metrics.per_digit_mean
