"""The system Chromium (Debian's ``chromium``) driven by Playwright, and the record of what a page asks for.

Playwright's own browser download cannot run here, so the tests launch the Chromium that the
machine has (``$LABKIT_CHROMIUM``, else ``chromium`` / ``chromium-browser`` / ``google-chrome`` on
PATH). Each launch gets a fresh profile (Playwright makes one per launch) and the flags that keep
Chromium from calling Google's hosts on its own.

``Offline`` records every request and websocket of a browser context and lets only local ones
through (127.0.0.1, ``data:``, ``blob:``, ``file:``): anything else is aborted, as it would fail in
a computer room without internet, and listed in ``outside`` for the test to judge.
"""
from __future__ import annotations

import os
import shutil
from urllib.parse import urlsplit

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions",
         "--disable-domain-reliability", "--no-pings", "--disable-features=Translate,OptimizationHints,MediaRouter"]
NAMES = ("chromium", "chromium-browser", "google-chrome")
LOCAL_SCHEMES = {"data", "blob", "file", "about"}
LOCAL_HOSTS = {"127.0.0.1"}


def find_chromium() -> str | None:
    given = os.environ.get("LABKIT_CHROMIUM")
    if given:
        return given if os.access(given, os.X_OK) else None
    for name in NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unavailable() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -e '.[test]')"
    if find_chromium() is None:
        return ("no Chromium found (install Debian's: apt-get install chromium; or set LABKIT_CHROMIUM "
                "to a Chromium or Chrome executable)")
    return None


def launch(playwright):
    return playwright.chromium.launch(executable_path=find_chromium(), args=FLAGS, chromium_sandbox=False)


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in LOCAL_SCHEMES or (parts.scheme in ("http", "https", "ws", "wss")
                                             and parts.hostname in LOCAL_HOSTS)


class Offline:
    """Every request and websocket of ``context``: ``seen`` all of them, ``outside`` the non-local ones."""

    def __init__(self, context):
        self.seen: list[str] = []
        self.outside: list[str] = []
        context.route("**/*", self._route)
        context.on("request", lambda request: self.seen.append(request.url))
        context.on("page", lambda page: page.on("websocket", self._websocket))

    def watch(self, page) -> None:
        """Pages opened before ``Offline`` was attached (``context.new_page`` pages are watched anyway)."""
        page.on("websocket", self._websocket)

    def _websocket(self, ws) -> None:
        self.seen.append(ws.url)
        if not is_local(ws.url):
            self.outside.append(ws.url)

    def _route(self, route) -> None:
        url = route.request.url
        if is_local(url):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort("internetdisconnected")


def launched_or_skip():
    """A module fixture's body: Chromium launched through Playwright (yielded, closed after), or the
    test skipped saying why; under CI=true it fails instead, unless .ci/run set LABKIT_NO_BROWSER
    because it could not install Chromium."""
    import pytest

    reason = unavailable()
    if reason:
        told = os.environ.get("LABKIT_NO_BROWSER")
        if in_ci() and not told:
            pytest.fail(f"CI=true, but the browser tests cannot run: {reason}. .ci/run installs Debian's chromium "
                        "and sets LABKIT_NO_BROWSER when it cannot.")
        pytest.skip(f"no browser tests: {told or reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()
