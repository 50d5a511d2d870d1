"""`labkit autograde --scheduler`: grading on a real Dask cluster on 127.0.0.1 (labkit/course/grading/cluster.py).

A scheduler and two workers are started as separate processes (``dask
scheduler``, ``dask worker``), each worker in its own empty working folder with
its own TMPDIR (dashboards on 127.0.0.1, free ports); a made-up class of the tiny fixture assignment is graded
through them and its grades.csv compared byte for byte with a local run. A
worker killed while it grades a student must leave every student graded once.
"""
from __future__ import annotations

import copy
import os
import signal
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed", reason="the Dask tests need labkit[cluster] (dask, distributed)")

from labkit.course.grading import certs, cluster  # noqa: E402
from labkit.course.grading.wire import BadResult  # noqa: E402
from labkit.course.grading.autograde import autograde  # noqa: E402
from labkit.errors import GradingError  # noqa: E402
from dask_cluster import Cluster  # noqa: E402
from helpers.course import SOLUTIONS, Submissions, changed, load_csv, options, read  # noqa: E402

OPTIONS = options(jobs=1)


def make_class(root: Path, slow: float = 0.0) -> Path:
    """Six students: right, the untouched student version, one wrong answer, one notebook
    missing, invalid JSON, an empty folder. ``slow``: seconds the right students' first
    notebook sleeps (so that a worker can be killed in the middle of one)."""
    subs = Submissions(root / "subs")
    sol = {n: read("solution", n) for n in ("1_squares", "2_lists")}
    for who in ("ann", "ben"):
        nb = copy.deepcopy(sol["1_squares"])
        if slow:
            nb.cells[0].source = f"import time\ntime.sleep({slow})\n" + nb.cells[0].source
        subs.add(f"{who}/1_squares.ipynb", nb)
        subs.add(f"{who}/2_lists.ipynb", sol["2_lists"])
    for n in ("1_squares", "2_lists"):
        subs.add(f"cy/{n}.ipynb", read("student", n))
    subs.add("dee/1_squares.ipynb", changed(sol["1_squares"], {"square": "def square(x):\n    return x + x"}))
    subs.add("dee/2_lists.ipynb", sol["2_lists"])
    subs.add("eve/2_lists.ipynb", sol["2_lists"])
    subs.add("fay/1_squares.ipynb", "{ not json")
    subs.empty("gus")
    return subs.folder


@pytest.fixture(scope="module")
def local_class(tmp_path_factory):
    """The made-up class (its right answers sleep 3 s, so that a worker can be killed in the middle
    of one) and its grades.csv from a local run."""
    root = tmp_path_factory.mktemp("class")
    subs = make_class(root, slow=3)
    autograde(subs, solutions=SOLUTIONS, out=root / "local", options=OPTIONS, log=lambda *_: None)
    return subs, (root / "local" / "grades.csv").read_bytes()


@pytest.fixture
def dask_cluster(tmp_path):
    c = Cluster(tmp_path / "cluster")
    try:
        yield c
    finally:
        c.close()


def test_pack_unpack_roundtrip_and_no_escape(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x.txt").write_text("x")
    (tmp_path / "a" / "y.db").write_bytes(b"\0\1")
    data = cluster.pack(tmp_path / "a")
    assert cluster.pack(tmp_path / "a") == data  # the same folder, the same bytes
    cluster.unpack(data, tmp_path / "c")
    assert (tmp_path / "c" / "b" / "x.txt").read_text() == "x" and (tmp_path / "c" / "y.db").read_bytes() == b"\0\1"
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("../evil.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"e"))
    with pytest.raises(BadResult, match="outside the course"):
        cluster.unpack(buf.getvalue(), tmp_path / "d")
    assert not (tmp_path / "evil.txt").exists()


def test_unreachable_scheduler_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", "2s")
    subs = make_class(tmp_path)
    with pytest.raises(ValueError, match="cannot reach a Dask scheduler"):
        autograde(subs, solutions=SOLUTIONS, out=tmp_path / "out", options=OPTIONS, log=lambda *_: None,
                  scheduler="tls://127.0.0.1:9", tls=certs.write_certs(tmp_path / "certs"))  # nothing listens
    assert not (tmp_path / "out").exists()


def test_cluster_grades_csv_is_byte_for_byte_the_local_one(local_class, dask_cluster, tmp_path):
    subs, local = local_class
    lines = []
    t0 = time.perf_counter()
    autograde(subs, solutions=SOLUTIONS, out=tmp_path / "dask", options=OPTIONS,
              log=lambda line: lines.append(f"{time.perf_counter() - t0:6.1f} {line}"), scheduler=dask_cluster.address,
              tls=dask_cluster.tls)
    print("\n".join(lines))
    assert (tmp_path / "dask" / "grades.csv").read_bytes() == local
    rows = load_csv(tmp_path / "dask" / "grades.csv")
    assert float(rows["ann", "1_squares"]["total"]) == 3 and rows["ann", "1_squares"]["status"].startswith("graded")
    assert float(rows["dee", "1_squares"]["total"]) == 2  # square wrong, add right
    assert rows["eve", "1_squares"]["status"] == "missing"
    assert rows["fay", "1_squares"]["status"].startswith("invalid notebook")
    assert sorted((tmp_path / "dask" / "feedback").iterdir()) != []
    assert (tmp_path / "dask" / "feedback" / "ann" / "lab" / "1_squares.html").is_file() \
        or any((tmp_path / "dask" / "feedback" / "ann").rglob("1_squares.html"))
    assert any("dashboard" in line for line in lines)
    logs = (tmp_path / "dask" / "logs" / "ann.txt").read_text()
    assert "isolation:" in logs and "worker tls://127.0.0.1:" in logs  # which worker, in which sandbox
    # the workers graded in their own folders: nothing of the class left in their working folders
    for k in range(2):
        assert not any(p.suffix == ".ipynb" for p in (dask_cluster.root / f"worker{k}").rglob("*"))


def test_a_worker_killed_mid_student_leaves_every_student_graded_once(local_class, dask_cluster, tmp_path):
    subs, local = local_class
    killed = []

    def killer():  # worker 0, as soon as it is in the middle of a student
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any(p.is_dir() for p in dask_cluster.tmpdirs[0].glob("labkit-worker-*/courses/*")):
                time.sleep(1)
                dask_cluster.kill(0)
                killed.append(True)
                return
            time.sleep(0.1)

    thread = threading.Thread(target=killer)
    thread.start()
    lines = []
    try:
        autograde(subs, solutions=SOLUTIONS, out=tmp_path / "dask", options=OPTIONS, log=lines.append,
                  scheduler=dask_cluster.address, tls=dask_cluster.tls)
    finally:
        thread.join()
    assert killed, "worker 0 never started a student"
    text = (tmp_path / "dask" / "grades.csv").read_text()
    body = text.splitlines()[1:]
    assert len(body) == len(set(body))  # no student twice
    assert (tmp_path / "dask" / "grades.csv").read_bytes() == local
    graded_lines = [line for line in lines if line.startswith("  ")]
    students = sorted(line.split(":")[0].strip() for line in graded_lines)
    assert students == sorted({p.name for p in subs.iterdir()})  # every student reported, once


def test_the_scheduler_going_away_is_a_clear_error_and_nothing_is_written(local_class, dask_cluster, tmp_path):
    subs, _ = local_class

    def stop_scheduler():  # as soon as a worker is in the middle of a student
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any(p.is_dir() for t in dask_cluster.tmpdirs for p in t.glob("labkit-worker-*/courses/*")):
                os.killpg(dask_cluster.procs[0].pid, signal.SIGKILL)
                return
            time.sleep(0.1)

    thread = threading.Thread(target=stop_scheduler)
    thread.start()
    try:
        with pytest.raises(GradingError, match="Dask scheduler at .* (went away|stopped answering)"):
            autograde(subs, solutions=SOLUTIONS, out=tmp_path / "out", options=OPTIONS, log=lambda *_: None,
                      scheduler=dask_cluster.address, tls=dask_cluster.tls)
    finally:
        thread.join()
    assert not (tmp_path / "out").exists()  # nothing written, not even half
