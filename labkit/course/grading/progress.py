"""What the instructor sees while a class is graded: students done, running and left.

Owns: :class:`Progress`, a tqdm bar on a terminal (stderr) with ``running``
and ``left`` beside it; off a terminal (a log file, the tests) it draws
nothing and the per-student lines of ``labkit autograde`` are the record.
"""
from __future__ import annotations

import sys
import threading


class Progress:
    """Counts of one run's students: ``start()`` when one begins, ``finish()`` when its rows are in."""

    def __init__(self, total: int, where: str = "local"):
        self.total, self.done, self.running = total, 0, 0
        self._lock = threading.Lock()
        self._bar = None
        if sys.stderr.isatty():
            try:
                from tqdm import tqdm
            except ImportError:  # tqdm comes with the cluster extra; without it, the log lines suffice
                return
            self._bar = tqdm(total=total, desc=f"grading ({where})", unit="student", file=sys.stderr)

    def _show(self) -> None:
        if self._bar is not None:
            self._bar.set_postfix(running=self.running, left=self.total - self.done, refresh=False)

    def start(self) -> None:
        with self._lock:
            self.running += 1
            self._show()
            if self._bar is not None:
                self._bar.refresh()

    def finish(self) -> None:
        with self._lock:
            self.running = max(0, self.running - 1)
            self.done += 1
            self._show()
            if self._bar is not None:
                self._bar.update(1)

    def write(self, line: str, log=print) -> None:
        """A log line that does not break the bar."""
        if self._bar is not None and log is print:
            self._bar.write(line, file=sys.stderr)
        else:
            log(line)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
