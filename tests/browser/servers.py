"""JupyterLab or Notebook 7, started by the tests on 127.0.0.1 with a token.

The server runs from this Python environment (``python -m jupyterlab`` / ``python -m notebook``),
with every per-user folder (config, data, runtime, IPython profile, lab settings and workspaces)
inside a throwaway folder, so that nothing from the machine's user leaks in and nothing is left
behind. The lab settings written there:

- notebooks attach every cell to the page (``windowingMode: none``), so that the tests can read
  every cell's output; students get the default, which only defers drawing off-screen cells;
- no news and no update check (JupyterLab would otherwise ask, in a toast, to fetch them).

nbgrader's server and lab extensions are switched off: students install ``labkit[notebooks]``,
which has no nbgrader, and their JupyterLab has no "Nbgrader" menu.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

APPS = {"lab": "jupyterlab", "notebook": "notebook"}
NBGRADER_SERVER_EXTENSIONS = ("formgrader", "validate_assignment", "assignment_list", "course_list")
CONFIG = {  # inside JUPYTER_CONFIG_DIR
    "jupyter_server_config.json": {"ServerApp": {"jpserver_extensions": {
        f"nbgrader.server_extensions.{name}": False for name in NBGRADER_SERVER_EXTENSIONS}}},
    "labconfig/page_config.json": {"disabledExtensions": {"@jupyter/nbgrader": True}},
}
SETTINGS = {  # inside JUPYTERLAB_SETTINGS_DIR
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterServer:
    """One Jupyter server process; ``url(path)`` gives a page's address with the token."""

    def __init__(self, app: str, root_dir: Path, home: Path, env: dict[str, str] | None = None, startup_s: float = 120):
        if app not in APPS:
            raise ValueError(f"app must be one of {sorted(APPS)}, got {app!r}")
        self.app, self.root_dir, self.home = app, Path(root_dir), Path(home)
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.log_path = self.home / f"{app}-server.log"
        self._shutdowns: list[threading.Thread] = []
        for folder, files in (("config", CONFIG), ("lab-settings", SETTINGS)):
            for rel, values in files.items():
                path = self.home / folder / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(values))
        dirs = {"JUPYTER_CONFIG_DIR": "config", "JUPYTER_DATA_DIR": "data", "JUPYTER_RUNTIME_DIR": "runtime",
                "IPYTHONDIR": "ipython", "JUPYTERLAB_SETTINGS_DIR": "lab-settings",
                "JUPYTERLAB_WORKSPACES_DIR": "lab-workspaces"}
        full_env = dict(os.environ, **{k: str(self.home / v) for k, v in dirs.items()}, **(env or {}))
        full_env.pop("MPLBACKEND", None)  # the kernel must use Jupyter's inline backend, as a student's does
        args = [sys.executable, "-m", APPS[app], "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
                "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={self.root_dir}", "--expose-app-in-browser"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.append("--allow-root")  # CI runs as root
        if app == "lab":
            args += ["--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.news_url=None"]
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(args, cwd=self.root_dir, env=full_env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_ready(startup_s)
        except BaseException:
            self.stop()
            raise

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str, query: str = "") -> str:
        return f"{self.base}/{path.lstrip('/')}?token={self.token}" + (f"&{query}" if query else "")

    def notebook_url(self, path: str) -> str:
        """The page of one notebook: in JupyterLab in a fresh workspace (``reset``: no notebook of an
        earlier page reopens with it), in Notebook 7 on its own page."""
        return self.url(f"lab/tree/{path}", "reset") if self.app == "lab" else self.url(f"notebooks/{path}")

    def api(self, method: str, path: str):
        """Call the REST API (used for housekeeping only: listing and shutting down kernels)."""
        req = urllib.request.Request(f"{self.base}/api/{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter {self.app} exited with {self.process.returncode}:\n{self.log()}")
            try:
                self.api("GET", "status")
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.3)
        raise RuntimeError(f"jupyter {self.app} did not answer on {self.base} within {timeout:.0f} s:\n{self.log()}")

    def kernel_ids(self) -> set[str]:
        return {kernel["id"] for kernel in self.api("GET", "kernels") or []}

    def shutdown_kernels(self, keep: set[str] = frozenset(), wait: bool = True) -> None:
        """Shut down every running kernel but those in ``keep``; with ``wait=False`` in a background
        thread (a kernel takes a few seconds to stop, and the next test need not wait; ``stop`` does)."""
        def shutdown():
            for kernel_id in self.kernel_ids() - set(keep):
                try:
                    self.api("DELETE", f"kernels/{kernel_id}")
                except urllib.error.HTTPError:
                    pass  # gone already

        if wait:
            shutdown()
        else:
            thread = threading.Thread(target=shutdown, daemon=True)
            thread.start()
            self._shutdowns.append(thread)

    def stop(self) -> None:
        for thread in self._shutdowns:
            thread.join(timeout=30)
        if self.process.poll() is None:
            try:
                self.shutdown_kernels()
            except Exception:  # noqa: BLE001 - best effort: the server is stopped below in any case
                pass
            self.process.send_signal(signal.SIGINT)  # Jupyter asks to confirm on the first SIGINT ...
            time.sleep(0.2)
            self.process.send_signal(signal.SIGINT)  # ... and stops on the second
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._log.close()
