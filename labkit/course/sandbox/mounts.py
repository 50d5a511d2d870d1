"""The mount view: what a kernel's own uid must reach although its path crosses a folder it may not enter.

Owns: :class:`View` (made before the fork, applied in the child as root, before it
drops to the kernel's uid), and in basic mode a private ``/proc`` that shows the kernel
its own uid's processes only. Used by :mod:`labkit.course.sandbox.wrapper` as root.
"""
from __future__ import annotations

import ctypes
import os
from pathlib import Path

_CLONE_NEWNS, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_BIND, _MS_REC, _MS_PRIVATE = 0x20000, 2, 4, 8, 4096, 16384, 1 << 18


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
    else there.

    ``hide_processes`` (basic mode): in that namespace ``/proc`` is a new instance mounted with
    ``hidepid=2``, where the kernel's uid sees its own processes only, not the command lines
    (the run's folders, other kernels' connection files) of nbgrader, the wrappers or other
    kernels. Where the machine allows no mount namespace or no such mount this part is left out
    (the covers are not: they raise)."""

    def __init__(self, paths, hide_processes: bool = False):
        self.hide_processes = hide_processes
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
            if self.hide_processes and libc.unshare(_CLONE_NEWNS) == 0 \
                    and libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) == 0:
                self._private_proc(libc)
            return

        def check(rc, what):
            if rc != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"{what}: {os.strerror(err)}")

        check(libc.unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        check(libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "mount --make-rprivate /")
        if self.hide_processes:
            self._private_proc(libc)
        os.umask(0o022)
        fds = [os.open(path, os.O_PATH | os.O_CLOEXEC) for path in self.binds]  # in this namespace
        for cover in self.covers:
            check(libc.mount(b"tmpfs", cover.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV, b"mode=0755,size=1m"),
                  f"tmpfs on {cover}")
        for fd, path in zip(fds, self.binds):
            os.makedirs(path, exist_ok=True)  # inside a cover's tmpfs
            check(libc.mount(f"/proc/self/fd/{fd}".encode(), path.encode(), None, _MS_BIND | _MS_REC, None),
                  f"bind {path}")

    @staticmethod
    def _private_proc(libc) -> bool:
        """A /proc of this mount namespace where a uid sees only its own processes (best effort)."""
        return libc.mount(b"proc", b"/proc", b"proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, b"hidepid=2") == 0
