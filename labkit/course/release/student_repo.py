"""Where the public student repository lives, and the links every student notebook carries.

One place configures it, ``[tool.labkit]`` in the checkout's ``pyproject.toml``::

    [tool.labkit]
    student-repository = "https://github.com/ORG/REPO"   # "" while there is none yet
    student-branch = "main"

``labkit publish`` writes that repository; ``labkit release`` generates from
it, in every student notebook, the *Open in Colab* badge (under the title of
the first Markdown cell) and the Colab install cell (the first code cell that
tests ``"google.colab" in sys.modules``), and ``labkit release --check``
reports a notebook whose links disagree with it. While it is unset, release
writes no badge, the install cell tells a student on Colab what to ask for,
and ``labkit publish`` refuses (unless ``--force``). Colab opens
notebooks from GitHub only, so the repository must be a GitHub address.

Owns: :class:`StudentRepo` (reading and checking the configuration),
:func:`badge`, :func:`install_cell`, :func:`apply_links` and :func:`link_problems`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from labkit.data import project_root
from labkit.errors import OptionError

# The distribution name on PyPI ("labkit" there is someone else's package); the import name stays labkit.
DISTRIBUTION = "labkit-vae"
SETTING = "student-repository"
BRANCH_SETTING = "student-branch"
HOW_TO_SET = (f'set {SETTING} = "https://github.com/ORG/REPO" under [tool.labkit] in pyproject.toml, '
              "then run `labkit release`")

COLAB_BADGE_SVG = "https://colab.research.google.com/assets/colab-badge.svg"
# Any Colab badge line, whatever it points at: release replaces it.
BADGE_RE = re.compile(r"^\s*\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)\s*$")
INSTALL_MARK = '"google.colab" in sys.modules'
_GITHUB_RE = re.compile(r"https://github\.com/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)")
_BRANCH_RE = re.compile(r"[A-Za-z0-9_./-]+")


class ConfigError(OptionError):
    """``[tool.labkit]`` in pyproject.toml is malformed; the message names the setting and the fix."""


@dataclass(frozen=True)
class StudentRepo:
    """The student repository: ``url`` ("" when unset) and ``branch``."""

    url: str = ""
    branch: str = "main"

    def __post_init__(self):
        if self.url and not _GITHUB_RE.fullmatch(self.url):
            raise ConfigError(
                f"[tool.labkit] {SETTING} = {self.url!r} is not a GitHub repository address; Colab opens "
                'notebooks from GitHub only: write it as "https://github.com/ORG/REPO" (no .git, no trailing /)'
            )
        if not _BRANCH_RE.fullmatch(self.branch) or ".." in self.branch:
            raise ConfigError(f"[tool.labkit] {BRANCH_SETTING} = {self.branch!r} is not a branch name (e.g. \"main\")")

    @property
    def configured(self) -> bool:
        return bool(self.url)

    @property
    def slug(self) -> str:
        """``ORG/REPO``."""
        return "/".join(_GITHUB_RE.fullmatch(self.url).groups())

    def colab_url(self, notebook: str) -> str:
        """The Colab address of ``notebooks/<notebook>.ipynb`` on the configured branch."""
        return f"https://colab.research.google.com/github/{self.slug}/blob/{self.branch}/notebooks/{notebook}.ipynb"

    @property
    def pip_requirement(self) -> str:
        """What the Colab cell installs: the package from the student repository's branch."""
        return f"{DISTRIBUTION} @ git+{self.url}@{self.branch}"


def load(root: str | Path | None = None) -> StudentRepo:
    """The configuration in ``root/pyproject.toml`` (default: the checkout's); unset when there is none."""
    root = Path(root) if root is not None else project_root()
    path = root / "pyproject.toml" if root is not None else None
    if path is None or not path.is_file():
        return StudentRepo()
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {}).get("labkit", {})
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    unknown = sorted(set(table) - {SETTING, BRANCH_SETTING})
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) under [tool.labkit]: {', '.join(unknown)} "
                          f"(known: {SETTING}, {BRANCH_SETTING})")
    for key in table:
        if not isinstance(table[key], str):
            raise ConfigError(f"{path}: [tool.labkit] {key} must be a string")
    return StudentRepo(table.get(SETTING, "").strip(), table.get(BRANCH_SETTING, "main").strip() or "main")


# --------------------------------------------------------------------------- the generated links


def badge(repo: StudentRepo, notebook: str) -> str | None:
    """The Markdown badge line of ``notebooks/<notebook>.ipynb``; None while no repository is set."""
    if not repo.configured:
        return None
    return f"[![Open In Colab]({COLAB_BADGE_SVG})]({repo.colab_url(notebook)})"


def install_cell(repo: StudentRepo) -> str:
    """The source of the Colab install cell: installs labkit on Colab, does nothing anywhere else."""
    head = "# On Google Colab, install labkit first. Anywhere else this cell does nothing.\n"
    if repo.configured:
        return (head + "import sys\n\nif " + INSTALL_MARK + ":\n"
                f"    get_ipython().run_line_magic(\"pip\", 'install -q \"{repo.pip_requirement}\"')")
    # No repository configured: a student on Colab is told what to do; nothing stops the notebook.
    message = ("labkit cannot be installed here yet: this copy of the lab does not say which repository it comes "
               "from. Ask your teacher for the lab repository's address, then run\n"
               f'    %pip install -q "{DISTRIBUTION} @ git+https://github.com/ORG/REPO"\n'
               "with that address in a new cell. Until then, cells that import labkit stop with ModuleNotFoundError.")
    return (head + "import sys\n\nif " + INSTALL_MARK + ":\n" f"    print({message!r})")


def _install_cell_index(nb) -> int | None:
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and INSTALL_MARK in cell.source:
            return i
    return None


def _with_badge(source: str, line: str | None) -> str:
    """``source`` without any Colab badge line, then with ``line`` under its title (when given)."""
    lines = [x for x in source.split("\n") if not BADGE_RE.match(x)]
    collapsed = []
    for x in lines:  # removing a badge must not leave a double blank line
        if not (x.strip() == "" and collapsed and collapsed[-1].strip() == ""):
            collapsed.append(x)
    if line is None:
        return "\n".join(collapsed)
    at = 1 if collapsed and collapsed[0].startswith("#") else 0
    block = ["", line] if at else [line, ""]
    return "\n".join(collapsed[:at] + block + collapsed[at:])


def apply_links(nb, repo: StudentRepo, notebook: str):
    """Rewrite the badge and the install cell of ``nb`` (in place) from ``repo``; returns ``nb``."""
    first_md = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    if first_md is not None:
        first_md.source = _with_badge(first_md.source, badge(repo, notebook))
    index = _install_cell_index(nb)
    if index is not None:
        nb.cells[index].source = install_cell(repo)
    return nb


def link_problems(nb, repo: StudentRepo, notebook: str) -> list[str]:
    """How the badge and install cell of ``nb`` disagree with ``repo`` (empty: they agree)."""
    problems = []
    first_md = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    badges = [x.strip() for x in (first_md.source.split("\n") if first_md is not None else []) if BADGE_RE.match(x)]
    expected = badge(repo, notebook)
    if expected is None and badges:
        problems.append(f"{notebook}: Colab badge {badges[0]!r} but no student repository is configured")
    elif expected is not None and badges != [expected]:
        problems.append(f"{notebook}: Colab badge {badges[0] if badges else 'missing'!r}, "
                        f"the configuration gives {expected!r}")
    index = _install_cell_index(nb)
    if index is None:
        problems.append(f"{notebook}: no Colab install cell (a code cell testing {INSTALL_MARK})")
    elif nb.cells[index].source != install_cell(repo):
        problems.append(f"{notebook}: the Colab install cell (cell {index}) differs from the one the "
                        f"configuration gives ({repo.url or 'unset'}, branch {repo.branch})")
    return problems
