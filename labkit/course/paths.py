"""Where the instructor's folders are: the checkout's root, which holds solutions/ and notebooks/."""
from __future__ import annotations

from pathlib import Path

from labkit.data import project_root
from labkit.errors import LabkitError

__all__ = ["CheckoutError", "project_root", "require_project_root"]


class CheckoutError(LabkitError, RuntimeError):
    """A command that needs the instructor's checkout (solutions/, notebooks/) runs without one."""


def require_project_root() -> Path:
    """The checkout's root; a clear error when labkit runs from an installed wheel."""
    root = project_root()
    if root is None:
        raise CheckoutError(
            "this command needs a labkit checkout (solutions/ and notebooks/); "
            "clone the repository and install it with `pip install -e .`"
        )
    return root
