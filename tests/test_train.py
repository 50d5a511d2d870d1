"""The training loop: losses, reproducibility, divergence, input checks, progress bar."""
import math

import pytest
import torch

from labkit.errors import LabkitError, OptionError, TrainingError
from labkit.models import PPCA, VAE
from labkit.train import History, TrainingDivergedError, fit, grading_mode


def images(n=1100, seed=0):
    """Synthetic (n, 784) float32 'images' in [0, 1] with low-rank structure."""
    g = torch.Generator().manual_seed(seed)
    Z = torch.randn(n, 3, generator=g)
    return torch.sigmoid(Z @ torch.randn(3, 784, generator=g) + 0.3 * torch.randn(n, 784, generator=g))


def params(model):
    return [p.detach().clone() for p in model.parameters()]


def small_vae(seed=0):
    torch.manual_seed(seed)
    return VAE(hidden=32)


def test_loss_decreases_and_history_is_filled():
    X, Xt = images(), images(300, seed=1)
    torch.manual_seed(0)
    model = PPCA(2)
    history = fit(model, X, X_test=Xt, epochs=4, progress=False)
    assert isinstance(history, History)
    assert history.epochs == 4 and len(history.train_loss) == 4 and len(history.test_loss) == 4
    assert history.train_loss[-1] < history.train_loss[0] - 100
    assert history.test_loss[-1] < history.test_loss[0]
    assert history.seconds > 0
    # the test loss is the model's loss on the test set, in nats per image
    assert history.test_loss[-1] == pytest.approx(model.loss(Xt).item(), rel=1e-5)


def test_custom_loss_is_used_and_train_loss_is_weighted_by_batch_size():
    X = images(1100)  # batches of 500, 500 and 100
    seen = []

    def loss(model, x):
        value = model.loss(x)
        if torch.is_grad_enabled():
            seen.append((len(x), value.item()))
        return value

    history = fit(small_vae(), X, loss=loss, epochs=2, progress=False)
    assert [n for n, _ in seen] == [500, 500, 100] * 2
    for epoch in range(2):
        batch = seen[3 * epoch : 3 * epoch + 3]
        assert history.train_loss[epoch] == pytest.approx(sum(n * v for n, v in batch) / 1100, rel=1e-6)


def test_same_seed_same_result_on_cpu():
    X, Xt = images(), images(200, seed=1)
    runs = []
    for _ in range(2):
        model = small_vae(seed=3)
        history = fit(model, X, X_test=Xt, epochs=2, seed=7, progress=False, device="cpu")
        runs.append((params(model), history))
    (p1, h1), (p2, h2) = runs
    assert all(torch.equal(a, b) for a, b in zip(p1, p2))
    assert h1.train_loss == h2.train_loss and h1.test_loss == h2.test_loss
    other = small_vae(seed=3)
    h3 = fit(other, X, X_test=Xt, epochs=2, seed=8, progress=False, device="cpu")
    assert h3.train_loss != h1.train_loss


def test_nan_loss_stops_training_and_keeps_the_last_finite_parameters():
    X = images(1100)
    calls = 0

    def loss(model, x):
        nonlocal calls
        calls += 1
        value = model.loss(x)
        return value * math.nan if calls == 5 else value  # epoch 2, batch 2

    reference = small_vae()
    fit(reference, X, epochs=1, progress=False)
    model = small_vae()
    with pytest.raises(TrainingDivergedError, match="learning rate") as info:
        fit(model, X, loss=loss, epochs=3, progress=False)
    message = str(info.value)
    assert "epoch 2" in message and "batch 2 of 3" in message and "NaN" in message
    assert isinstance(info.value, TrainingError) and isinstance(info.value, LabkitError)  # one line on the command line
    assert (info.value.epoch, info.value.batch) == (2, 2)
    # the parameters are those after epoch 1, exactly
    assert all(torch.equal(a, b) for a, b in zip(params(model), params(reference)))


def test_huge_learning_rate_is_reported():
    model = small_vae()
    with pytest.raises(TrainingDivergedError, match=r"epoch \d+.*learning rate"):
        fit(model, images(1000), lr=1e6, epochs=5, progress=False)
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize(
    "X",
    [
        torch.rand(10, 28, 28),
        (torch.rand(10, 784) * 255).to(torch.uint8),
        torch.rand(10, 784, dtype=torch.float64),
        torch.rand(784),
        torch.rand(10, 785),
        torch.rand(0, 784),
    ],
    ids=["images-28x28", "uint8", "float64", "1-D", "785-pixels", "empty"],
)
def test_bad_inputs_name_the_expected_shape(X):
    model = small_vae()
    before = params(model)
    with pytest.raises(ValueError, match=r"\(N, 784\) float32"):
        fit(model, X, epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"X_test.*\(N, 784\) float32"):
        fit(model, images(100), X_test=X, epochs=1, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(params(model), before))  # nothing trained


def test_bad_budget():
    with pytest.raises(OptionError, match="epochs= must be a positive integer, got 0"):
        fit(small_vae(), images(100), epochs=0, progress=False)
    with pytest.raises(OptionError, match="batch_size= must be a positive integer, got 2.5"):
        fit(small_vae(), images(100), batch_size=2.5, progress=False)
    with pytest.raises(ValueError, match="lr= must be positive"):  # OptionError is a ValueError too
        fit(small_vae(), images(100), lr=0.0, progress=False)


def test_loss_must_be_a_scalar_of_the_parameters():
    with pytest.raises(ValueError, match="scalar"):
        fit(small_vae(), images(100), loss=lambda m, x: -m.elbo(x), epochs=1, progress=False)  # per image
    with pytest.raises(ValueError, match="scalar"):
        fit(small_vae(), images(100), loss=lambda m, x: torch.tensor(1.0), epochs=1, progress=False)


def test_progress_bar(capsys):
    fit(small_vae(), images(600), epochs=1, progress=False)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    fit(small_vae(), images(600), epochs=1, progress=True, desc="tiny VAE")
    captured = capsys.readouterr()
    assert "tiny VAE" in captured.err and "train=" in captured.err


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("TRUE", True), ("0", False), ("", False),
                                             (None, False)])
def test_grading_mode(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("LABKIT_GRADING", raising=False)
    else:
        monkeypatch.setenv("LABKIT_GRADING", value)
    assert grading_mode() is expected
