"""labkit's exceptions: one root, so that the command line can tell the kit's own errors from bugs.

``labkit.cli.main`` prints a :class:`LabkitError` as one line (``labkit: <message>``) and exits
with code 2; any other exception is a bug and keeps its traceback. Every message names the problem
and the fix: in the library it names the parameter (``root=``, ``n_components=``), on the command
line the flag (``--jobs``, ``--roster``).

Each class also derives from the built-in exception that callers caught before it existed
(``RuntimeError``, ``ValueError``), so ``except ValueError`` around a bad option still works.

    LabkitError
    ├── DataError          MNIST missing, unreadable or corrupt            (labkit.data: MNISTError)
    ├── OptionError        a bad option, setting or argument value          (the CLI, [tool.labkit], course options)
    ├── SubmissionError    a submission that cannot be read as one          (labkit.course intake)
    ├── GradingError       nbgrader or the sandbox failed for the whole run (labkit.course: NbgraderError)
    ├── ReleaseError       the student notebooks cannot be generated        (labkit release, labkit publish)
    └── TrainingError      training diverged                                 (labkit.train: TrainingDivergedError)

Modules define their own, narrower classes under these (``MNISTNotFoundError(MNISTError)``, ...);
this module imports nothing from labkit, so every module may import it.
"""
from __future__ import annotations


class LabkitError(Exception):
    """An error of the kit's own, with a message that names the problem and the fix."""


class DataError(LabkitError, RuntimeError):
    """The data cannot be loaded: missing, unreadable or corrupt files."""


class OptionError(LabkitError, ValueError):
    """A bad option, setting or argument value; the message names the parameter or flag."""


class SubmissionError(LabkitError, ValueError):
    """A student's submission that cannot be read as one (the message names the student and file)."""


class GradingError(LabkitError, RuntimeError):
    """Grading as a whole cannot go on: nbgrader, the sandbox or the course failed."""


class ReleaseError(LabkitError, RuntimeError):
    """The student notebooks or the student repository cannot be generated."""


class TrainingError(LabkitError, RuntimeError):
    """Training cannot go on (the cost diverged, a model that cannot be trained)."""
