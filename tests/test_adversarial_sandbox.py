"""Hostile submissions against the grading sandbox (issue #19, part B): what students' code can
reach on the grading machine.

One class per sandbox mode, graded once (module-scoped, ``labkit autograde`` on the command
line), with the fixture assignment (tests/fixtures/grading):

- ``a1-attacker``, 1_squares: copies ``/usr/bin/id`` into its folder, makes it setuid and opens
  the folder (and, outside bubblewrap, leaves a setuid copy in ``/tmp``); reads ``/etc/shadow``
  and ``/etc/ssl/private``. 2_lists: starts a detached daemon that waits for the next students'
  kernels, reads their connection files and takes them over (every later cell becomes
  ``assert False``); tries the network; in a last cell of its own, a fork storm of sleepers.
- ``a2-stubborn``, 1_squares: ignores the interrupt and loops; 2_lists: hogs memory.
- ``z-honest``: the solutions, graded after the attackers (one student at a time in basic mode,
  so that the daemon is there when the honest kernels start).

While the class is graded a watcher thread, on the host, looks for the setuid copies and runs
them as another local user (an unnamed uid outside labkit's range: root can act as any uid).
"""
from __future__ import annotations

import csv
import io
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import pytest

from helpers.course import SOLUTIONS, Submissions, changed, no_bwrap, read
from labkit.course.sandbox import reaping, uids, wrapper

# alone: survivors() counts every process of the kernel uids on the machine (another test grading
# meanwhile has some), and item 2 times how long labkit waits
pytestmark = [pytest.mark.adversarial, pytest.mark.alone]

ROOT = os.geteuid() == 0
OTHER_UID = 1_999_999_999  # "another local user", outside labkit's kernel range
TIMEOUT = 8
FULL = {"1_squares": 3, "2_lists": 3}  # autograded points of the fixture's notebooks
MARKS = ("advdaemon", "advfork")  # the attackers' processes name themselves so

FILES_ATTACK = '''\
import os, shutil, time
work = os.getcwd()
target = os.path.join(work, "labkit-suid-id")
shutil.copy("/usr/bin/id", target)
os.chmod(target, 0o4755)
for d in (work, os.path.dirname(work)):
    try:
        os.chmod(d, 0o755)
    except OSError as e:
        print("OPEN-FAILED", d, type(e).__name__)
try:
    shutil.copy(target, "/tmp/labkit-adv-suid-{token}")
    os.chmod("/tmp/labkit-adv-suid-{token}", 0o4755)
except OSError as e:
    print("TMP-FAILED", type(e).__name__)
for path in ("/etc/shadow", "/etc/ssl/private"):
    try:
        data = open(path).read() if os.path.isfile(path) else repr(os.listdir(path))
        print("SECRET", "READ", path, data[:300])
    except OSError as e:
        print("SECRET-DENIED", path, type(e).__name__)
time.sleep(4)  # the host's watcher tries the setuid copy meanwhile

def square(x):
    return x * x
'''

DAEMON = r'''
import json, os, sys, time
open("/proc/self/comm", "w").write("advdaemon")
own = open(f"/proc/{os.getppid()}/cmdline", "rb").read().split(b"\0")
own = own[own.index(b"-f") + 1] if b"-f" in own else b""
clients, seen, end = [], set(), time.time() + 90
while time.time() < end:
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or pid in seen:
            continue
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if b"-f" not in argv[:-1] or not argv[argv.index(b"-f") + 1].endswith(b".json"):
            continue  # not a kernel ("-f CONNECTION.json")
        seen.add(pid)
        conn = argv[argv.index(b"-f") + 1]
        if conn == own:
            continue
        try:
            info = json.load(open(conn))
        except (OSError, ValueError):
            continue
        from jupyter_client import BlockingKernelClient
        kc = BlockingKernelClient()
        kc.load_connection_info(info)
        kc.start_channels()
        kc.execute("get_ipython().input_transformers_post.append(lambda lines: ['assert False, 1\\n'])")
        clients.append(kc)
        with open("/tmp/labkit-adv-hit-" + sys.argv[1], "a") as f:
            f.write(conn.decode() + "\n")
    time.sleep(0.02)
'''

PROCESS_ATTACK = '''\
import socket, subprocess, sys
subprocess.Popen([sys.executable, "-c", {daemon!r}, "{token}"], start_new_session=True,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for host, port in (("127.0.0.1", {port}), ("1.1.1.1", 53)):
    try:
        socket.create_connection((host, port), timeout=2).close()
        print("NET", "OK", host)
    except OSError as e:
        print("NET-DENIED", host, type(e).__name__)

def mean(xs):
    return sum(xs) / len(xs)
'''

FORK_STORM = '''\
import os, time
forked = 0
for _ in range(300):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        try:
            open("/proc/self/comm", "w").write("advfork")
            time.sleep(40)
        finally:
            os._exit(0)
    forked += 1
print("FORKED", forked)
'''


def _nb(name: str, **sources):
    return changed(read("solution", name), sources)


def make_class(subs: Path, token: str, port: int) -> None:
    add = Submissions(subs).add
    add("a1-attacker/1_squares.ipynb", _nb("1_squares", square=FILES_ATTACK.format(token=token)))
    nb = _nb("2_lists", mean=PROCESS_ATTACK.format(daemon=DAEMON, token=token, port=port))
    nb.cells.append(nbformat.v4.new_code_cell(FORK_STORM))  # a cell of its own, after the tests
    add("a1-attacker/2_lists.ipynb", nb)
    add("a2-stubborn/1_squares.ipynb", _nb("1_squares", add="import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                           "def add(a, b):\n    return a + b\n\nwhile True:\n    pass"))
    add("a2-stubborn/2_lists.ipynb", _nb("2_lists", mean="def mean(xs):\n    return sum(xs) / len(xs)\n\nhog = []\n"
                                         "while True:\n    hog.append(bytearray(50 << 20))"))
    for name in FULL:
        add(f"z-honest/{name}.ipynb", _nb(name))


class Watcher(threading.Thread):
    """On the host, while the class is graded: every setuid copy the attacker made, its owner and
    mode, and what happens when another local user runs it."""

    def __init__(self, folders: list[Path], tmp_copy: Path):
        super().__init__(daemon=True)
        self.folders, self.tmp_copy = folders, tmp_copy
        self.found: dict[str, tuple[int, int, str]] = {}
        self.stop = threading.Event()

    def candidates(self):
        if self.tmp_copy.exists():
            yield str(self.tmp_copy)
        for folder in self.folders:
            for dirpath, _, filenames in os.walk(folder):
                if "labkit-suid-id" in filenames:
                    yield os.path.join(dirpath, "labkit-suid-id")

    def run(self):
        while not self.stop.is_set():
            for path in self.candidates():
                if path in self.found:
                    continue
                try:
                    st = os.lstat(path)
                    if not st.st_mode & 0o4000:
                        continue  # copied, not yet made setuid
                    time.sleep(0.2)
                    proc = subprocess.run([path, "-u"], user=OTHER_UID, group=OTHER_UID, extra_groups=[],
                                          capture_output=True, text=True, timeout=10, cwd="/")
                    outcome = f"ran: euid {proc.stdout.strip()}"
                except OSError as e:
                    outcome = f"denied: {type(e).__name__}"
                    if not os.path.exists(path):
                        continue
                except subprocess.SubprocessError as e:
                    outcome = f"error: {e}"
                self.found[path] = (st.st_uid, st.st_mode, outcome)
            time.sleep(0.05)


def survivors() -> list[str]:
    """The attackers' processes still alive, and any process of a kernel uid."""
    out = []
    first, count = uids.FIRST_UID, uids.COUNT
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            comm = Path(entry.path, "comm").read_text().strip()
            status = Path(entry.path, "status").read_text()
        except OSError:
            continue
        uid_line = next((line.split()[1:] for line in status.splitlines() if line.startswith("Uid:")), [])
        if comm in MARKS or any(first <= int(u) < first + count for u in uid_line):
            out.append(f"{entry.name} {comm} uids {uid_line}")
    return out


@pytest.fixture(scope="module", params=["bwrap", "basic"])
def attacked(request):
    mode = request.param
    if not ROOT:
        pytest.skip("the attacks are run as root (as CI grades); another local user is played by an unnamed uid")
    if mode == "bwrap" and no_bwrap():
        pytest.skip(f"bubblewrap does not work here: {no_bwrap()}")
    base = Path(tempfile.mkdtemp(prefix="adv-", dir="/tmp"))  # short: socket paths
    os.chmod(base, 0o711)
    token = secrets.token_hex(6)
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    make_class(base / "subs", token, server.getsockname()[1])
    (base / "runs").mkdir(mode=0o711)
    tmp_copy = Path(f"/tmp/labkit-adv-suid-{token}")
    watcher = Watcher([base / "runs"], tmp_copy)
    watcher.start()
    env = dict(os.environ, TMPDIR=str(base / "runs"),
               PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "labkit.cli", "autograde", str(base / "subs"), "--solutions", str(SOLUTIONS),
             "--out", str(base / "out"), "--keep", str(base / "course"), "--timeout", str(TIMEOUT),
             "--memory", "1024", "--cpu-limit", "60", "--jobs", "1" if mode == "basic" else "2", "--sandbox", mode],
            cwd=base, env=env, capture_output=True, text=True, timeout=900)
    finally:
        watcher.stop.set()
        watcher.join()
    accepted = 0
    try:
        while True:
            server.accept()[0].close()
            accepted += 1
    except OSError:
        server.close()
    alive = survivors()
    left = sorted(str(p) for p in Path("/tmp").glob(f"labkit-adv-*{token}*"))
    yield {"mode": mode, "proc": proc, "base": base, "found": watcher.found, "alive": alive, "left": left,
           "accepted": accepted, "tmp_copy": str(tmp_copy),
           "rows": {(r["student"], r["notebook"]): r for r in csv.DictReader(io.StringIO(
               (base / "out" / "grades.csv").read_text()))} if (base / "out" / "grades.csv").exists() else {}}
    for line in alive:  # what the old code let survive: end it
        try:
            os.kill(int(line.split()[0]), 9)
        except OSError:
            pass
    for path in left:
        Path(path).unlink(missing_ok=True)
    shutil.rmtree(base, ignore_errors=True)


def autograded(attacked, student: str, name: str) -> str:
    path = attacked["base"] / "course" / "autograded" / student / "lab" / f"{name}.ipynb"
    return path.read_text() if path.exists() else ""


def feedback(attacked, student: str, name: str) -> str:
    path = attacked["base"] / "out" / "feedback" / student / f"{name}.html"
    return path.read_text() if path.exists() else ""


def test_the_class_is_graded(attacked):
    proc = attacked["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "fresh unprivileged uid" in proc.stdout or attacked["mode"] == "bwrap", proc.stdout


def test_an_honest_student_graded_after_the_attackers_gets_full_marks(attacked):
    """Item 4: the detached daemon cannot take over the next students' kernels."""
    rows = attacked["rows"]
    for name, points in FULL.items():
        row = rows["z-honest", name]
        assert row["status"].startswith("graded"), row
        assert float(row["total"]) == points, row
    assert not any("labkit-adv-hit" in p for p in attacked["left"]), attacked["left"]


def test_a_setuid_file_made_by_the_kernel_is_never_root_and_out_of_others_reach(attacked):
    """Item 2: on the host, the kernel's setuid copy of id belongs to its own unprivileged uid; in
    its folder no other local user reaches it; the copy left in /tmp (basic mode) is removed."""
    found = attacked["found"]
    assert found, "the watcher saw no setuid copy (the attack did not run?)"
    for path, (owner, mode, outcome) in found.items():
        assert owner != 0 and "euid 0" not in outcome, (path, owner, oct(mode), outcome)
        assert uids.FIRST_UID <= owner < uids.FIRST_UID + uids.COUNT, (path, owner)
        if path != attacked["tmp_copy"]:
            assert outcome.startswith("denied"), (path, outcome)
    assert attacked["tmp_copy"] not in attacked["left"]
    row = attacked["rows"]["a1-attacker", "1_squares"]
    assert row["status"].startswith("graded") and float(row["total"]) == FULL["1_squares"], row


def test_root_owned_files_stay_unreadable(attacked):
    """Item 3: /etc/shadow and /etc/ssl/private are not readable by the kernel; nothing of them in
    the autograded notebook or the feedback page."""
    text = autograded(attacked, "a1-attacker", "1_squares")
    page = feedback(attacked, "a1-attacker", "1_squares")
    assert "SECRET-DENIED /etc/shadow" in text, text[-2000:]
    assert "SECRET READ" not in text and "SECRET READ" not in page
    shadow = Path("/etc/shadow").read_text().splitlines()[0]
    assert shadow not in text and shadow not in page


def test_an_interrupt_ignoring_kernel_is_reported_as_a_timeout(attacked):
    """Item 10: the documented status, not 'killed by SIGTERM'."""
    row = attacked["rows"]["a2-stubborn", "1_squares"]
    assert row["status"].startswith("timeout: the kernel did not respond to an interrupt"), row
    assert float(row["total"]) == 0, row


def test_a_memory_hog_hits_the_limit_and_the_rest_is_graded(attacked):
    row = attacked["rows"]["a2-stubborn", "2_lists"]
    assert row["status"].startswith("memory limit"), row
    assert float(row["test_largest"]) == 1, row


def test_no_process_survives_its_notebook(attacked):
    """The detached daemon and the fork storm: nothing of theirs, nothing of any kernel uid, left."""
    assert attacked["alive"] == []
    assert attacked["left"] == []  # nothing of the kernels' in /tmp either
    row = attacked["rows"]["a1-attacker", "2_lists"]
    assert row["status"].startswith("graded") and float(row["total"]) == FULL["2_lists"], row


def test_the_fork_storm_is_capped(attacked):
    text = autograded(attacked, "a1-attacker", "2_lists")
    forked = re.search(r"FORKED (\d+)", text)
    assert forked and int(forked.group(1)) < wrapper.MAX_PROCESSES, text[-1500:]


def test_no_network_in_bubblewrap(attacked):
    text = autograded(attacked, "a1-attacker", "2_lists")
    if attacked["mode"] != "bwrap":
        pytest.skip("basic mode does not cut the network (docs/instructors.md, 'What is isolated')")
    assert "NET-DENIED 127.0.0.1" in text and "NET-DENIED 1.1.1.1" in text, text[-1500:]
    assert "NET OK" not in text and attacked["accepted"] == 0


THREAD_AFTER_LEADER = '''
import ctypes, threading, time
threading.Thread(target=time.sleep, args=(60,)).start()
time.sleep(0.2)
ctypes.CDLL(None).pthread_exit(None)  # the leader is now a zombie; its other thread runs on
'''


@pytest.mark.skipif(not ROOT, reason="kernel uids are taken only as root")
def test_a_zombie_does_not_hold_a_kernel_uid_but_a_thread_behind_a_dead_leader_does():
    """kill_all ends a uid's processes; a zombie (dead, waiting for its parent to reap it) is not one
    of them, while a process whose main thread exited but whose other threads run on still is."""
    uid = OTHER_UID - 1
    zombie = subprocess.Popen(["true"], user=uid, group=uid, extra_groups=[], cwd="/")
    deadline = time.monotonic() + 10
    while "Z" not in Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    try:
        assert zombie.pid not in reaping.processes_of(uid)
    finally:
        zombie.wait()
    python = "/usr/bin/python3"  # one that another uid may run (this environment's may sit under /root)
    if not os.access(python, os.X_OK):
        pytest.skip(f"no {python} to run as another uid")
    runner = subprocess.Popen([python, "-c", THREAD_AFTER_LEADER], user=uid, group=uid, extra_groups=[], cwd="/")
    try:
        deadline = time.monotonic() + 10
        while "State:\tZ" not in Path(f"/proc/{runner.pid}/status").read_text():
            assert time.monotonic() < deadline, "the leader did not exit"
            time.sleep(0.02)
        assert reaping.processes_of(uid) == [runner.pid]
        assert reaping.kill_all(uid)
        assert runner.wait(timeout=10) != 0  # killed, not finished
    finally:
        runner.kill()
        runner.wait()


def grade_alone(student: str, notebooks: dict) -> tuple[Path, subprocess.CompletedProcess]:
    """(base folder, finished run): ``student`` alone, graded on the command line in basic mode."""
    base = Path(tempfile.mkdtemp(prefix="adv-", dir="/tmp"))
    os.chmod(base, 0o711)
    (base / "subs" / student).mkdir(parents=True)
    for name, nb in notebooks.items():
        nbformat.write(nb, base / "subs" / student / f"{name}.ipynb")
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    proc = subprocess.run(
        [sys.executable, "-m", "labkit.cli", "autograde", str(base / "subs"), "--solutions", str(SOLUTIONS),
         "--out", str(base / "out"), "--keep", str(base / "course"), "--timeout", str(TIMEOUT), "--memory", "1024",
         "--cpu-limit", "60", "--sandbox", "basic"], cwd=base, env=env, capture_output=True, text=True, timeout=600)
    return base, proc


STAYS = '''\
import os, signal, subprocess, sys
kernel = get_ipython().kernel
signal.signal(signal.SIGTERM, signal.SIG_IGN)      # nbgrader's SIGTERM (through the wrapper)
kernel.shell_handlers["shutdown_request"] = kernel.control_handlers["shutdown_request"] = lambda *a: None
subprocess.Popen([sys.executable, "-c", "import time; open('/proc/self/comm', 'w').write('advstay'); time.sleep(240)"],
                 start_new_session=True, stdin=subprocess.DEVNULL)   # keeps nbgrader's stdout and stderr
print("KERNEL-UID", os.getuid())

def square(x):
    return x * x
'''


@pytest.mark.slow  # grades with the command line in a subprocess
@pytest.mark.skipif(not ROOT, reason="kernel uids are taken only as root")
def test_item2_a_kernel_that_ignores_its_shutdown_leaves_nothing_behind():
    """Issue #31 item 2 (basic mode): the kernel ignores nbgrader's shutdown request and SIGTERM,
    so jupyter_client SIGKILLs the wrapper's process group; its detached child (of the kernel's
    uid, holding nbgrader's stdout and stderr, sleeping 240 s) is ended, the uid's lock released,
    and labkit does not wait for it."""
    start, base = time.monotonic(), None
    try:
        base, proc = grade_alone("stayer", {"1_squares": _nb("1_squares", square=STAYS), "2_lists": _nb("2_lists")})
        took = time.monotonic() - start
        alive = [line for line in survivors() if " advstay " in line]
        text = (base / "course" / "autograded" / "stayer" / "lab" / "1_squares.ipynb").read_text()
        uid = re.search(r"KERNEL-UID (\d+)", text).group(1)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert alive == [], alive
        assert not (uids.LOCK_DIR / uid).exists(), f"the lock of kernel uid {uid} stays"
        assert took < 150, f"labkit waited {took:.0f} s for the kernel's child"
    finally:
        for line in survivors():
            if " advstay " in line:
                os.kill(int(line.split()[0]), 9)
        if base is not None:
            shutil.rmtree(base, ignore_errors=True)


@pytest.mark.skipif(not ROOT, reason="kernel uids are taken only as root")
def test_item5_a_kernel_uid_is_never_given_twice(tmp_path):
    """Issue #31 item 5: a kernel's setuid copy in a world-writable place the sweep does not
    cover (/run/lock here) survives; so no later kernel may ever get that uid. In a range of 3
    uids, three kernels get three uids, and a fourth is refused instead of reusing one."""
    first = OTHER_UID - 100
    uid_range = (first, 3)
    copies, taken = [], []
    try:
        for _ in range(3):
            with uids.KernelUser(uid_range, lock_dir=tmp_path / "locks", counter=tmp_path / "var" / "next") as uid:
                taken.append(uid)
                copy = Path(f"/run/lock/labkit-adv-suid-{uid}")
                subprocess.run(["/bin/sh", "-c", f"cp /usr/bin/id {copy} && chmod 4755 {copy}"], user=uid, group=uid,
                               extra_groups=[], check=True, cwd="/")
                copies.append(copy)
            assert copy.exists() and copy.stat().st_uid == uid  # what the sweep leaves
        assert sorted(taken) == [first, first + 1, first + 2], taken
        with pytest.raises(RuntimeError, match="never reused"):
            with uids.KernelUser(uid_range, lock_dir=tmp_path / "locks", counter=tmp_path / "var" / "next"):
                pass
    finally:
        for copy in copies:
            copy.unlink(missing_ok=True)


SNOOP = '''\
import os
seen = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        seen[pid] = (os.stat(f"/proc/{pid}").st_uid, open(f"/proc/{pid}/cmdline", "rb").read())
    except OSError:
        pass
others = [cmd for uid, cmd in seen.values() if uid != os.getuid()]
print("OTHERS", len(others), "NBGRADER", sum(b"nbgrader" in cmd for cmd in others))

def square(x):
    return x * x
'''


@pytest.mark.slow  # grades with the command line in a subprocess
@pytest.mark.skipif(not ROOT, reason="kernel uids are taken only as root")
def test_item3_a_basic_mode_kernel_sees_no_other_process():
    """Issue #31 item 3 (basic mode): the kernel lists /proc and reads every command line it can;
    where a private /proc can be mounted it sees only its own uid's processes (nbgrader's, with
    the run's folders, and the wrappers' are hidden)."""
    base, proc = grade_alone("snoop", {"1_squares": _nb("1_squares", square=SNOOP)})
    try:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        text = (base / "course" / "autograded" / "snoop" / "lab" / "1_squares.ipynb").read_text()
        assert "OTHERS 0 NBGRADER 0" in text, re.findall(r"OTHERS \d+ NBGRADER \d+", text)
    finally:
        shutil.rmtree(base, ignore_errors=True)
