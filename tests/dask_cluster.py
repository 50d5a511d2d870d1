"""A Dask cluster on 127.0.0.1 for tests and benchmarks: ``dask scheduler`` and ``dask worker`` as
separate processes, each worker in its own empty working folder with its own TMPDIR (used by
tests/test_cluster.py, tests/test_adversarial_cluster.py and benchmarks/grading.py).

TLS by default, as docs/instructors.md starts one: ``labkit cluster-certs`` writes the run's
certificates into ``root/certs`` (:attr:`Cluster.tls`) and every member uses its own;
``tls=False`` starts a plain ``tcp://`` cluster (the benchmarks' baseline, the attack tests)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


class Cluster:
    """A scheduler and workers on 127.0.0.1, as separate processes (each its own process group)."""

    def __init__(self, root: Path, workers: int = 2, tls: bool = True, worker_args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None):
        from labkit.course.grading import certs

        self.root, self.procs, self.tmpdirs = root, [], []
        self.file = root / "scheduler.json"
        self.tls = certs.write_certs(root / "certs") if tls else None
        env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                   DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="3", **(env or {}))
        self.env = env
        self._start([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                     "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(self.file),
                     *self._tls_args("scheduler")], root / "scheduler", env)
        deadline = time.monotonic() + 60
        while not self.file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert self.file.exists(), "the Dask scheduler did not start"
        self.address = json.loads(self.file.read_text())["address"]
        for k in range(workers):
            tmp = Path(tempfile.mkdtemp(prefix="lkw"))  # short: kernels' socket paths stay under 107 bytes
            self.tmpdirs.append(tmp)
            self._start([str(BIN / "dask"), "worker", "--scheduler-file", str(self.file), "--nworkers", "1",
                         "--nthreads", "1", "--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0",
                         "--name", f"w{k}", *self._tls_args("worker"), *worker_args],
                        root / f"worker{k}", dict(env, TMPDIR=str(tmp)))
        from distributed import Client

        with Client(self.address, timeout="30s", security=self.security()) as client:
            client.wait_for_workers(workers, timeout=90)

    def _tls_args(self, role: str) -> list[str]:
        if self.tls is None:
            return []
        args = ["--tls-ca-file", str(self.tls / "ca.pem"), "--tls-cert", str(self.tls / f"{role}.pem"),
                "--tls-key", str(self.tls / f"{role}-key.pem")]
        return ["--protocol", "tls", *args] if role == "scheduler" else args

    def security(self):
        """The client's Dask ``Security`` for this cluster (None for a plain one)."""
        from labkit.course.grading import certs

        return certs.security(self.tls) if self.tls is not None else None

    def _start(self, argv, cwd: Path, env) -> None:
        cwd.mkdir(parents=True)  # an empty working folder: no checkout, no submissions
        log = open(cwd.parent / f"{cwd.name}.log", "wb")
        self.procs.append(subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True))

    def kill(self, k: int) -> None:
        """Worker ``k`` and everything it started, at once (SIGKILL to its process group)."""
        proc = self.procs[1 + k]
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def close(self) -> None:
        for proc in reversed(self.procs):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)
        for tmp in self.tmpdirs:
            shutil.rmtree(tmp, ignore_errors=True)
