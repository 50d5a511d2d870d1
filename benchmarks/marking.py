"""The marking page of one question with 300 answers, served and rendered, against a trivial page.

    .venv/bin/python benchmarks/marking.py [--answers 300] [--repeat 5]

A synthetic class course held in memory (no gradebook: the pages only read): question ``big`` with
``--answers`` answers (Markdown with TeX, half of them in groups of identical text, each with a
printed output and a small PNG figure as the student saw them) and question ``small`` with one. The
server (``labkit.course.marking.server.make_app``) runs in a thread of this process on 127.0.0.1.

- start-up: ``make_app``, which renders every answer's Markdown and outputs before the server
  listens (``questionpage.prerender``; an answer does not change while the server runs);
- server: the wall time of ``GET /q/big`` (page assembled, sent, read by urllib): the first and
  the median of ``--repeat`` more;
- browser: Chromium (Playwright, as the browser tests) opening the page, from the navigation's start
  to the end of its load event (``performance.getEntriesByType("navigation")``), median;

each also as a ratio to the same measure of the one-answer page ``/q/small`` in the same run.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def _png() -> str:
    """An 8x8 grey PNG, as a figure output carries it (base64)."""
    def chunk(kind, data):
        return (len(data).to_bytes(4, "big") + kind + data
                + zlib.crc32(kind + data).to_bytes(4, "big"))
    raw = b"".join(b"\x00" + bytes([i * 30 % 256] * 8) for i in range(8))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", (8).to_bytes(4, "big") * 2 + b"\x08\x00\x00\x00\x00")
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return base64.b64encode(png).decode()


def synthetic_course(n: int, folder: Path):
    from labkit.course.marking.course import MarkingCourse, StudentAnswer
    from labkit.course.rubric import rubric_for

    real = rubric_for(ROOT / "solutions")["q4_7-answer"]
    figure = {"output_type": "display_data", "metadata": {}, "data": {"image/png": _png(), "text/plain": "<Figure>"}}
    answers = []
    for i in range(n):
        variant = i // 2 if i < n // 2 else i  # the first half: pairs of identical answers
        text = (f"Student answer {variant}: the mean encodings of **4, 7 and 9** lie close together, so "
                f"$\\mathbf{{z}} = \\mathbf{{V}}_M^\\top (\\mathbf{{x}} - \\boldsymbol{{\\mu}})$ blends them; "
                f"the error is about {30 + variant % 10}.{variant % 7}.")
        stream = {"output_type": "stream", "name": "stdout", "text": f"test error: {30 + i % 10}.{i % 7}\n"}
        answers.append(StudentAnswer(f"s{i:03d}", real.notebook, "big", text, [stream, figure]))
    small = [StudentAnswer("s000", real.notebook, "small", "One answer.", None)]
    return MarkingCourse(folder, "lab", {"big": real, "small": real}, {"big": answers, "small": small})


def serve(course, token: str) -> tuple[str, asyncio.AbstractEventLoop]:
    import tornado.httpserver
    import tornado.netutil

    from labkit.course.marking.server import make_app

    ready, box = threading.Event(), {}

    def run():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        sockets = tornado.netutil.bind_sockets(0, address="127.0.0.1")
        t0 = time.perf_counter()
        app = make_app(course, token)  # renders every answer before serving (questionpage.prerender)
        box["startup"] = time.perf_counter() - t0
        tornado.httpserver.HTTPServer(app).add_sockets(sockets)
        box["url"], box["loop"] = f"http://127.0.0.1:{sockets[0].getsockname()[1]}", loop
        ready.set()
        loop.run_forever()

    threading.Thread(target=run, daemon=True).start()
    ready.wait()
    print(f"server start-up (every answer rendered): {box['startup'] * 1000:.0f} ms")
    return box["url"], box["loop"]


def server_seconds(opener, url: str, repeat: int) -> tuple[float, float, int]:
    """(the first load, the median of the next ``repeat``, the page's bytes)."""
    times, size = [], 0
    for _ in range(repeat + 1):
        t0 = time.perf_counter()
        with opener.open(url, timeout=60) as r:
            size = len(r.read())
        times.append(time.perf_counter() - t0)
    return times[0], statistics.median(times[1:]), size


def browser_seconds(base: str, token: str, paths: list[str], repeat: int) -> dict[str, float]:
    from browser import chromium
    from playwright.sync_api import sync_playwright

    out = {}
    with sync_playwright() as playwright:
        browser = chromium.launch(playwright)
        page = browser.new_page()
        page.goto(f"{base}/?token={token}")
        for path in paths:
            times = []
            for _ in range(repeat):
                page.goto(base + path, wait_until="load")
                times.append(page.evaluate(
                    "() => { const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd - n.startTime; }")
                    / 1000)
            out[path] = statistics.median(times)
        browser.close()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--answers", type=int, default=300)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="labkit-bench-marking-") as tmp:
        course, token = synthetic_course(args.answers, Path(tmp)), "benchmark-token"
        base, _ = serve(course, token)
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        opener.open(f"{base}/?token={token}").read()
        first, big, big_bytes = server_seconds(opener, base + "/q/big", args.repeat)
        first_small, small, small_bytes = server_seconds(opener, base + "/q/small", args.repeat)
        print(f"server: /q/big ({args.answers} answers, {big_bytes} bytes) first {first * 1000:.0f} ms, then "
              f"{big * 1000:.1f} ms; /q/small (1 answer, {small_bytes} bytes) first {first_small * 1000:.1f} ms, then "
              f"{small * 1000:.1f} ms; ratio first {first / first_small:.1f}, then {big / small:.1f}")
        from browser import chromium

        reason = chromium.unavailable()
        if reason:
            print(f"browser: not measured ({reason})")
            return 0
        loaded = browser_seconds(base, token, ["/q/big", "/q/small"], args.repeat)
        print(f"browser: /q/big loaded in {loaded['/q/big'] * 1000:.0f} ms; /q/small {loaded['/q/small'] * 1000:.0f} ms; "
              f"ratio {loaded['/q/big'] / loaded['/q/small']:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
