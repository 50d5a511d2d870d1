"""The student repository is self-contained: every path that a published file names exists in the
published tree, and every web address is one a student can open.

The tree is `labkit publish`'s own (``publish.student_tree``, in memory: nothing is written). A path
is a word starting with one of the checkout's top-level folders (``docs/models.md``,
``scripts/seed_ranges.py``, ``labkit/plotting/``); it must be a file or folder of the tree, or one
that the kit writes as it runs (``results/``, ``data/`` contents). Addresses must be https and on a
host a student's notebook or README may send them to.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from labkit.course.release import publish as pub
from labkit.course.release.student_repo import StudentRepo

ROOT = Path(__file__).resolve().parent.parent
REPO = StudentRepo("https://github.com/example-org/vae-lab-students", "spring-2027")
FOLDERS = ("docs", "scripts", "results", "data", "notebooks", "labkit", "tests", "solutions", "benchmarks")
PATH = re.compile(r"(?<![\w/.-])((?:%s)/[\w./-]*[\w/])" % "|".join(FOLDERS))
URL = re.compile(r"https?://[^\s\"'<>)\]`\\]+")
# written while the kit runs, so never in the tree: labkit lab's results, the MNIST download cache
MADE_AT_RUN_TIME = ("results/", "data/MNIST")
# Where a shipped file names the instructor's parts as such ("the student repository leaves labkit/course/
# out"; conftest's hooks that run only when tests/helpers/ is there; the marker descriptions of
# tests that stay private): (file, path prefix).
SAYS_NOT_SHIPPED = {("labkit/cli.py", "labkit/course/"), ("tests/conftest.py", "tests/helpers/"),
                    ("tests/conftest.py", "tests/fixtures/"), ("pyproject.toml", "tests/test_")}
HOSTS = {"colab.research.google.com", "github.com", "arxiv.org", "pytorch.org", "docs.pytorch.org"}
# the instructor's placeholder in an unconfigured install cell (it names the setting to fill in)
PLACEHOLDERS = {"https://github.com/ORG/REPO"}


def references(files: dict[str, bytes]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(file, path) and (file, address) pairs named in the text files of ``files``."""
    paths, urls = [], []
    for name, data in sorted(files.items()):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        paths += [(name, m.group(1)) for m in PATH.finditer(text)]
        urls += [(name, m.group(0).rstrip(".,;:")) for m in URL.finditer(text)]
    return paths, urls


def missing_paths(files: dict[str, bytes]) -> list[str]:
    folders = {str(Path(n).parent) + "/" for n in files} | {"/".join(n.split("/")[:i]) + "/" for n in files
                                                           for i in range(1, n.count("/") + 1)}
    out = []
    for name, path in references(files)[0]:
        if path.startswith(MADE_AT_RUN_TIME) or path in files or path.rstrip("/") + "/" in folders \
                or any(name == f and path.startswith(prefix) for f, prefix in SAYS_NOT_SHIPPED):
            continue
        out.append(f"{name} names {path}, which the student repository does not hold")
    return out


def bad_addresses(files: dict[str, bytes]) -> list[str]:
    out = []
    for name, url in references(files)[1]:
        host = re.match(r"https?://([^/:]+)", url).group(1)
        if url in PLACEHOLDERS:
            continue
        if not url.startswith("https://") or host not in HOSTS:
            out.append(f"{name} sends students to {url} (not https on one of {sorted(HOSTS)})")
        elif host == "github.com" and not url.startswith(REPO.url):
            out.append(f"{name} links {url}, not the configured student repository {REPO.url}")
    return out


@pytest.fixture(scope="module")
def tree() -> dict[str, bytes]:
    return pub.student_tree(ROOT, REPO)


def test_every_path_a_published_file_names_is_in_the_published_tree(tree):
    assert missing_paths(tree) == []


def test_every_address_in_the_published_tree_is_one_a_student_can_open(tree):
    assert bad_addresses(tree) == []


def test_a_planted_reference_to_an_unshipped_file_and_address_is_caught(tree):
    planted = dict(tree)
    planted["notebooks/3_vae.ipynb"] = tree["notebooks/3_vae.ipynb"] + b"\nsee docs/models.md and http://example.com/x\n"
    assert missing_paths(planted) == ["notebooks/3_vae.ipynb names docs/models.md, which the student repository does not hold"]
    assert bad_addresses(planted) == ["notebooks/3_vae.ipynb sends students to http://example.com/x "
                                      f"(not https on one of {sorted(HOSTS)})"]


def test_no_shipped_test_needs_a_folder_the_student_repository_lacks(tree):
    shipped = [n for n in tree if n.startswith("tests/test_")]
    assert shipped and "tests/test_answer_key.py" not in shipped
