"""Kernel users: when labkit grades as root, every kernel runs as a fresh unprivileged uid.

Owns: the reserved uid range (:data:`FIRST_UID`, :data:`COUNT`), taking one uid
of it for one kernel (:class:`KernelUser`: the next uid of a counter kept on
disk, :data:`COUNTER`, so that no uid is ever given to two kernels on this
machine, even across runs and reboots, and a lock file per uid while it is in
use; on leaving, every process of the uid is ended,
:func:`labkit.course.sandbox.reaping.kill_all`), removing
what it left in the machine's world-writable folders (:func:`sweep`) and
becoming it (:func:`drop_to`).

Why: a kernel started by root that only *looks* like ``nobody`` inside
bubblewrap is uid 0 on the host (it reads ``/etc/shadow``; a file it makes
setuid is setuid-root), and kernels that share one uid can reach each other
(``/proc``, connection files, sockets). A uid of its own, with no name, no
group and no files, makes the kernel a stranger to everything on the machine
but its own folder; and "every process of that uid" is exactly what the
kernel left behind, so ending them all is reliable. Why never reuse one: a
kernel outside bubblewrap can leave files of its uid in any world-writable
folder of any file system (``/run/lock``, a shared drop folder, a USB disk), a
setuid copy among them; no sweep finds them all, but a uid that no later
kernel ever gets makes them grant nothing to anyone's kernel.
"""
from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

from labkit.course.sandbox.reaping import kill_all

FIRST_UID = 2_000_000_000  # far above useradd's, systemd's and the usual /etc/subuid ranges
COUNT = 1_000_000
LOCK_DIR = Path("/run/labkit-kernel-uids")  # root's own: who holds which uid
COUNTER = Path("/var/lib/labkit/kernel-uid-next")  # root's own, survives reboots: the next uid's offset
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
    """``with KernelUser((first, count)) as uid:`` the next uid of the range (:data:`COUNTER`: no
    kernel on this machine had it before), named nowhere and running nothing. On leaving: every process of it is ended, its files in
    the world-writable folders removed, the uid released."""

    def __init__(self, uid_range: tuple[int, int], lock_dir: Path = LOCK_DIR, counter: Path = COUNTER):
        self.first, self.count = uid_range
        self.lock_dir, self.counter = lock_dir, counter
        self.uid: int | None = None
        self._fd: int | None = None

    def __enter__(self) -> int:
        self.lock_dir.mkdir(mode=0o700, exist_ok=True)
        if self.lock_dir.stat().st_uid != os.geteuid():
            raise PermissionError(f"{self.lock_dir} is not ours: remove it")
        for _ in range(200):
            uid = self._next_uid()
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
        raise RuntimeError(f"no free kernel uid in {self.first}..{self.first + self.count - 1} after 200 tries")

    def _next_uid(self) -> int:
        """The counter's uid, the counter moved on (under its lock: runs share it)."""
        self.counter.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.counter, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_uid != os.geteuid():
                raise PermissionError(f"{self.counter} is not ours: remove it")
            text = os.pread(fd, 64, 0).decode().strip()
            offset = int(text) if text else 0
            if offset >= self.count:
                raise RuntimeError(f"every kernel uid of {self.first}..{self.first + self.count - 1} has been used "
                                   f"on this machine ({self.counter}): kernel uids are never reused")
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{offset + 1}\n".encode(), 0)
            os.fsync(fd)
            return self.first + offset
        finally:
            os.close(fd)

    def _still_ours(self) -> bool:
        """The lock file of the uid is still the one this holds (a copy of this object in the
        wrapper's :class:`~labkit.course.sandbox.reaping.Guardian` may run after the wrapper
        released the uid, and another kernel may hold it by then)."""
        try:
            return os.stat(self.lock_dir / str(self.uid)).st_ino == os.fstat(self._fd).st_ino
        except OSError:
            return False

    def __exit__(self, *exc) -> None:
        if self.uid is None:
            return
        try:
            if self._still_ours():
                kill_all(self.uid)
                sweep(self.uid)
                os.unlink(self.lock_dir / str(self.uid))
        finally:
            os.close(self._fd)
            self.uid = self._fd = None


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
