"""``labkit mark`` for the browser tests: the server as the instructor starts it, and the keys a marker presses.

``Server(course)`` runs ``python -m labkit mark COURSE`` (127.0.0.1, a free port) and reads the
address with its token from what the command prints; ``restart()`` stops it and starts a new one
(a new token). ``entries(page)`` are the answers of a question page (``article.entry``);
``press(page, *keys)`` types keys at the page as a marker would, waiting for each save to land.
"""
from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

URL = re.compile(r"open (http://\S+)")


class Server:
    def __init__(self, course: Path, timeout: float = 120):
        self.course, self.timeout, self.proc, self.url = Path(course), timeout, None, ""
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "labkit", "mark", str(self.course)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline, seen = time.monotonic() + self.timeout, []
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line and self.proc.poll() is not None:
                break
            seen.append(line)
            if m := URL.search(line):
                self.url = m.group(1)
                return
        self.stop()
        raise RuntimeError("labkit mark did not print its address:\n" + "".join(seen))

    @property
    def base(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def token(self) -> str:
        return self.url.split("token=", 1)[1]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()


def entries(page):
    return page.locator("article.entry")


def press(page, *keys: str, saves: bool = False) -> None:
    """Press ``keys`` in turn; with ``saves``, wait after each for the current answer's save to answer."""
    for key in keys:
        if saves:
            with page.expect_response(lambda r: r.url.endswith("/api/mark")):
                page.keyboard.press(key)
        else:
            page.keyboard.press(key)


def focused_entry(page):
    return page.locator("article.entry:focus, article.entry:focus-within").first
