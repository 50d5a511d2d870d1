"""The ``labkit`` command.

    labkit data       load MNIST (verifying and caching it) and print a summary
    labkit lab        run the whole lab headless and write a report   (labkit/lab.py)
    labkit release    generate the student notebooks from solutions/   (labkit/course/release/notebooks.py)
    labkit autograde  grade a class's submissions with nbgrader        (labkit/course/grading/autograde.py)
    labkit publish    write the student repository, without solutions  (labkit/course/release/publish.py)
    labkit mark       mark the written answers by question in a browser (labkit/course/marking/command.py)
    labkit cluster-certs  certificates for grading on a TLS Dask cluster (labkit/course/grading/certs.py)

The last five are the instructor's (labkit/course/); the student repository
that `labkit publish` writes leaves labkit/course/ out, and so these commands.

A command module raises an exception; main() turns the kit's own errors, every
``labkit.errors.LabkitError`` (MNIST missing, nbgrader failing, a bad option value),
into one line and exit code 2; any other exception keeps its traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time

from labkit.errors import LabkitError

# Each of these modules adds its own subcommands with `register(subparsers)`.
COMMAND_MODULES = ("labkit.lab", "labkit.course.release.notebooks", "labkit.course.grading.autograde",
                   "labkit.course.release.publish", "labkit.course.grading.certs", "labkit.course.marking.command")


def _cmd_data(args) -> int:
    from labkit.data import MNISTNotFoundError, data_dir, load_mnist

    print(f"MNIST folder: {data_dir(args.data_dir) / 'MNIST' / 'raw'}")
    for split in ("train", "test"):
        t0 = time.perf_counter()
        try:
            x, y = load_mnist(split, root=args.data_dir, download=not args.no_download)
        except MNISTNotFoundError as e:
            raise e.for_command_line("--data-dir") from None
        dt = time.perf_counter() - t0
        counts = " ".join(f"{d}:{c}" for d, c in enumerate(y.bincount(minlength=10).tolist()))
        print(
            f"{split:5s}: images {tuple(x.shape)} {str(x.dtype).replace('torch.', '')} "
            f"in [{x.min().item():.0f}, {x.max().item():.0f}], labels per digit {counts} ({dt:.2f} s)"
        )
    return 0


def add_command(subparsers, name: str, *, help: str, doc: str,
                formatter=argparse.RawDescriptionHelpFormatter) -> argparse.ArgumentParser:
    """The parser of subcommand ``name``; its description is the second paragraph of ``doc``
    (the command module's docstring, which shows the command lines)."""
    return subparsers.add_parser(name, help=help, description=doc.split("\n\n")[1], formatter_class=formatter)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labkit",
        description="Course kit for the lab 'Unsupervised learning with variational autoencoders'.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("data", help="load MNIST (verify, cache) and print a summary")
    p.add_argument("--data-dir", metavar="DIR", help="folder holding MNIST/raw (default: $LABKIT_DATA, else data/)")
    p.add_argument("--no-download", action="store_true", help="never download; fail if the files are missing")
    p.set_defaults(func=_cmd_data)

    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            # the module or its package (labkit.course, absent from the student repository) is missing;
            # a missing dependency inside it is a real error
            if not (e.name == name or name.startswith(f"{e.name}.")):
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command: 0 when it succeeds; a LabkitError (MNIST missing, nbgrader failing, a bad
    option value) printed as one line ``labkit: message`` on stderr, exit code 2; anything else is
    a bug and propagates with its traceback. Usage errors exit 2 through argparse."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except LabkitError as e:
        print(f"labkit: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
