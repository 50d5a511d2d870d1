"""A Dask worker taken over, for tests/test_adversarial_cluster.py: its ``grade_task`` lies.

The test cluster imports this module (``tests`` on its members' PYTHONPATH) as
``helpers.liar``; what it sends back depends on the student's id (``<kind>-...``): a pickle whose
unpickling writes ``$LABKIT_TEST_PWNED/pwned-<pid>`` in whichever process unpickles it, an
exception that does the same, a course tar with ``../`` or a link, rows for another student.
Only stdlib imports: the workers do not have the tests' other helpers.
"""
from __future__ import annotations

import io
import json
import os
import tarfile


class Evil:
    """Unpickling it writes ``<folder>/pwned-<pid>``."""

    def __init__(self, folder: str):
        self.folder = folder

    def __reduce__(self):
        return (exec, (f"import os; open(os.path.join({self.folder!r}, f'pwned-{{os.getpid()}}'), 'w').close()",))


class EvilError(Exception):
    def __reduce__(self):
        return Evil(self.args[0]).__reduce__()


def tar(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> bytes:
    """A tar of one member ``name`` of type ``kind`` (a 4-byte file, a link to ``link``, a device)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, link
        info.size = 4 if kind == tarfile.REGTYPE else 0
        t.addfile(info, io.BytesIO(b"evil") if kind == tarfile.REGTYPE else None)
    return buf.getvalue()


def grade_task(index, sub, shared):
    folder = os.environ["LABKIT_TEST_PWNED"]
    rows = [[sub.student, "1_squares", "graded", True], [sub.student, "2_lists", "graded", True]]
    text = json.dumps({"format": 1, "rows": rows, "log": "lies"})
    kind = sub.student.split("-")[0]
    if kind == "pickle":
        return Evil(folder)
    if kind == "raise":
        raise EvilError(folder)
    if kind == "dotdot":
        return text, tar("../../../evil-dotdot.txt")
    if kind == "link":
        return text, tar("gradebook.db", tarfile.SYMTYPE, "/etc/shadow")
    if kind == "other":
        return json.dumps({"format": 1, "rows": [["someone-else", "1_squares", "graded", True]], "log": ""}), None
    return text, None
