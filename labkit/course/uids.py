"""Kernel users: when labkit grades as root, every kernel runs as a fresh unprivileged uid.

Owns: the reserved uid range (:data:`FIRST_UID`, :data:`COUNT`), taking one uid
of it for one kernel (:class:`KernelUser`: a lock file per uid, so that two
kernels, even of two runs, never share a uid), ending every process of that
uid (:func:`kill_all`) and removing what it left in the machine's
world-writable folders (:func:`sweep`).

Why: a kernel started by root that only *looks* like ``nobody`` inside
bubblewrap is uid 0 on the host (it reads ``/etc/shadow``; a file it makes
setuid is setuid-root), and kernels that share one uid can reach each other
(``/proc``, connection files, sockets). A uid of its own, with no name, no
group and no files, makes the kernel a stranger to everything on the machine
but its own folder; and "every process of that uid" is exactly what the
kernel left behind, so ending them all is reliable.
"""
from __future__ import annotations

import ctypes
import fcntl
import os
import random
import shutil
import subprocess
import time
from pathlib import Path

FIRST_UID = 2_000_000_000  # far above useradd's, systemd's and the usual /etc/subuid ranges
COUNT = 1_000_000
LOCK_DIR = Path("/run/labkit-kernel-uids")  # root's own: who holds which uid
WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm")  # where a kernel outside bubblewrap can leave files


def reserved_range() -> tuple[int, int] | None:
    """(first uid, count) kernels take their uid from when this process is root, else None."""
    return (FIRST_UID, COUNT) if os.geteuid() == 0 else None


def _named(uid: int) -> bool:
    import grp
    import pwd

    for lookup in (pwd.getpwuid, grp.getgrgid):
        try:
            lookup(uid)
            return True
        except KeyError:
            pass
    return False


class KernelUser:
    """``with KernelUser((first, count)) as uid:`` a uid of the range that no other kernel holds,
    named nowhere and running nothing. On leaving: every process of it is ended, its files in
    the world-writable folders removed, the uid released."""

    def __init__(self, uid_range: tuple[int, int], lock_dir: Path = LOCK_DIR):
        self.first, self.count = uid_range
        self.lock_dir = lock_dir
        self.uid: int | None = None
        self._fd: int | None = None

    def __enter__(self) -> int:
        self.lock_dir.mkdir(mode=0o700, exist_ok=True)
        if self.lock_dir.stat().st_uid != os.geteuid():
            raise PermissionError(f"{self.lock_dir} is not ours: remove it")
        rng = random.SystemRandom()
        for _ in range(200):
            uid = self.first + rng.randrange(self.count)
            if _named(uid):
                continue
            path = self.lock_dir / str(uid)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            if not path.exists() or os.fstat(fd).st_ino != path.stat().st_ino:  # released and removed meanwhile
                os.close(fd)
                continue
            if not kill_all(uid):  # a leftover of a run that was killed itself: not usable
                os.close(fd)
                continue
            self.uid, self._fd = uid, fd
            return uid
        raise RuntimeError(f"no free kernel uid in {self.first}..{self.first + self.count - 1}")

    def __exit__(self, *exc) -> None:
        if self.uid is None:
            return
        try:
            kill_all(self.uid)
            sweep(self.uid)
        finally:
            try:
                os.unlink(self.lock_dir / str(self.uid))
            except OSError:
                pass
            os.close(self._fd)
            self.uid = self._fd = None


def processes_of(uid: int) -> list[int]:
    """Process ids whose real, effective, saved or file-system uid is ``uid``, zombies left out:
    a zombie runs nothing and cannot be killed, only reaped by its parent (bwrap's intermediate
    process, an orphan, waits for the machine's init to reap it, which some inits do slowly)."""
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status") as f:
                zombie = False
                for line in f:
                    if line.startswith("State:"):  # comes before Uid:
                        zombie = line.split()[1] in ("Z", "X")
                    elif line.startswith("Uid:"):
                        if str(uid) in line.split()[1:] and not (zombie and _all_dead(entry.name)):
                            pids.append(int(entry.name))
                        break
        except OSError:  # ended meanwhile
            pass
    return pids


def _all_dead(pid: str) -> bool:
    """Every thread of a process is a zombie (a leader that called pthread_exit is a zombie while
    its other threads run on: that process is alive)."""
    try:
        for task in os.scandir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task.name}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                    return False
    except OSError:
        pass
    return True


def kill_all(uid: int, rounds: int = 100) -> bool:
    """SIGKILL every process of ``uid``; True once none is left.

    ``kill(-1, SIGKILL)`` sent *as* ``uid`` reaches exactly the processes that
    uid may signal, its own, in every PID namespace, in one sweep the kernel
    does not let a fork escape; rounds repeat it until ``/proc`` shows none."""
    kill = shutil.which("kill") or "/bin/kill"
    for _ in range(rounds):
        if not processes_of(uid):
            return True
        # "-9 -1": procps-ng 4.0's kill takes "-s KILL -1" (and "-s KILL -- -1") for a usage error
        subprocess.run([kill, "-9", "-1"], user=uid, group=uid, extra_groups=[],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        time.sleep(0.02)
    return not processes_of(uid)


def sweep(uid: int, folders=WORLD_WRITABLE) -> list[str]:
    """Remove what ``uid`` owns at the top of the world-writable folders (basic mode's kernels
    can write there). Call after :func:`kill_all`. Returns the paths removed."""
    removed = []
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
                if st.st_uid != uid:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)  # never follows links
                else:
                    os.unlink(entry.path)
                removed.append(entry.path)
            except OSError:
                pass
    return removed


def drop_to(uid: int, gid: int) -> None:
    """In a child before exec: become ``uid``/``gid`` with no supplementary groups."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)



def become_subreaper() -> None:
    """Orphans of this process's descendants (a daemon's double fork) become its children, so
    that :func:`end_descendants` finds them (prctl PR_SET_CHILD_SUBREAPER; Linux)."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def end_descendants(rounds: int = 200) -> int:
    """SIGKILL this process's children, reap them, and again for the orphans that come back to
    it as a subreaper, until none is left. Returns how many were ended."""
    me, ended = str(os.getpid()), 0
    for _ in range(rounds):
        children = []
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    stat = Path(f"/proc/{entry.name}/stat").read_text()
                except OSError:
                    continue
                if stat.rsplit(")", 1)[1].split()[1] == me:  # field 4: the parent's pid
                    children.append(int(entry.name))
        if not children:
            return ended
        for pid in children:
            try:
                os.kill(pid, 9)
                ended += 1
            except OSError:
                pass
        time.sleep(0.01)
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass
    return ended


# --------------------------------------------------------------------------- what the kernel's uid can reach

_CLONE_NEWNS, _MS_NOSUID, _MS_NODEV, _MS_BIND, _MS_REC, _MS_PRIVATE = 0x20000, 2, 4, 4096, 16384, 1 << 18


def _blocking(path: str) -> str | None:
    """The topmost folder above ``path`` that other users may not pass through (no o+x), or None."""
    parts = Path(path).parts
    for i in range(1, len(parts)):
        folder = os.path.join(*parts[:i])
        if not os.stat(folder).st_mode & 0o001:
            return folder
    return None


class View:
    """The folders a kernel's uid must reach although their path crosses a folder it may not enter
    (a Python environment under ``/root``; the run's private folder): made before the fork, applied
    in the child as root (:meth:`apply`), before dropping to the kernel's uid.

    In a private mount namespace of the child, each such closed folder is covered by an empty
    tmpfs (``nosuid``, ``nodev``) into which only the needed folders are bound back (from file
    descriptors opened before the cover). Nothing changes on the host; the kernel sees nothing
    else there."""

    def __init__(self, paths):
        self.covers: list[str] = []
        self.binds: list[str] = []
        for path in sorted({os.path.realpath(p) for p in paths if os.path.exists(p)}):
            cover = _blocking(path)
            if cover is None or any(path.startswith(b.rstrip("/") + "/") for b in self.binds):
                continue  # reachable already, or inside a folder bound back
            if cover not in self.covers:
                self.covers.append(cover)
            self.binds.append(path)

    def apply(self, libc) -> None:
        """In the child, as root: private mount namespace, covers, binds. OSError when this
        machine allows no mount namespace (basic mode in a container, for instance)."""
        if not self.covers:
            return

        def check(rc, what):
            if rc != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"{what}: {os.strerror(err)}")

        check(libc.unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        check(libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "mount --make-rprivate /")
        os.umask(0o022)
        fds = [os.open(path, os.O_PATH | os.O_CLOEXEC) for path in self.binds]  # in this namespace
        for cover in self.covers:
            check(libc.mount(b"tmpfs", cover.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV, b"mode=0755,size=1m"),
                  f"tmpfs on {cover}")
        for fd, path in zip(fds, self.binds):
            os.makedirs(path, exist_ok=True)  # inside a cover's tmpfs
            check(libc.mount(f"/proc/self/fd/{fd}".encode(), path.encode(), None, _MS_BIND | _MS_REC, None),
                  f"bind {path}")
