"""Shared fixtures. Tests that need the real MNIST use `mnist_root` (or the
`mnist` marker) and are skipped, with the reason, only when LABKIT_DATA is unset."""
import os

import pytest


def mnist_dir() -> str | None:
    return os.environ.get("LABKIT_DATA") or None


@pytest.fixture(scope="session")
def mnist_root():
    root = mnist_dir()
    if root is None:
        pytest.skip("needs the real MNIST: set LABKIT_DATA to the folder holding MNIST/raw (CI sets it)")
    return root


@pytest.fixture(scope="session")
def mnist_test(mnist_root):
    from labkit.data import load_mnist

    return load_mnist("test", root=mnist_root, download=False)


@pytest.fixture(scope="session")
def mnist_train(mnist_root):
    from labkit.data import load_mnist

    return load_mnist("train", root=mnist_root, download=False)


# tests/fixtures/ holds tiny nbgrader courses for the grading tests; its
# notebooks are data, not tests (their student versions fail by design).
collect_ignore = ["fixtures"]
