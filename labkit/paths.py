"""Where the kit's folders are: the checkout's root, solutions/, notebooks/, data/."""
from __future__ import annotations

from pathlib import Path


def project_root() -> Path | None:
    """The labkit checkout this package was imported from, or None for an installed wheel."""
    repo = Path(__file__).resolve().parent.parent
    if (repo / "pyproject.toml").is_file() and (repo / "labkit").is_dir():
        return repo
    return None


def require_project_root() -> Path:
    """The checkout's root; a clear error when labkit runs from an installed wheel."""
    root = project_root()
    if root is None:
        raise RuntimeError(
            "this command needs a labkit checkout (solutions/ and notebooks/); "
            "clone the repository and install it with `pip install -e .`"
        )
    return root
