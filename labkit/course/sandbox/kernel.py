"""The grading kernel: IPython's kernel (what ``python -m ipykernel_launcher`` starts) that leaves at once.

Owns: the command the sandbox runs inside the student's confinement
(:mod:`labkit.course.sandbox`): ``python -m labkit.course.sandbox.kernel -f CONNECTION_FILE``.

When nbgrader asks the kernel to shut down, every cell has run and every output has
reached nbgrader. An ordinary exit then spends about a second per notebook
tearing down the interpreter with torch and matplotlib loaded (measured with
``benchmarks/grading.py``); this kernel flushes its own output streams and ends
the process with ``os._exit(0)`` instead. Nothing of the notebook's is lost: the
kernel's folder is removed by the sandbox anyway.
"""
import os
import sys


def main() -> None:
    if sys.path and sys.path[0] in ("", os.getcwd()):  # nothing of the working folder while IPython loads
        del sys.path[0]  # (as ipykernel_launcher; IPython puts it back for the notebook's cells)
    from ipykernel.kernelapp import IPKernelApp

    IPKernelApp.launch_instance()  # returns once nbgrader's shutdown request has been answered
    for stream in (sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(0)


if __name__ == "__main__":
    main()
