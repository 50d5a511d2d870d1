"""Attacks on a grading cluster (issue #31 item 1): a real TLS scheduler and two workers on 127.0.0.1
(tests/dask_cluster.py), one for the module.

- strangers: a client without certificates, over plain TCP or TLS, and a client whose certificate
  another CA signed, are refused by the scheduler;
- a hostile kernel (basic sandbox as root: its own network namespace; bwrap elsewhere) looks
  for the scheduler's address in ``/proc/*/cmdline`` (and is given it too), reads the
  certificates named there, and connects with a raw socket and with a Dask client: it fails, and
  the honest student graded after it gets full marks;
- a worker that has been taken over (``grade_task`` replaced by one that lies) returns a pickle
  whose unpickling would write a file in the instructor's process, raises an exception that would do
  the same, returns a course tar with ``../`` or a link, or rows for another student: each is
  that student's ``error: the worker's result was refused`` (BadResult), nothing is unpickled in
  this process and nothing written outside the course;
- ``tcp://`` and a scheduler without ``--tls`` are refused before anything is graded; a worker whose
  kernels would keep the network refuses to grade and nothing is graded.
"""
from __future__ import annotations

import json
import os
import socket
import ssl
import tarfile
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("distributed", reason="the Dask tests need labkit[cluster] (dask, distributed)")

from dask_cluster import Cluster  # noqa: E402
from helpers import liar  # noqa: E402
from helpers.course import SOLUTIONS, Submissions, changed, load_csv, options, read  # noqa: E402
from labkit.course.grading import certs, cluster, wire  # noqa: E402
from labkit.course.grading.autograde import autograde  # noqa: E402
from labkit.errors import GradingError, OptionError  # noqa: E402

pytestmark = [pytest.mark.adversarial, pytest.mark.cluster]

ROOT = os.geteuid() == 0
FULL = {"1_squares": 3, "2_lists": 3}

PROBE = r'''
import glob, os, re, socket
found = set()
for path in glob.glob("/proc/*/cmdline"):
    try:
        words = open(path, "rb").read().decode(errors="replace").split("\0")
    except OSError:
        continue
    found.update(re.findall(r"(?:tls|tcp)://[0-9.]+:[0-9]+", " ".join(words)))
    for i, w in enumerate(words[:-1]):
        if w in ("--tls-key", "--tls-cert", "--tls-ca-file"):
            try:
                print("CERT-READ", words[i + 1], open(words[i + 1]).read()[:40])
            except OSError as e:
                print("CERT-DENIED", type(e).__name__)
print("FOUND", sorted(found))
for address in sorted(found | {"ADDRESS"}):
    host, port = address.split("://")[1].rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
        print("RAW-CONNECTED", address)
    except OSError as e:
        print("RAW-DENIED", address, type(e).__name__)
    try:
        from distributed import Client
        Client(address.replace("tls://", "tcp://"), timeout="3s").close()
        print("DASK-CONNECTED", address)
    except Exception as e:
        print("DASK-DENIED", address, type(e).__name__)

def square(x):
    return x * x
'''


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory):
    """The module's cluster; its members can import ``liar`` (tests/helpers), and an unpickled
    ``liar.Evil`` leaves its mark in ``pwned``."""
    root = tmp_path_factory.mktemp("tlscluster")
    pwned = root / "pwned"
    pwned.mkdir()
    os.chmod(pwned, 0o777)
    tests = str(Path(liar.__file__).parents[1])
    c = Cluster(root / "cluster", env={"PYTHONPATH": tests, "LABKIT_TEST_PWNED": str(pwned)})
    c.pwned = pwned
    try:
        yield c
    finally:
        c.close()


def _client(address, security):
    from distributed import Client

    return Client(address, timeout="5s", security=security, set_as_default=False)


def test_a_client_without_the_runs_certificate_is_refused(tls_cluster, tmp_path):
    plain = tls_cluster.address.replace("tls://", "tcp://")
    stranger = certs.security(certs.write_certs(tmp_path / "other"))  # a valid pair from another CA
    for address, security in ((plain, None), (tls_cluster.address, stranger)):
        with pytest.raises((OSError, TimeoutError)):
            _client(address, security).close()
    host, port = tls_cluster.address[len("tls://"):].rsplit(":", 1)  # TLS that trusts the CA, without a certificate
    ctx = ssl.create_default_context(cafile=str(tls_cluster.tls / "ca.pem"))
    ctx.check_hostname = False
    with socket.create_connection((host, int(port)), timeout=10) as raw, pytest.raises(OSError):
        with ctx.wrap_socket(raw) as conn:
            conn.sendall(b"\0" * 8)
            if not conn.recv(1):
                raise ConnectionError("closed by the scheduler")
    with _client(tls_cluster.address, tls_cluster.security()) as client:  # the run's own certificate works
        assert len(client.scheduler_info()["workers"]) == 2


def test_tcp_and_a_scheduler_without_tls_are_refused_before_grading(tmp_path):
    subs = Submissions(tmp_path / "subs")
    subs.add("ann/1_squares.ipynb", read("solution", "1_squares"))
    tls = certs.write_certs(tmp_path / "certs")
    for scheduler, folder, what in (("tcp://127.0.0.1:8786", tls, "tls://"), ("127.0.0.1:8786", tls, "tls://"),
                                    ("tls://127.0.0.1:8786", None, "needs --tls"),
                                    ("tls://127.0.0.1:8786", tmp_path / "none", "--tls")):
        with pytest.raises(OptionError, match=what):
            autograde(subs.folder, solutions=SOLUTIONS, out=tmp_path / "out", options=options(),
                      log=lambda *_: None, scheduler=scheduler, tls=folder)
    assert not (tmp_path / "out").exists()
    assert oct(tls.stat().st_mode & 0o777) == "0o700"
    assert {oct(p.stat().st_mode & 0o777) for p in tls.iterdir()} == {"0o600"}


def test_a_hostile_kernel_cannot_reach_the_cluster(tls_cluster, tmp_path):
    subs = Submissions(tmp_path / "subs")
    sol = {n: read("solution", n) for n in FULL}
    probe = PROBE.replace("ADDRESS", tls_cluster.address)
    subs.add("a-mallory/1_squares.ipynb", changed(sol["1_squares"], {"square": probe}))
    subs.add("a-mallory/2_lists.ipynb", sol["2_lists"])
    for n in FULL:
        subs.add(f"z-honest/{n}.ipynb", sol[n])
    mode = "basic" if ROOT else "auto"  # basic as root: a network namespace of its own per kernel
    autograde(subs.folder, solutions=SOLUTIONS, out=tmp_path / "out", keep=tmp_path / "course",
              options=options(jobs=1, sandbox=mode, timeout=30), log=lambda *_: None, scheduler=tls_cluster.address,
              tls=tls_cluster.tls)
    rows = load_csv(tmp_path / "out" / "grades.csv")
    for n, points in FULL.items():
        assert float(rows["z-honest", n]["total"]) == points, rows["z-honest", n]
    nb = nbformat.read(tmp_path / "course" / "autograded" / "a-mallory" / "lab" / "1_squares.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert f"RAW-DENIED {tls_cluster.address}" in text and f"DASK-DENIED {tls_cluster.address}" in text, text
    assert "CONNECTED" not in text and "CERT-READ" not in text, text
    assert float(rows["a-mallory", "1_squares"]["total"]) == 3  # its own answer is right: graded as usual
    assert str(tls_cluster.tls) not in (tmp_path / "out" / "logs" / "a-mallory.txt").read_text()


# --------------------------------------------------------------------------- a worker that lies


def test_a_lying_worker_is_refused_and_nothing_runs_here(tls_cluster, tmp_path, monkeypatch):
    monkeypatch.setattr(cluster, "grade_task", liar.grade_task)  # pickled by name: the workers import liar too
    subs = Submissions(tmp_path / "subs")
    kinds = ("pickle", "raise", "dotdot", "link", "other")
    for kind in kinds:
        subs.add(f"{kind}-x/1_squares.ipynb", read("solution", "1_squares"))
    autograde(subs.folder, solutions=SOLUTIONS, out=tmp_path / "out", options=options(jobs=1),
              log=lambda *_: None, scheduler=tls_cluster.address, tls=tls_cluster.tls)
    rows = load_csv(tmp_path / "out" / "grades.csv")
    for kind in kinds:
        status = rows[f"{kind}-x", "1_squares"]["status"]
        assert status.startswith("error:"), (kind, status)
    for kind in ("dotdot", "link", "other"):
        assert "refused" in rows[f"{kind}-x", "1_squares"]["status"], rows[f"{kind}-x", "1_squares"]
    assert not (tls_cluster.pwned / f"pwned-{os.getpid()}").exists()  # never unpickled in the instructor's process
    assert not list(Path("/tmp").glob("evil-dotdot.txt")) and not list(tmp_path.rglob("evil-dotdot.txt"))


def test_the_wire_refuses_what_labkit_did_not_write(tmp_path):
    with pytest.raises(wire.BadResult):
        wire.decode_task(b"\x80\x04pickle", "ann")
    with pytest.raises(wire.BadResult, match="not JSON"):
        wire.decode_result("{no", {"ann"})
    with pytest.raises(wire.BadResult, match="students it was not given"):
        wire.decode_result(json.dumps({"format": 1, "rows": [["bob", "n", "graded", True]], "log": ""}), {"ann"})
    for data, what in ((liar.tar("/etc/evil"), "outside"), (liar.tar("a/../../evil"), "outside"),
                       (liar.tar("x", tarfile.LNKTYPE, "/etc/shadow"), "links"),
                       (liar.tar("d", tarfile.CHRTYPE), "links")):
        with pytest.raises(wire.BadResult, match=what):
            wire.unpack(data, tmp_path / "dest")
        assert not (tmp_path / "dest").exists()
    from labkit.course.grading.records import Row, StudentResult

    result = StudentResult([Row("ann", "n", "graded", False)], None, "é")
    back = wire.decode_result(wire.encode_result(result), {"ann"})
    assert back.rows == [Row("ann", "n", "graded", False)] and back.log == "é"


def test_a_worker_whose_kernels_keep_the_network_refuses_to_grade(tmp_path):
    preload = tmp_path / "no_netns.py"  # a worker on a machine where no network namespace can be made
    preload.write_text("def dask_setup(worker):\n    from labkit.course.sandbox import prepare\n"
                       "    prepare.network_cut = lambda config, timeout=120: False\n")
    c = Cluster(tmp_path / "cluster", workers=1, worker_args=("--preload", str(preload)))
    try:
        subs = Submissions(tmp_path / "subs")
        subs.add("ann/1_squares.ipynb", read("solution", "1_squares"))
        with pytest.raises(GradingError, match="refuses to grade: its kernels would reach the network"):
            autograde(subs.folder, solutions=SOLUTIONS, out=tmp_path / "out", options=options(jobs=1),
                      log=lambda *_: None, scheduler=c.address, tls=c.tls)
    finally:
        c.close()
    assert not (tmp_path / "out").exists()
