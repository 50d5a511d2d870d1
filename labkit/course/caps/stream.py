"""Reading a subprocess's output stream with a cap on the bytes kept.

Owns: :class:`Capture`. nbgrader's stdout and stderr carry whatever a
student's kernel writes to its own file descriptors 1 and 2 (they are
inherited), so they can be gigabytes long and hold any bytes. A Capture reads
the pipe in a thread, always to the end (the child never blocks on a full
pipe), and keeps at most ``limit`` bytes: the first quarter, then nbgrader's
own log lines (``[AutogradeApp | INFO] Autograding ...``: they say which
notebook was running), then the last bytes; lines are cut at
:data:`MAX_LINE` bytes. Text is decoded as UTF-8 with replacement.
"""
from __future__ import annotations

import collections
import re
import threading

MAX_LINE = 8192
_LOG_LINE = re.compile(rb"^\[[A-Za-z]+App \| [A-Z]+\]")


class Capture:
    """Read ``stream`` (a binary pipe) in a thread; :meth:`text` is what was kept."""

    def __init__(self, stream, limit: int | None = None):
        self.limit = limit
        self.cut = 0                                   # bytes read but not kept
        self._head: list[bytes] = []                   # the first limit/4 bytes
        self._kept: list[tuple[int, bytes]] = []       # nbgrader's log lines after the head, numbered
        self._tail: collections.deque[tuple[int, bytes]] = collections.deque()  # the last bytes
        self._sizes = [0, 0, 0]                        # bytes in head, kept, tail
        self._cut_at: int | None = None                # line number after which something was left out
        self._n = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _add(self, line: bytes) -> None:
        if self.limit is None or self._sizes[0] + len(line) <= self.limit // 4 and self._cut_at is None:
            self._head.append(line)
            self._sizes[0] += len(line)
            return
        self._n += 1
        if self._cut_at is None:
            self._cut_at = self._n
        if _LOG_LINE.match(line) and self._sizes[1] + len(line) <= self.limit // 4:
            self._kept.append((self._n, line))
            self._sizes[1] += len(line)
            return
        self._tail.append((self._n, line))
        self._sizes[2] += len(line)
        while self._sizes[2] > self.limit // 2:
            _, old = self._tail.popleft()
            self._sizes[2] -= len(old)
            self.cut += len(old)

    def _read(self, stream) -> None:
        line, dropped = b"", 0
        with stream:
            while chunk := stream.read1(1 << 16):
                parts = chunk.split(b"\n")
                for i, part in enumerate(parts):
                    room = MAX_LINE - len(line)
                    line += part[:room]
                    dropped += max(0, len(part) - room)
                    if i < len(parts) - 1:  # the line ends here
                        self._line(line + b"\n", dropped)
                        line, dropped = b"", 0
        if line or dropped:
            self._line(line, dropped)

    def _line(self, line: bytes, dropped: int) -> None:
        if dropped:
            line = line.rstrip(b"\n") + f" [labkit: {dropped} more bytes of this line left out]\n".encode()
        with self._lock:
            self.cut += dropped
            self._add(line)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the end of the stream, at most ``timeout`` seconds; False if it has not ended
        (a process that outlived the writer still holds the pipe: :meth:`text` is what came so far)."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def text(self) -> str:
        """What was kept, in order, with a note where bytes were left out."""
        with self._lock:
            parts = list(self._head)
            if self.cut:
                parts.append(f"[labkit: {self.cut} bytes of output left out]\n".encode())
            parts += [line for _, line in sorted(self._kept + list(self._tail))]
        return b"".join(parts).decode("utf-8", errors="replace")
