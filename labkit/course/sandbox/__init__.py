"""The sandbox: the Jupyter kernel that runs a student's notebook, confined.

Two processes share this subpackage. The grading side (``labkit autograde``, a Dask worker)
chooses the mode, writes each student's configuration and kernelspec and probes that a kernel
starts (``prepare``). The kernelspec runs the wrapper, a process of its own started by nbgrader
(``python -m labkit.course.sandbox.wrapper kernel SANDBOX.json -f CONNECTION_FILE``), which
starts, limits and ends one kernel (``wrapper``), the kernel being ``kernel``.

Owns:

- ``prepare``  the grading side: the mode, the per-student configuration and kernelspec, the probe
- ``wrapper``  the wrapper process: a kernel started in the sandbox, limited, waited for, recorded
- ``kernel``   the kernel it starts: IPython's, ending at once when nbgrader shuts it down
- ``bwrap``    bubblewrap: whether it works here, the command line that confines a kernel
- ``uids``     as root, a fresh unprivileged uid per kernel, and what it left in /tmp removed
- ``reaping``  ending processes: every process of a uid, every descendant of the wrapper, and the
               guardian that ends them when the wrapper itself is SIGKILLed
- ``mounts``   the folders a kernel's uid must reach behind folders it may not enter (a mount view)

May import: the standard library and ``labkit.errors`` (``prepare``); nothing else of labkit
(the kernel imports ``labkit`` for the notebook). This ``__init__`` imports nothing, so that the
wrapper starts without the grading side.
"""
