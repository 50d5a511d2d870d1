"""labkit.checks: the helpers of the notebooks' test cells."""
import math

import pytest
import torch

import labkit.models
import labkit.models.vae
from labkit import checks
from labkit.models import PCA


def test_close_accepts_float32_and_float64_answers_of_a_float64_reference():
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(50, 784, generator=g, dtype=torch.float64).pow(2).sum(1)  # values about 800
    checks.close(ref.float(), ref, "sums", atol=1e-10)
    checks.close(ref.float().double(), ref, "float32 sums returned as float64", atol=1e-10)
    with pytest.raises(checks.CheckFailed):
        checks.close(ref.float() * (1 + 1e-3), ref, "sums")


def test_close_message_says_expected_got_and_the_recognised_mistake():
    with pytest.raises(checks.CheckFailed) as info:
        checks.close(torch.tensor([0.5, 0.0625]), torch.tensor([2.0, 0.25]), "squared_errors",
                     mistakes={"averaged over the pixels": torch.tensor([0.5, 0.0625])}, hint="sum the squares")
    message = str(info.value)
    assert message.startswith("squared_errors: expected [2, 0.25], got [0.5, 0.0625]; likely mistake: averaged")
    with pytest.raises(checks.CheckFailed, match="likely mistake: sum the squares"):
        checks.close(torch.tensor([1.0, 1.0]), torch.tensor([2.0, 0.25]), "squared_errors", hint="sum the squares")


def test_close_up_to_sign_flips_columns_only():
    A = torch.randn(10, 3, generator=torch.Generator().manual_seed(1))
    checks.close(A * torch.tensor([1.0, -1.0, -1.0]), A, "V", up_to_sign=True)
    with pytest.raises(checks.CheckFailed):
        checks.close(A[:, [1, 0, 2]], A, "V", up_to_sign=True)
    with pytest.raises(checks.CheckFailed):
        checks.close(A * torch.tensor([1.0, -1.0, -1.0]), A, "V")


def test_shape_and_type_messages():
    with pytest.raises(checks.CheckFailed, match=r"shape: expected \(8,\), got \(3,\); likely mistake: the wrong dimension"):
        checks.close(torch.zeros(3), torch.zeros(8), "kl")
    with pytest.raises(checks.CheckFailed, match="not a tuple"):
        checks.close((torch.zeros(2), torch.zeros(2)), torch.zeros(2), "encode")
    with pytest.raises(checks.CheckFailed, match="inf or nan"):
        checks.close(torch.tensor([float("nan")]), torch.tensor([1.0]), "cost")


def test_own_work_trips_on_reference_calls_and_restores_everything():
    namespace = {"kl_term": labkit.models.vae.kl_to_standard_normal_logvar, "PCA": PCA, "other": math.sqrt}
    fit_method = PCA.fit
    with checks.own_work(namespace, "kl_term"):
        with pytest.raises(checks.ReferenceCallError, match="labkit's reference kl_to_standard_normal_logvar"):
            namespace["kl_term"](torch.zeros(1, 2), torch.zeros(1, 2))
        with pytest.raises(checks.ReferenceCallError, match="PCA"):
            labkit.models.PCA(2)
        with pytest.raises(checks.ReferenceCallError, match="PCA.fit"):
            PCA.fit(object(), torch.zeros(3, 2))
        assert namespace["other"] is math.sqrt
    assert namespace["kl_term"] is labkit.models.vae.kl_to_standard_normal_logvar
    assert labkit.models.PCA is PCA and PCA.fit is fit_method
    assert torch.allclose(namespace["kl_term"](torch.zeros(1, 2), torch.zeros(1, 2)), torch.zeros(1))


def test_own_work_leaves_the_networks_a_notebook_hands_out_callable():
    """3_vae trains labkit's VAE: a student's vae_cost calls model.encode and model.decode (given),
    but model.elbo or model.loss (the answer) trips."""
    vae = labkit.models.VAE(latent_dim=2, hidden=4, data_dim=6)
    x = torch.rand(3, 6)
    with checks.own_work({}, "vae_cost"):
        mean, logvar = vae.encode(x)
        assert vae.decode(mean).shape == (3, 6)
        with pytest.raises(checks.ReferenceCallError, match="VAE.elbo"):
            vae.elbo(x)
        with pytest.raises(checks.ReferenceCallError, match="VAE.loss"):
            vae.loss(x)


def test_substitute_rebinds_for_the_block_and_lets_a_wrapped_reference_run_inside_own_work():
    namespace = {"kl_term": lambda m, lv: -1}
    reference = labkit.models.kl_to_standard_normal_logvar  # taken before own_work swaps it out
    with checks.own_work(namespace, "vae_cost"), checks.substitute(namespace, kl_term=reference, extra=len):
        assert torch.allclose(namespace["kl_term"](torch.zeros(1, 2), torch.zeros(1, 2)), torch.zeros(1))
        assert namespace["extra"]([1, 2]) == 2
    assert namespace["kl_term"](0, 0) == -1 and "extra" not in namespace


def test_training_problem_and_charged_upstream():
    class History:
        train_loss, test_loss = [3.0, 2.0], [3.0, 2.5]
    assert checks.training_problem(History(), 2, "cost") is None
    assert "none" in checks.training_problem(None, 2, "cost")
    History.train_loss = [2.0, float("nan")]
    assert "inf or nan in cost" in checks.training_problem(History(), 2, "cost")
    History.train_loss = [2.0, 3.0]
    assert "decrease" in checks.training_problem(History(), 2, "cost")

    def wrong():
        checks.close(torch.tensor(1.0), torch.tensor(2.0), "cost")

    def unwritten():
        raise NotImplementedError()

    assert checks.charged_upstream(wrong) and not checks.charged_upstream(unwritten)
    assert not checks.charged_upstream(lambda: None)


# --------------------------------------------------------------------------- the named-mistake record


@pytest.fixture
def shell(monkeypatch):
    """An IPython shell as in a kernel, its displayed outputs collected as (data, metadata)."""
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    shown = []
    monkeypatch.setattr(ip.display_pub, "publish", lambda data, metadata=None, **kw: shown.append((data, metadata)))
    yield shown
    InteractiveShell.clear_instance()


def test_a_failing_check_displays_its_named_mistake_before_raising(shell):
    with pytest.raises(checks.CheckFailed) as info:
        checks.close(torch.tensor([0.5, 0.0625]), torch.tensor([2.0, 0.25]), "squared_errors",
                     mistakes={"averaged over the pixels": torch.tensor([0.5, 0.0625])}, hint="sum the squares")
    assert str(info.value) == ("squared_errors: expected [2, 0.25], got [0.5, 0.0625]; "
                               "likely mistake: averaged over the pixels")  # the message is unchanged
    assert len(shell) == 1
    data, metadata = shell[0]
    assert metadata == {"labkit": {"check": "squared_errors", "mistake": "averaged over the pixels"}}
    assert data[checks.RECORD_MIME] == metadata["labkit"] and data["text/plain"] == ""


def test_the_record_names_no_mistake_when_the_message_names_none(shell):
    with pytest.raises(checks.CheckFailed):
        checks.true(False, "kl_term: the value must be finite")
    with pytest.raises(checks.CheckFailed):
        checks.close(torch.tensor([1.0, 1.0]), torch.tensor([2.0, 0.25]), "squared_errors")
    assert [m["labkit"] for _, m in shell] == [{"check": "kl_term", "mistake": None},
                                               {"check": "squared_errors", "mistake": None}]


def test_shape_and_reference_call_failures_are_recorded_once(shell):
    with pytest.raises(checks.CheckFailed):
        checks.shape(torch.zeros(3, 2), (2, 3), "encode(X)")
    with pytest.raises(checks.ReferenceCallError):
        with checks.own_work({}, "fit_pca"):
            PCA(2).fit(torch.zeros(5, 4))
    records = [m["labkit"] for _, m in shell]
    assert records[0] == {"check": "encode(X) shape",
                          "mistake": "the right numbers in the wrong shape: a transpose or reshape"}
    assert records[1]["check"] == "fit_pca" and records[1]["mistake"].startswith("using the answer key")
    assert len(records) == 2


def test_an_upstream_check_caught_by_charged_upstream_records_nothing(shell):
    def upstream():
        checks.close(torch.tensor(1.0), torch.tensor(2.0), "mean")

    assert checks.charged_upstream(upstream)
    assert shell == []
    with pytest.raises(checks.CheckFailed):
        upstream()
    assert len(shell) == 1


def test_outside_a_kernel_nothing_is_displayed():
    from IPython import get_ipython

    assert get_ipython() is None
    assert checks.record("x: expected 1, got 2; likely mistake: off by one") == {"check": "x", "mistake": "off by one"}
