"""What travels back from a Dask worker: data, never a pickle that the instructor's process would run.

Owns: :func:`encode_result` / :func:`decode_result`, a
:class:`~labkit.course.grading.records.StudentResult` as JSON text (its rows and log; the
course folder travels beside it as the bytes of a tar, :func:`pack`), :func:`unpack`, the
tar checked before anything is extracted (regular files and folders only, relative paths
without ``..``, a size cap), :class:`BadResult` (what a result that is none of these raises)
and :func:`refusing_pickles`, the client side's guard: while it holds, Dask's own unpickling
in this process (the errors a worker sends, ``__Pickled__`` frames, a value's type) is refused.
"""
from __future__ import annotations

import contextlib
import io
import json
import tarfile
import threading
from pathlib import Path, PurePosixPath

from labkit.course.grading.records import Row, StudentResult
from labkit.errors import GradingError

MAX_RESULT_BYTES = 16 << 20      # a result's JSON text (rows and log)
MAX_COURSE_BYTES = 2 << 30       # a student's course folder, as a tar
MAX_MEMBERS = 20_000
FORMAT = 1


class BadResult(GradingError):
    """What a worker sent back is not a result labkit wrote (wrong type, bad JSON, a tar that escapes)."""


class PickleRefused(TypeError):
    """A pickle reached the instructor's process from the cluster (refused: it is never unpickled)."""


# --------------------------------------------------------------------------- the result as JSON


def encode_result(result: StudentResult) -> str:
    """``result``'s rows and log as JSON text (its course folder is the worker's: it travels as a tar)."""
    return json.dumps({"format": FORMAT, "rows": [[r.student, r.notebook, r.status, r.scored] for r in result.rows],
                       "log": result.log}, ensure_ascii=False)


def _row(item) -> Row:
    if not (isinstance(item, list) and len(item) == 4 and all(isinstance(v, str) for v in item[:3])
            and isinstance(item[3], bool)):
        raise BadResult(f"a worker's result has a malformed row {str(item)[:100]!r}")
    return Row(*item)


def decode_result(text, students: set[str] | None = None) -> StudentResult:
    """The :class:`StudentResult` (course None) of :func:`encode_result`'s text; BadResult when it is
    anything else. ``students``: the ids its rows may name (the task's student)."""
    if not isinstance(text, str):
        raise BadResult(f"a worker sent {type(text).__name__} where a result (JSON text) was expected")
    if len(text) > MAX_RESULT_BYTES:
        raise BadResult(f"a worker's result is {len(text)} characters (cap {MAX_RESULT_BYTES})")
    try:
        data = json.loads(text)
    except ValueError as e:
        raise BadResult(f"a worker's result is not JSON ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("rows"), list) \
            or not isinstance(data.get("log"), str):
        raise BadResult("a worker's result is not labkit's (format, rows, log)")
    rows = [_row(item) for item in data["rows"]]
    strangers = {r.student for r in rows} - students if students is not None else set()
    if strangers:
        raise BadResult(f"a worker's result names students it was not given: {', '.join(sorted(strangers))[:100]}")
    return StudentResult(rows, None, data["log"])


def decode_task(value, student: str) -> tuple[StudentResult, bytes | None]:
    """A task's return value, ``(JSON text, tar bytes or None)``, checked (BadResult)."""
    if not (isinstance(value, (tuple, list)) and len(value) == 2):
        raise BadResult(f"a worker sent {type(value).__name__} where (result, course) was expected")
    text, course = value
    if course is not None and not isinstance(course, (bytes, bytearray, memoryview)):
        raise BadResult(f"a worker sent {type(course).__name__} where a course tar (bytes) was expected")
    return decode_result(text, {student}), bytes(course) if course is not None else None


# --------------------------------------------------------------------------- a course folder as a tar


def pack(folder: Path) -> bytes:
    """``folder``'s contents as an uncompressed tar (sorted, so the same folder gives the same bytes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return buf.getvalue()


def _checked(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    members, total = [], 0
    for m in tar:
        name = PurePosixPath(m.name)
        if name.is_absolute() or ".." in name.parts or not name.parts or "\\" in m.name:
            raise BadResult(f"a worker's course tar has a path outside the course: {m.name[:100]!r}")
        if not (m.isfile() or m.isdir()):
            raise BadResult(f"a worker's course tar holds {m.name[:100]!r}, neither a file nor a folder "
                            "(links and devices are refused)")
        total += m.size
        members.append(m)
        if total > MAX_COURSE_BYTES or len(members) > MAX_MEMBERS:
            raise BadResult(f"a worker's course tar is over the cap ({MAX_COURSE_BYTES >> 20} MB, "
                            f"{MAX_MEMBERS} entries)")
    return members


def unpack(data: bytes, dest: Path) -> None:
    """Extract :func:`pack`'s bytes into ``dest`` after checking every member (:func:`_checked`);
    BadResult, with nothing extracted, when one is refused."""
    if not isinstance(data, (bytes, bytearray)) or len(data) > MAX_COURSE_BYTES + (64 << 20):
        raise BadResult("a worker's course is not a tar within the cap")
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            members = _checked(tar)
            dest.mkdir(parents=True, exist_ok=True)
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, OSError) as e:
        raise BadResult(f"a worker's course tar cannot be read ({type(e).__name__}: {e})") from None


# --------------------------------------------------------------------------- the client's guard

_GUARD = threading.Lock()
_held: list = [0, []]  # how many guards hold; what they replaced: (module, name, Dask's own)
# Where Dask unpickles on a client, as distributed 2024-2026 spells it. Inside a message being read
# (a ``__Pickled__`` frame: distributed.protocol.core's ``pickle``; a value serialized by any family but
# msgpack, which the scheduler's stream accepts whatever the client's deserializers:
# distributed.protocol.serialize's ``deserialize``) the value becomes None, so that the message, and the
# connection, survive (a worker's error then reads as none); elsewhere (distributed.protocol.pickle.loads,
# through distributed.core.clean_exception; the type of each finished task and Client.run's errors:
# distributed.client.loads) loading raises. The "warn" topic is unsubscribed by the client.
_RAISING = (("distributed.protocol.pickle", "loads"), ("distributed.client", "loads"))


def _refuse(*_args, **_kwargs):
    raise PickleRefused("labkit refuses to unpickle what comes from the cluster")


def _msgpack_only(real):
    def deserialize(header, frames, deserializers=None):
        if "is-collection" not in header and header.get("serializer") != "msgpack":
            return None
        return real(header, frames, deserializers=deserializers)  # a collection's items come back here

    return deserialize


class _NoPickle:
    """Dask's pickle module as a message reader sees it, its ``loads`` giving None."""

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        return getattr(self._real, name)

    @staticmethod
    def loads(*_args, **_kwargs):
        return None


def _replace(module_name: str, name: str, value) -> None:
    import importlib

    module = importlib.import_module(module_name)
    _held[1].append((module, name, getattr(module, name)))
    setattr(module, name, value(getattr(module, name)))


@contextlib.contextmanager
def refusing_pickles():
    """While it holds, Dask unpickles nothing in this process (see the comment above)."""
    with _GUARD:
        if _held[0] == 0:
            _replace("distributed.protocol.core", "pickle", _NoPickle)
            _replace("distributed.protocol.serialize", "deserialize", _msgpack_only)
            for module_name, name in _RAISING:
                _replace(module_name, name, lambda _fn: _refuse)
        _held[0] += 1
    try:
        yield
    finally:
        with _GUARD:
            _held[0] -= 1
            if _held[0] == 0:
                for module, name, fn in reversed(_held[1]):
                    setattr(module, name, fn)
                _held[1].clear()
