"""labkit.data: loading, verification, the cache, clear errors, minibatches.

Small IDX files written into a temporary folder stand in for MNIST; their
sizes and md5 sums replace the official ones in `labkit.data.CHECKSUMS` for
the duration of a test. The last tests use the real MNIST from LABKIT_DATA.
"""
import hashlib
import os
import struct
import urllib.error

import numpy as np
import pytest
import torch

import labkit.data as data
from labkit.data import CorruptMNISTError, MNISTNotFoundError, batches, default_device, load_mnist
from labkit.errors import DataError, OptionError

SIZES = {"train": 7, "test": 3}


def write_idx(path, array, magic):
    with open(path, "wb") as f:
        f.write(struct.pack(f">I{array.ndim}I", magic, *array.shape))
        f.write(array.astype(np.uint8).tobytes())


def make_split(raw, split, seed):
    rng = np.random.default_rng(seed)
    n = SIZES[split]
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255  # both ends of the pixel range
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    img_name, lbl_name = data.SPLITS[split]
    write_idx(raw / img_name, images, 2051)
    write_idx(raw / lbl_name, labels, 2049)
    return images, labels


def register(monkeypatch, raw):
    """Make the files in `raw` the 'official' ones."""
    table = {}
    for path in raw.iterdir():
        if path.name in data.CHECKSUMS:
            table[path.name] = (path.stat().st_size, hashlib.md5(path.read_bytes()).hexdigest())
    monkeypatch.setattr(data, "CHECKSUMS", table)


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch):
    """A data folder with small train and test splits; returns (root, {split: (images, labels)})."""
    monkeypatch.delenv("LABKIT_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    truth = {split: make_split(raw, split, seed) for seed, split in enumerate(SIZES)}
    register(monkeypatch, raw)
    return tmp_path / "data", truth


def count_verifications(monkeypatch):
    calls = []
    real = data._verify

    def spy(path):
        calls.append(path.name)
        real(path)

    monkeypatch.setattr(data, "_verify", spy)
    return calls


# --------------------------------------------------------------------------- loading


@pytest.mark.parametrize("split", ["train", "test"])
def test_load_returns_pixels_over_255_and_int64_labels(fake_mnist, split):
    root, truth = fake_mnist
    x, y = load_mnist(split, root=root)
    images, labels = truth[split]
    assert x.shape == (SIZES[split], 784) and x.dtype == torch.float32
    assert y.shape == (SIZES[split],) and y.dtype == torch.int64
    expected = torch.from_numpy(images.reshape(len(images), -1)).float() / 255
    assert torch.equal(x, expected)
    assert torch.equal(y, torch.from_numpy(labels).long())
    assert x.min() == 0 and x.max() == 1


def test_bad_split_is_a_clear_error(fake_mnist):
    root, _ = fake_mnist
    with pytest.raises(OptionError, match=r"split must be 'train' or 'test', got 'validation'"):
        load_mnist("validation", root=root)


def test_folder_order_root_then_env_then_project(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_DATA", str(tmp_path / "env"))
    assert data.data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert data.data_dir() == tmp_path / "env"
    monkeypatch.delenv("LABKIT_DATA")
    assert data.data_dir() == data._project_data_dir()
    assert data.data_dir().name == "data"


def test_env_variable_is_used(fake_mnist, monkeypatch):
    root, truth = fake_mnist
    monkeypatch.setenv("LABKIT_DATA", str(root))
    _, y = load_mnist("test")
    assert torch.equal(y, torch.from_numpy(truth["test"][1]).long())


# --------------------------------------------------------------------------- cache


def test_second_load_uses_the_cache_without_verifying(fake_mnist, monkeypatch):
    root, _ = fake_mnist
    calls = count_verifications(monkeypatch)
    first = load_mnist("train", root=root)
    assert sorted(calls) == sorted(data.SPLITS["train"])
    assert (root / "MNIST" / "labkit-cache" / "train.bin").is_file()
    calls.clear()
    second = load_mnist("train", root=root)
    assert calls == []
    assert all(torch.equal(a, b) for a, b in zip(first, second))


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_damaged_cache_is_rebuilt_not_trusted(fake_mnist, monkeypatch, damage):
    root, truth = fake_mnist
    load_mnist("train", root=root)
    cache = root / "MNIST" / "labkit-cache" / "train.bin"
    blob = bytearray(cache.read_bytes())
    if damage == "flip":
        blob[-10] ^= 0xFF  # a pixel or label byte: only the CRC can tell
    elif damage == "truncate":
        blob = blob[: len(blob) // 2]
    else:
        blob = bytearray(b"not a cache")
    cache.write_bytes(bytes(blob))
    calls = count_verifications(monkeypatch)
    x, y = load_mnist("train", root=root)
    assert calls, "a damaged cache must send labkit back to the verified raw files"
    images, labels = truth["train"]
    assert torch.equal(x, torch.from_numpy(images.reshape(len(images), -1)).float() / 255)
    assert torch.equal(y, torch.from_numpy(labels).long())
    assert data._read_cache(cache, data._source_stats([root / "MNIST" / "raw" / n for n in data.SPLITS["train"]]))


def test_stale_cache_is_rebuilt_when_the_raw_files_change(fake_mnist, monkeypatch):
    root, _ = fake_mnist
    load_mnist("test", root=root)
    raw = root / "MNIST" / "raw"
    images, labels = make_split(raw, "test", seed=99)  # new content, new mtime
    os.utime(raw / data.SPLITS["test"][0], ns=(1, 1))  # make sure the stat really differs
    register(monkeypatch, raw)
    x, y = load_mnist("test", root=root)
    assert torch.equal(x, torch.from_numpy(images.reshape(len(images), -1)).float() / 255)
    assert torch.equal(y, torch.from_numpy(labels).long())


def test_read_only_folder_gets_its_cache_in_the_user_cache(fake_mnist, tmp_path):
    root, _ = fake_mnist
    mnist = root / "MNIST"
    mnist.chmod(0o555)  # read-only by its mode bits: respected even when running as root
    try:
        load_mnist("test", root=root)
        assert not (mnist / "labkit-cache").exists()
        cached = list((tmp_path / "xdg-cache" / "labkit").glob("mnist-*/test.bin"))
        assert len(cached) == 1
    finally:
        mnist.chmod(0o755)


# --------------------------------------------------------------------------- bad files


def test_truncated_file_is_named_and_never_used(fake_mnist):
    root, _ = fake_mnist
    path = root / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CorruptMNISTError, match="train-images-idx3-ubyte is truncated") as err:
        load_mnist("train", root=root)
    assert "delete it and run again" in str(err.value)
    assert not (root / "MNIST" / "labkit-cache" / "train.bin").exists()


def test_corrupt_file_is_named_even_after_a_good_cache_existed(fake_mnist):
    root, _ = fake_mnist
    load_mnist("train", root=root)
    path = root / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 0x01  # same size, different content
    path.write_bytes(bytes(blob))
    with pytest.raises(CorruptMNISTError, match=r"train-labels-idx1-ubyte is corrupt: its md5 is [0-9a-f]{32}"):
        load_mnist("train", root=root)


def test_bad_idx_header_is_named(fake_mnist, monkeypatch):
    root, _ = fake_mnist
    raw = root / "MNIST" / "raw"
    write_idx(raw / "t10k-labels-idx1-ubyte", np.zeros(3, dtype=np.uint8), magic=1234)
    register(monkeypatch, raw)  # checksums match: only the header is wrong
    with pytest.raises(CorruptMNISTError, match="t10k-labels-idx1-ubyte has a bad IDX header"):
        load_mnist("test", root=root)


def test_missing_folder_without_download_says_where_and_how_to_fix(tmp_path):
    with pytest.raises(MNISTNotFoundError) as err:
        load_mnist("test", root=tmp_path / "nowhere", download=False)
    msg = str(err.value)
    assert str(tmp_path / "nowhere" / "MNIST" / "raw") in msg
    assert "t10k-images-idx3-ubyte" in msg
    for fix in ("connect to the internet", "LABKIT_DATA", "the folder from root=", "load_mnist(..., root="):
        assert fix in msg
    assert isinstance(err.value, DataError) and isinstance(err.value, FileNotFoundError)


def test_on_the_command_line_the_message_names_the_flag(tmp_path):
    with pytest.raises(MNISTNotFoundError) as err:
        load_mnist("test", root=tmp_path / "nowhere", download=False)
    msg = str(err.value.for_command_line("--data-dir"))
    assert "the folder from --data-dir) and --no-download" in msg and "pass that folder directly: --data-dir" in msg
    assert "root=" not in msg and str(tmp_path / "nowhere" / "MNIST" / "raw") in msg


def test_offline_download_gives_one_clear_error_without_a_urllib_chain(tmp_path, monkeypatch):
    import torchvision.datasets

    class OfflineMNIST:
        def __init__(self, *args, **kwargs):
            raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.datasets, "MNIST", OfflineMNIST)
    monkeypatch.setenv("LABKIT_DATA", str(tmp_path / "env-data"))
    with pytest.raises(MNISTNotFoundError) as err:
        load_mnist("train")
    e = err.value
    assert e.__cause__ is None and e.__suppress_context__
    assert "could not be downloaded" in str(e) and "name resolution" in str(e)
    assert "the folder from LABKIT_DATA" in str(e)
    assert str(tmp_path / "env-data") in str(e)


def test_download_goes_through_torchvision_into_the_data_folder(tmp_path, monkeypatch):
    import torchvision.datasets

    calls = []
    raw = tmp_path / "MNIST" / "raw"

    class FakeMNIST:  # writes the files where torchvision would, as a real download does
        def __init__(self, root, train, download):
            calls.append((root, train, download))
            raw.mkdir(parents=True, exist_ok=True)
            make_split(raw, "train" if train else "test", seed=5)
            register(monkeypatch, raw)

    monkeypatch.setattr(torchvision.datasets, "MNIST", FakeMNIST)
    x, _ = load_mnist("test", root=tmp_path)
    assert calls == [(str(tmp_path), False, True)]
    assert x.shape == (3, 784)
    load_mnist("test", root=tmp_path)
    assert len(calls) == 1, "files already there: no second download"


# --------------------------------------------------------------------------- batches


def test_batches_cover_every_row_once_aligned_and_keep_the_last_partial_batch():
    x = torch.arange(23).float().unsqueeze(1).repeat(1, 3)
    y = torch.arange(23)
    got = list(batches(x, y, batch_size=5, generator=torch.Generator().manual_seed(0)))
    assert [len(b[1]) for b in got] == [5, 5, 5, 5, 3]
    for xb, yb in got:
        assert torch.equal(xb[:, 0].long(), yb)
    seen = torch.cat([yb for _, yb in got])
    assert sorted(seen.tolist()) == list(range(23))
    assert not torch.equal(seen, y)  # shuffled


def test_batches_are_reproducible_with_a_generator_and_ordered_without_shuffle():
    x = torch.randn(50, 4)
    a = [b for b in batches(x, batch_size=8, generator=torch.Generator().manual_seed(3))]
    b = [b for b in batches(x, batch_size=8, generator=torch.Generator().manual_seed(3))]
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    plain = list(batches(x, batch_size=8, shuffle=False))
    assert torch.equal(torch.cat(plain), x)
    assert isinstance(plain[0], torch.Tensor)  # one tensor in, tensors out


def test_batches_reject_bad_arguments():
    with pytest.raises(ValueError, match="same first dimension"):
        list(batches(torch.zeros(4, 2), torch.zeros(5), batch_size=2))
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            list(batches(torch.zeros(4), batch_size=bad))
    with pytest.raises(ValueError, match="at least one tensor"):
        list(batches(batch_size=2))


def test_default_device_prefers_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_device() == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_device() == torch.device("cuda")


# --------------------------------------------------------------------------- real MNIST

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.mnist
def test_real_mnist_shapes_counts_and_range(mnist_train, mnist_test):
    (x, y), (xt, yt) = mnist_train, mnist_test
    assert x.shape == (60000, 784) and xt.shape == (10000, 784)
    assert y.bincount().tolist() == TRAIN_COUNTS
    assert yt.bincount().tolist() == TEST_COUNTS
    assert y[0].item() == 5
    for images in (x, xt):
        assert images.min().item() == 0.0 and images.max().item() == 1.0


@pytest.mark.mnist
def test_real_mnist_equals_torchvisions_own_reader(mnist_root, mnist_test):
    from torchvision.datasets import MNIST

    ref = MNIST(root=mnist_root, train=False, download=False)  # independent IDX parser
    x, y = mnist_test
    assert torch.equal(x, ref.data.reshape(-1, 784).float() / 255)
    assert torch.equal(y, ref.targets)
