"""labkit.cli.main: the kit's own errors (LabkitError) as one line and exit code 2, anything else with its traceback."""
import pytest

import labkit.data
from labkit import cli
from labkit.errors import DataError, LabkitError, OptionError


def test_a_labkit_error_is_one_line_and_exit_code_2(monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise DataError("MNIST is unreadable; fix: delete it and run again")

    monkeypatch.setattr(labkit.data, "load_mnist", broken)
    assert cli.main(["data", "--no-download"]) == 2
    err = capsys.readouterr().err
    assert err == "labkit: MNIST is unreadable; fix: delete it and run again\n"


def test_any_other_error_keeps_its_traceback(monkeypatch):
    def buggy(*args, **kwargs):
        raise ValueError("a bug, not the user's mistake")

    monkeypatch.setattr(labkit.data, "load_mnist", buggy)
    with pytest.raises(ValueError, match="a bug") as info:
        cli.main(["data", "--no-download"])
    assert not isinstance(info.value, LabkitError)
    assert info.traceback[-1].name == "buggy"  # the traceback reaches the code that raised it


def test_an_option_value_out_of_range_names_the_flag(tmp_path, capsys):
    out = tmp_path / "results"
    assert cli.main(["lab", "--latent-dim", "785", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == "labkit: --latent-dim must be a whole number from 1 to 784 (the pixels of an image), got 785\n"
    assert not out.exists()


def test_the_library_names_the_parameter():
    from labkit import lab

    with pytest.raises(OptionError, match=r"^latent_dim= must be a whole number from 1 to 784"):
        lab.run(latent_dim=0, log=lambda *a: None)


def test_missing_mnist_names_the_flag_on_the_command_line(tmp_path, capsys):
    assert cli.main(["data", "--data-dir", str(tmp_path / "nowhere"), "--no-download"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("labkit: MNIST is not in") and "(the folder from --data-dir) and --no-download" in err
    assert "3. pass that folder directly: --data-dir /path/to/data." in err and "root=" not in err


def test_cluster_certs_writes_a_private_folder_once(tmp_path, capsys):
    pytest.importorskip("cryptography")
    from cryptography import x509

    folder = tmp_path / "certs"
    assert cli.main(["cluster-certs", str(folder)]) == 0
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in folder.iterdir()} == {
        f"{n}.pem": "0o600" for n in ("ca", "scheduler", "worker", "client", "scheduler-key", "worker-key", "client-key")}
    ca = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
    for role in ("scheduler", "worker", "client"):  # signed by the run's CA
        cert = x509.load_pem_x509_certificate((folder / f"{role}.pem").read_bytes())
        cert.verify_directly_issued_by(ca)
    assert cli.main(["cluster-certs", str(folder)]) == 2  # never overwritten
    assert "not empty" in capsys.readouterr().err
