"""Checks for the notebooks' test cells: fair comparisons, and messages that say what was expected,
what was got and the likely mistake, in one sentence.

The notebooks' self-checks and hidden tests import this module::

    from labkit import checks
    with checks.own_work(globals(), "kl_term"):
        kl = kl_term(mean, logvar)
    checks.close(kl, reference, "kl_term(mean, logvar)",
                 mistakes={"used logvar as the variance": wrong}, hint="remember: the encoder gives log sigma^2")

Fairness rules (issue #13):

- An answer is compared in float64 on the CPU, whatever its dtype and device, with at least
  float32's tolerance (rtol and atol about 1e-5, atol relative to the size of the expected
  values), so a correct float32 or float64 answer passes either way; the typical mistakes
  change the values by far more.
- Principal directions are unique up to sign: ``close(..., up_to_sign=True)`` flips columns.
- ``mistakes`` maps a likely mistake to the value it would give; when the answer matches one, the
  message names it.
- ``own_work`` swaps labkit's reference implementations (``labkit.models``) out while a student's
  function runs: calling them raises :class:`ReferenceCallError` ("write it yourself").
- ``substitute`` rebinds notebook globals for a while: a downstream test runs the student's
  function with the reference for upstream pieces, so each mistake is charged once, in its cell.
- ``charged_upstream`` and ``computed``: a value that given code computes from the student's
  functions is not charged again when one of those functions is wrong (or stopped with an error).

The named-mistake record: in a kernel, a check that fails displays, just before it raises, an
output the student does not see, whose ``metadata["labkit"]`` is ``{"check": <what was checked>,
"mistake": <the likely mistake the message names, or None>}`` (:data:`RECORD_MIME`), so that the
class report counts the mistakes of a graded class; the message is unchanged. Checks run by
``charged_upstream`` (a failure expected and caught) record nothing.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import math
from typing import Any, Callable, Iterator, Mapping

import torch

__all__ = ["CheckFailed", "ReferenceCallError", "fail", "shape", "close", "true", "own_work", "substitute",
           "training_problem", "charged_upstream", "computed",
           "REFERENCE_MODULES", "RECORD_MIME"]

# The modules whose public functions and classes are labkit's answers to the lab's questions.
REFERENCE_MODULES = ("labkit.models", "labkit.models.pca", "labkit.models.ppca", "labkit.models.vae",
                     "labkit.models.nonlinear", "labkit.models.prior")
_METHODS = ("fit", "encode", "decode", "reconstruct", "sample", "log_likelihood", "loss", "elbo")
# The methods a notebook hands the student as building blocks: the networks of the models they train
# (a student's vae_cost calls model.encode and model.decode); every other method is an answer.
_GIVEN = {"NonlinearModel": ("decode",), "VAE": ("encode", "decode")}
# The named-mistake record's own type (its text/plain is empty: nothing shows in the notebook).
RECORD_MIME = "application/vnd.labkit.check+json"
_LIKELY = "; likely mistake: "
_quiet = [0]  # > 0 while charged_upstream runs a check whose failure it catches


class CheckFailed(AssertionError):
    """A check failed; the message says what was expected, what was got and the likely mistake.

    Made with a message only (``raise CheckFailed(message)``, as every check here does), it
    displays the named-mistake record (see the module docstring) in a kernel."""

    def __init__(self, *args):
        super().__init__(*args)
        if len(args) == 1 and isinstance(args[0], str):
            record(args[0])


def record(message: str) -> dict | None:
    """The named-mistake record of a failing check's ``message`` (``"<what>: expected ..., got ...;
    likely mistake: <hint>"``): ``{"check": what, "mistake": hint or None}``, displayed as an output
    with that ``metadata["labkit"]`` when running in a kernel. Returns the record (None when quiet)."""
    if _quiet[0]:
        return None
    what, sep, _ = message.partition(": expected ")
    mistake = message.rpartition(_LIKELY)[2].strip() if _LIKELY in message else None
    entry = {"check": what.strip() if sep else message.partition(":")[0].strip()[:120], "mistake": mistake or None}
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # labkit without IPython: nothing to display in
        return entry
    if get_ipython() is not None:
        display({RECORD_MIME: entry, "text/plain": ""}, raw=True, metadata={"labkit": entry})
    return entry


class ReferenceCallError(CheckFailed):
    """The student's function called one of labkit's reference implementations."""


def fail(what: str, expected: Any, got: Any, hint: str | None = None) -> None:
    """Raise CheckFailed: "<what>: expected <expected>, got <got>; likely mistake: <hint>"."""
    message = f"{what}: expected {_show(expected)}, got {_show(got)}"
    if hint:
        message += f"{_LIKELY}{hint}"
    raise CheckFailed(message)


def true(condition: Any, message: str) -> None:
    """Raise CheckFailed(message) unless ``condition`` holds (a bool or a one-element tensor)."""
    if isinstance(condition, torch.Tensor):
        condition = bool(condition.all())
    if not condition:
        raise CheckFailed(message)


def shape(got: Any, expected: tuple[int, ...], what: str) -> None:
    """``got`` is a tensor of shape ``expected`` (a tuple; the message names the shape got)."""
    if not isinstance(got, torch.Tensor):
        fail(what, f"a tensor of shape {tuple(expected)}", f"{type(got).__name__} {_show(got)}",
             "return a torch tensor" + (" (not a tuple)" if isinstance(got, tuple) else ""))
    if tuple(got.shape) != tuple(expected):
        if got.numel() == math.prod(expected):
            hint = "the right numbers in the wrong shape: a transpose or reshape"
        elif got.dim() == len(expected):
            hint = "the wrong dimension: check which dimension you summed over and the order of matrix products"
        else:
            hint = "summed or averaged over the wrong dimension (or not at all)"
        fail(f"{what} shape", tuple(expected), tuple(got.shape), hint)


def close(got: Any, expected: Any, what: str, *, rtol: float = 1e-7, atol: float = 1e-8,
          up_to_sign: bool = False, mistakes: Mapping[str, Any] | None = None, hint: str | None = None) -> None:
    """``got`` equals ``expected`` (tensors or numbers) to the tolerance, compared in float64 on the CPU.

    The tolerance is at least what ``got``'s dtype can hold (float32: about 1e-5 of the expected
    values' size). With ``up_to_sign`` each column of ``got`` may be flipped. When ``got`` matches
    one of ``mistakes`` (hint -> the value that mistake gives), that hint is named; else ``hint``.
    """
    want = _as64(expected)
    if isinstance(got, tuple) and not isinstance(expected, tuple):
        fail(what, f"one tensor of shape {tuple(want.shape)}", f"a tuple of {len(got)}", "return one tensor, not a tuple")
    if isinstance(expected, torch.Tensor):
        shape(got, tuple(expected.shape), what)
    have = _as64(got)
    if have.shape != want.shape:
        fail(f"{what} shape", tuple(want.shape), tuple(have.shape), hint)
    rtol, atol = _tolerance(got, want, rtol, atol)
    if up_to_sign:
        have = _align_signs(have, want)
    if bool(torch.isfinite(have).all()) and torch.allclose(have, want, rtol=rtol, atol=atol):
        return
    for mistake, value in (mistakes or {}).items():
        wrong = _as64(value)
        if wrong.shape == have.shape and torch.allclose(have, _align_signs(wrong, have) if up_to_sign else wrong,
                                                         rtol=max(rtol, 1e-4), atol=max(atol, 1e-4 * _scale(wrong))):
            fail(what, want, have, mistake)
    if not bool(torch.isfinite(have).all()):
        hint = hint or "inf or nan: a log of 0, a division by 0 or an overflowing exp"
    fail(what, want, have, hint)


@contextlib.contextmanager
def own_work(namespace: dict, name: str) -> Iterator[None]:
    """While the block runs, labkit's reference implementations raise ReferenceCallError.

    Patches the public functions and classes of ``REFERENCE_MODULES`` (and the model classes'
    methods ``fit``, ``encode``, ...), and every global of ``namespace`` (the notebook's
    ``globals()``) that is one of them, e.g. ``kl_term = kl_to_standard_normal_logvar``. ``name``, the
    function under test, goes into the message. Compute the expected values outside the block.
    """
    saved: list[tuple[Any, str, Any, bool]] = []  # (owner, attribute, old value, was a dict key)
    try:
        references = _references()
        for module in references["modules"]:
            for attr, value in list(vars(module).items()):
                if id(value) in references["objects"]:
                    saved.append((module, attr, value, False))
                    setattr(module, attr, _tripwire(name, value))
        for cls in references["classes"]:
            for attr in _METHODS:
                if attr in vars(cls) and attr not in _GIVEN.get(cls.__name__, ()):
                    saved.append((cls, attr, vars(cls)[attr], False))
                    setattr(cls, attr, _tripwire(name, vars(cls)[attr], owner=cls.__name__))
        for key, value in list(namespace.items()):  # classes stay (their methods trip), so that Cls.loss names itself
            if not key.startswith("__") and id(value) in references["objects"] and not isinstance(value, type):
                saved.append((namespace, key, value, True))
                namespace[key] = _tripwire(name, value)
        yield
    finally:
        for owner, attr, value, is_key in reversed(saved):
            if is_key:
                owner[attr] = value
            else:
                setattr(owner, attr, value)


@contextlib.contextmanager
def substitute(namespace: dict, **pieces: Callable) -> Iterator[None]:
    """Rebind globals of ``namespace`` (the notebook's) to ``pieces`` while the block runs.

    A downstream test feeds the student's function the reference upstream pieces, e.g.
    ``with substitute(globals(), kl_term=reference_kl): vae_cost(model, x)``, so that a wrong
    ``kl_term`` is charged in its own cell only. Each piece is wrapped, so ``own_work`` lets it run.
    """
    missing = object()
    old = {key: namespace.get(key, missing) for key in pieces}
    try:
        for key, piece in pieces.items():
            namespace[key] = _wrap(piece)
        yield
    finally:
        for key, value in old.items():
            if value is missing:
                namespace.pop(key, None)
            else:
                namespace[key] = value


# --------------------------------------------------------------------------- internals


def _wrap(piece: Callable) -> Callable:
    @functools.wraps(piece)
    def reference_piece(*args, **kwargs):
        return piece(*args, **kwargs)
    return reference_piece


def _tripwire(name: str, reference: Any, owner: str | None = None) -> Callable:
    module = getattr(reference, "__module__", "labkit.models")
    label = f"{owner}.{reference.__name__}" if owner else getattr(reference, "__name__", repr(reference))

    def tripwire(*args, **kwargs):
        raise ReferenceCallError(
            f"{name}: expected your own computation, got a call to labkit's reference {label} ({module}); "
            "likely mistake: using the answer key instead of writing the formula (no points for that)")
    return tripwire


@functools.lru_cache(maxsize=1)
def _reference_set() -> tuple[tuple, tuple]:
    modules = tuple(importlib.import_module(m) for m in REFERENCE_MODULES)
    objects = {}
    for module in modules:
        for attr in getattr(module, "__all__", ()):
            value = getattr(module, attr)
            if callable(value) and getattr(value, "__module__", "").startswith("labkit.models"):
                objects[id(value)] = value
    return modules, tuple(objects.values())


def _references() -> dict:
    modules, objects = _reference_set()
    return {"modules": modules, "objects": {id(o): o for o in objects},
            "classes": [o for o in objects if isinstance(o, type)]}


def _as64(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", torch.float64)
    try:
        return torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise CheckFailed(f"expected a tensor or a number, got {type(value).__name__} {_show(value)}") from None


def _scale(t: torch.Tensor) -> float:
    finite = t[torch.isfinite(t)]
    return max(1.0, float(finite.abs().max())) if finite.numel() else 1.0


def _tolerance(got: Any, want: torch.Tensor, rtol: float, atol: float) -> tuple[float, float]:
    """At least float32's tolerance (whatever the answer's dtype: float64 computed from float32
    pieces holds float32's precision only); more for lower precision (float16, bfloat16)."""
    dtype = got.dtype if isinstance(got, torch.Tensor) and got.is_floating_point() else torch.float64
    eps = max(torch.finfo(dtype).eps, torch.finfo(torch.float32).eps)
    return max(rtol, 100 * eps), max(atol, 100 * eps * _scale(want))


def _align_signs(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """A with each column's sign chosen to agree best with B (2-dimensional tensors)."""
    if A.dim() != 2 or A.shape != B.shape:
        return A
    return A * torch.where((A * B).sum(0) < 0, -1.0, 1.0).to(A.dtype)


def _show(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        flat = value.detach().to("cpu").reshape(-1)
        if flat.is_floating_point():
            text = ", ".join(f"{v:.6g}" for v in flat[:6].tolist())
        else:
            text = ", ".join(str(v) for v in flat[:6].tolist())
        more = ", ..." if flat.numel() > 6 else ""
        return f"[{text}{more}]" + (f" (shape {tuple(value.shape)})" if value.dim() != 1 or flat.numel() > 6 else "")
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def training_problem(history: Any, epochs: int, cost: str) -> str | None:
    """What is wrong with a training's ``History`` (missing, wrong length, inf/nan, cost not
    decreasing), as a one-sentence message naming the ``cost`` function; None when it looks right."""
    if history is None:
        return (f"training: expected a history from fit, got none; likely mistake: the training cell stopped "
                f"with an error (see its message; often inf or nan in {cost})")
    losses = list(history.train_loss) + list(getattr(history, "test_loss", []))
    if len(history.train_loss) != epochs:
        return f"training: expected {epochs} epochs, got {len(history.train_loss)}; likely mistake: EPOCHS was changed"
    if not all(math.isfinite(v) for v in losses):
        return f"training: expected finite costs, got {_show(history.train_loss)}; likely mistake: inf or nan in {cost}"
    if not history.train_loss[-1] < history.train_loss[0]:
        return (f"training: expected the cost to decrease, got {_show(history.train_loss)}; "
                f"likely mistake: the sign of {cost}, or a learning rate changed")
    return None


def charged_upstream(check: Callable[[], Any]) -> bool:
    """True when ``check()`` (a test of an upstream function against its reference) fails: a downstream
    failure caused by that function is then charged in the upstream cell only. Unwritten code
    (NotImplementedError, NameError) does not count: the downstream test fails as well."""
    _quiet[0] += 1
    try:
        check()
    except (NotImplementedError, NameError):
        return False
    except Exception:  # noqa: BLE001 - any failure of the upstream function
        return True
    finally:
        _quiet[0] -= 1
    return False


def computed(namespace: dict, name: str, upstream: Callable[[], Any]) -> bool:
    """Whether the notebook's global ``name`` exists. When it does not (a cell above stopped with an
    error) and ``upstream()``, a test of the functions that cell calls against references, fails,
    that mistake is charged in its own cell: False. Otherwise CheckFailed says the value is missing."""
    if name in namespace:
        return True
    true(charged_upstream(upstream), f"{name}: expected a value, got none; likely mistake: a cell above "
                                     "stopped with an error (see its message)")
    return False
