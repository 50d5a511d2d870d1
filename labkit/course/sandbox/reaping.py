"""Ending processes: every process of a kernel's uid, every descendant of the wrapper.

Owns: :func:`processes_of` (the live processes of a uid, zombies left out),
:func:`kill_all` (SIGKILL every process of a uid, sent as that uid, until none is
left), :func:`become_subreaper` and :func:`end_descendants` (the wrapper kills
what its kernel left, also not as root, where the kernel has no uid of its own), :class:`Guardian`
(a cleanup that runs even when the wrapper is SIGKILLed).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path


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


def become_subreaper() -> None:
    """Orphans of this process's descendants (a daemon's double fork) become its children, so
    that :func:`end_descendants` finds them (prctl PR_SET_CHILD_SUBREAPER; Linux)."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def end_descendants(rounds: int = 200, spare: tuple[int, ...] = ()) -> int:
    """SIGKILL this process's children (but ``spare``), reap them, and again for the orphans that
    come back to it as a subreaper, until none is left. Returns how many were ended."""
    me, ended = str(os.getpid()), 0
    for _ in range(rounds):
        children = []
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    stat = Path(f"/proc/{entry.name}/stat").read_text()
                except OSError:
                    continue
                if stat.rsplit(")", 1)[1].split()[1] == me and int(entry.name) not in spare:  # field 4: parent
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


class Guardian:
    """A process of this one's, in a session of its own, that runs ``cleanup`` when this process
    dies without calling :meth:`done` first.

    jupyter_client ends a kernel that ignores the shutdown request and SIGTERM with SIGKILL to
    the wrapper's whole process group, before the wrapper's own cleanup: the guardian is outside
    that group (``setsid``), holds none of nbgrader's pipes (its 0, 1, 2 are /dev/null) and
    waits on a pipe whose other end only this process holds, so it learns of the death at once."""

    def __init__(self, cleanup):
        read, self._write = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the guardian
            code = 0
            try:
                os.close(self._write)
                os.setsid()
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                if os.read(read, 4) != b"done":  # EOF: the wrapper died before its own cleanup
                    cleanup()
            except BaseException:  # noqa: BLE001 - a child of a fork must never return
                code = 1
            finally:
                os._exit(code)
        os.close(read)

    def done(self) -> None:
        """The cleanup was done here: the guardian leaves without doing anything."""
        try:
            os.write(self._write, b"done")
        except OSError:  # it is gone already
            pass
        os.close(self._write)
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
