"""MNIST for the lab, verified once and then loaded in a fraction of a second.

    >>> from labkit.data import load_mnist, batches
    >>> X, y = load_mnist("train")        # X: (60000, 784) float32 in [0, 1], y: (60000,) int64
    >>> for xb, yb in batches(X, y, batch_size=500):
    ...     pass                          # aligned minibatches, the last partial batch kept

Where the data lives, in this order:

1. the ``root`` argument,
2. the ``LABKIT_DATA`` environment variable,
3. the project's ``data/`` folder (``data/`` of the labkit checkout; when labkit
   is installed without a checkout, as on Colab, ``./data`` in the working directory).

Inside that folder labkit uses torchvision's layout, ``MNIST/raw/<file>``, and
downloads through ``torchvision.datasets.MNIST`` when the files are missing.
The four raw files are checked once (size and md5); then a cache of the
decoded pixels is written next to them (``MNIST/labkit-cache/``), or, where
that folder is read-only, under ``~/.cache/labkit``. The cache records the
size and modification time of its raw files and a CRC of its own contents:
a stale or damaged cache is rebuilt, never trusted.
"""
from __future__ import annotations

import hashlib
import os
import stat
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import torch

from labkit.errors import DataError, OptionError

__all__ = [
    "MNISTError",
    "MNISTNotFoundError",
    "CorruptMNISTError",
    "load_mnist",
    "data_dir",
    "batches",
    "default_device",
]

N_PIXELS = 28 * 28

# Uncompressed sizes and md5 sums of the official files (../shared/data/README.md).
CHECKSUMS = {
    "train-images-idx3-ubyte": (47040016, "6bbc9ace898e44ae57da46a324031adb"),
    "train-labels-idx1-ubyte": (60008, "a25bea736e30d166cdddb491f175f624"),
    "t10k-images-idx3-ubyte": (7840016, "2646ac647ad5339dbf082846283269ea"),
    "t10k-labels-idx1-ubyte": (10008, "27ae3e4e09519cfbb04c329615203637"),
}
SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

_IMAGE_MAGIC, _LABEL_MAGIC = 2051, 2049
_CACHE_MAGIC = b"LABKITMN"
_CACHE_VERSION = 1
# magic, version, n, rows, cols, (size, mtime_ns) of images and labels, crc32 of payload
_CACHE_HEADER = struct.Struct("<8sIIII QQ QQ I")


class MNISTError(DataError):
    """MNIST could not be loaded; the message says why and how to fix it."""


class MNISTNotFoundError(MNISTError, FileNotFoundError):
    """The MNIST files are not where labkit looked, and could not be downloaded.

    The message names the parameter ``root=``; ``for_command_line("--data-dir")`` gives the
    same error worded for a command, naming its flag instead."""

    def __init__(self, raw: Path, missing: list[str], root, reason: str | None, flag: str | None = None):
        super().__init__(_missing_message(raw, missing, root, reason, flag))
        self.raw, self.missing, self.root, self.reason = raw, missing, root, reason

    def for_command_line(self, flag: str) -> "MNISTNotFoundError":
        return MNISTNotFoundError(self.raw, self.missing, self.root, self.reason, flag)


class CorruptMNISTError(MNISTError):
    """An MNIST file has the wrong size, checksum or header; labkit never uses it."""


# --------------------------------------------------------------------------- folders


def project_root() -> Path | None:
    """The labkit checkout this package was imported from, or None for an installed wheel."""
    repo = Path(__file__).resolve().parent.parent
    if (repo / "pyproject.toml").is_file() and (repo / "labkit").is_dir():
        return repo
    return None


def _project_data_dir() -> Path:
    repo = project_root()
    return (repo if repo is not None else Path.cwd()) / "data"


def data_dir(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root``, else ``$LABKIT_DATA``, else the project's ``data/``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("LABKIT_DATA")
    if env:
        return Path(env).expanduser()
    return _project_data_dir()


def _where_from(root, flag: str | None = None) -> str:
    if root is not None:
        return flag or "root="
    if os.environ.get("LABKIT_DATA"):
        return "LABKIT_DATA"
    return "the project's data/ folder"


def _writable_dir(path: Path) -> bool:
    """True when ``path`` may be written: it must allow writing in its mode bits
    too, so that a folder marked read-only is respected even by root."""
    try:
        st = path.stat()
    except OSError:
        return False
    return bool(st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)) and os.access(path, os.W_OK)


def _cache_dir(raw: Path) -> Path:
    beside = raw.parent / "labkit-cache"
    if beside.is_dir() and _writable_dir(beside):
        return beside
    if not beside.exists() and _writable_dir(raw.parent):
        return beside
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "labkit"
    key = hashlib.sha1(str(raw.resolve()).encode()).hexdigest()[:12]
    return base / f"mnist-{key}"


# --------------------------------------------------------------------------- raw files


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _verify(path: Path) -> None:
    """Check size and md5 of one raw file against :data:`CHECKSUMS`."""
    size, md5 = CHECKSUMS[path.name]
    found = path.stat().st_size
    fix = (
        "labkit will not use it. Fix: delete it and run again to download a fresh copy, "
        "or copy a good file from a machine that has one."
    )
    if found != size:
        what = f"truncated ({found} of {size} bytes)" if found < size else f"too long ({found} bytes, expected {size})"
        raise CorruptMNISTError(f"MNIST file {path} is {what}; {fix}")
    digest = _md5(path)
    if digest != md5:
        raise CorruptMNISTError(f"MNIST file {path} is corrupt: its md5 is {digest}, expected {md5}; {fix}")


def _read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    data = np.fromfile(path, dtype=np.uint8)
    head = 4 + 4 * ndim
    if data.size < head:
        raise CorruptMNISTError(f"MNIST file {path} is too short to hold an IDX header; delete it and run again.")
    found_magic, *dims = struct.unpack(f">I{ndim}I", data[:head].tobytes())
    if found_magic != magic or data.size != head + int(np.prod(dims)):
        raise CorruptMNISTError(
            f"MNIST file {path} has a bad IDX header (magic {found_magic}, dims {dims}, "
            f"{data.size} bytes); delete it and run again."
        )
    return data[head:].reshape(dims)


def _missing_message(raw: Path, missing: list[str], root, reason: str | None, flag: str | None) -> str:
    """What is missing where, and three fixes; the last names ``root=``, or ``flag`` on the command line."""
    folder = raw.parent.parent
    why = f" and could not be downloaded ({reason})" if reason else " and --no-download" if flag else " and download=False"
    direct = f"{flag} /path/to/data" if flag else "load_mnist(..., root='/path/to/data')"
    return (
        f"MNIST is not in {raw} (the folder from {_where_from(root, flag)}){why}.\n"
        f"Missing: {', '.join(missing)}.\n"
        "Fix it in one of three ways:\n"
        f"  1. connect to the internet and run again: labkit downloads MNIST (about 55 MB) into {folder};\n"
        "  2. copy an MNIST folder (MNIST/raw/ with the four files) to this machine and set\n"
        "     LABKIT_DATA to the folder that contains MNIST/, e.g. export LABKIT_DATA=/path/to/data;\n"
        f"  3. pass that folder directly: {direct}."
    )


def _download(folder: Path, split: str) -> None:
    from torchvision.datasets import MNIST

    MNIST(root=str(folder), train=(split == "train"), download=True)


# --------------------------------------------------------------------------- cache


def _source_stats(paths) -> tuple[int, ...]:
    out = []
    for p in paths:
        st = p.stat()
        out += [st.st_size, st.st_mtime_ns]
    return tuple(out)


def _read_cache(path: Path, stats: tuple[int, ...]):
    """Pixels and labels from a cache file, or None when it is missing, stale or damaged."""
    try:
        with open(path, "rb") as f:
            blob = bytearray(os.fstat(f.fileno()).st_size)  # writable, so torch can share it
            if f.readinto(blob) != len(blob):
                return None
    except OSError:
        return None
    if len(blob) < _CACHE_HEADER.size:
        return None
    magic, version, n, rows, cols, *rest = _CACHE_HEADER.unpack_from(blob)
    src, crc = tuple(rest[:4]), rest[4]
    payload = memoryview(blob)[_CACHE_HEADER.size :]
    if (
        magic != _CACHE_MAGIC
        or version != _CACHE_VERSION
        or src != stats
        or len(payload) != n * (rows * cols + 1)
        or zlib.crc32(payload) != crc
    ):
        return None
    arr = np.frombuffer(blob, dtype=np.uint8, offset=_CACHE_HEADER.size)
    return arr[: n * rows * cols].reshape(n, rows * cols), arr[n * rows * cols :]


def _write_cache(path: Path, stats, images: np.ndarray, labels: np.ndarray) -> None:
    n, rows, cols = images.shape
    payload = images.tobytes() + labels.tobytes()
    header = _CACHE_HEADER.pack(_CACHE_MAGIC, _CACHE_VERSION, n, rows, cols, *stats, zlib.crc32(payload))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(header)
            f.write(payload)
        os.replace(tmp, path)  # atomic: a reader sees the old cache or the new one, never half
    except OSError as e:  # a cache is an optimisation: failing to write one costs speed only
        tmp.unlink(missing_ok=True)
        print(f"labkit: could not write the MNIST cache {path} ({e}); loading stays slow.", file=sys.stderr)


# --------------------------------------------------------------------------- public API


def load_mnist(split: str = "train", root=None, download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Load one MNIST split.

    Args:
        split: ``"train"`` (60000 images) or ``"test"`` (10000 images).
        root: data folder holding ``MNIST/raw/``; default ``$LABKIT_DATA``, else ``data/``.
        download: fetch the files with torchvision when they are missing.

    Returns:
        images: float32 tensor (N, 784), pixel values x/255 in [0, 1], rows in file order.
        labels: int64 tensor (N,), the digits 0..9.

    Raises:
        OptionError (a ValueError): ``split`` is not "train" or "test".
        MNISTNotFoundError: the files are missing and cannot be downloaded.
        CorruptMNISTError: a raw file has the wrong size, checksum or header.
    """
    if split not in SPLITS:
        raise OptionError(f"split must be 'train' or 'test', got {split!r}")
    folder = data_dir(root)
    raw = folder / "MNIST" / "raw"
    paths = [raw / name for name in SPLITS[split]]

    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        if not download:
            raise MNISTNotFoundError(raw, missing, root, None)
        try:
            _download(folder, split)
        except Exception as e:  # URLError, RuntimeError, OSError ...: one clear error instead
            reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            raise MNISTNotFoundError(raw, missing, root, reason) from None
        missing = [p.name for p in paths if not p.is_file()]
        if missing:
            raise MNISTNotFoundError(raw, missing, root, "the download left no files")

    stats = _source_stats(paths)
    cache = _cache_dir(raw) / f"{split}.bin"
    cached = _read_cache(cache, stats)
    if cached is None:
        for p in paths:
            _verify(p)
        images = _read_idx(paths[0], _IMAGE_MAGIC, 3)
        labels = _read_idx(paths[1], _LABEL_MAGIC, 1)
        if len(images) != len(labels):
            raise CorruptMNISTError(f"{paths[0]} holds {len(images)} images but {paths[1]} {len(labels)} labels.")
        _write_cache(cache, stats, images, labels)
        cached = images.reshape(len(images), -1), labels

    pixels, digits = cached
    images = torch.from_numpy(pixels).to(torch.float32).div_(255.0)
    return images, torch.from_numpy(digits.astype(np.int64))


def batches(*tensors: torch.Tensor, batch_size: int, shuffle: bool = True, generator: torch.Generator | None = None):
    """Yield aligned minibatches of in-memory tensors by index slicing.

    Args:
        *tensors: one or more tensors with the same first dimension N.
        batch_size: rows per batch; the last batch holds the N % batch_size rest, if any.
        shuffle: draw a fresh random order each time the generator is iterated.
        generator: ``torch.Generator`` (CPU) for a reproducible order.

    Yields:
        a tensor of shape (B, ...) when one tensor is given, else a tuple of them.
    """
    if not tensors:
        raise ValueError("batches() needs at least one tensor")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    n = tensors[0].shape[0]
    for t in tensors[1:]:
        if t.shape[0] != n:
            raise ValueError(f"all tensors need the same first dimension: got {[t.shape[0] for t in tensors]}")
    order = torch.randperm(n, generator=generator) if shuffle else None
    for start in range(0, n, batch_size):
        if order is None:
            out = tuple(t[start : start + batch_size] for t in tensors)
        else:
            idx = order[start : start + batch_size]
            out = tuple(t.index_select(0, idx.to(t.device)) for t in tensors)  # a few times faster than t[idx]
        yield out[0] if len(out) == 1 else out


def default_device() -> torch.device:
    """CUDA when available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
