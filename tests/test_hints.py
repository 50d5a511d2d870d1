"""The rule on hints (docs/instructors.md, issue #28 item 4): a hint names the mistake, never the
formula to write or the line to type.

Owns: collecting every hint of the solution notebooks' checks with nbformat and ``ast`` (no
notebook runs): the ``hint=`` of a ``checks`` call, the keys of ``mistakes=``, the hint argument of
``checks.fail`` (also through a variable assigned in the cell) and the "likely mistake: ..." part of
a ``checks.true`` message (f-strings read with ``{}`` for their fields; a message that labkit writes,
``checks.training_problem``, is labkit's own); and the detectors, each tested on a planted hint. A
hint breaks the rule when it

(a) starts with "not": it reads as a double negative after "likely mistake:";
(b) quotes solution code: 4 consecutive tokens of a line of a ``### BEGIN SOLUTION`` region (any
    notebook, comments dropped, case ignored) where the 4 hold a name of 3 or more characters and an
    operator or punctuation (``J . backward (``; not the notation ``( x - mu``, nor prose);
(c) writes a formula after "=" or ":" or straight after "is"/"are" (a power or transpose ``^``, a
    spaced or tight operator ``W z + mu``, ``1/2``, a function applied ``exp(``, a subscript ``V_M``,
    ``sum_``, ``logvar``, ``||``, ``~``), or names a library call or attribute as the thing to do (a
    dotted name ``torch.randn``, ``optimizer.step``, ``J.item``; ``.backward()``, ``.grad`` on their
    own; an empty call ``detach()``);
(d) opens with an instruction (``use``, ``take``, ``subtract``, ``compute``, ... : what to type, not what
    is wrong);
(e) is longer than one clause: over 100 characters.
"""
from __future__ import annotations

import ast
import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
CHECKS = {"close", "shape", "true", "fail"}
SOLUTION_RE = re.compile(r"### BEGIN SOLUTION(.*?)### END SOLUTION", re.S)
LIKELY = "likely mistake: "
MAX_LENGTH = 100


@dataclass(frozen=True)
class Hint:
    notebook: str
    cell: str  # the grade_id, else the cell's index
    kind: str  # "hint", "mistake" or "message"
    text: str

    def __str__(self) -> str:
        return f"{self.notebook} {self.cell} ({self.kind}): {self.text!r}"


# --------------------------------------------------------------------------- collecting

def texts(node: ast.AST, env: dict[str, list[ast.AST]]) -> list[str]:
    """Every string ``node`` can be: constants, f-strings ({} for a field), +, a conditional, a name
    assigned in the cell. Raises ValueError for anything else, so that no hint escapes the scan."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return ["".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return [a + b for a, b in itertools.product(texts(node.left, env), texts(node.right, env))]
    if isinstance(node, ast.IfExp):
        return texts(node.body, env) + texts(node.orelse, env)
    if isinstance(node, ast.Call) and _is_check(node.func):  # labkit's own text (checks.training_problem)
        return []
    if isinstance(node, ast.Name) and node.id in env:
        return [t for value in env[node.id] for t in texts(value, env)]
    raise ValueError(f"a hint the scan cannot read: {ast.unparse(node)}")


def _assignments(tree: ast.AST) -> dict[str, list[ast.AST]]:
    env: dict[str, list[ast.AST]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            env.setdefault(node.targets[0].id, []).append(node.value)
    return env


def _mistakes(node: ast.AST, env: dict[str, list[ast.AST]]) -> ast.Dict:
    """The dict literal of ``mistakes=``, also through a name assigned once in the cell."""
    if isinstance(node, ast.Name) and len(env.get(node.id, ())) == 1:
        node = env[node.id][0]
    if not isinstance(node, ast.Dict):
        raise ValueError(f"mistakes the scan cannot read: {ast.unparse(node)}")
    return node


def _is_check(func: ast.AST, names=None) -> bool:
    """``func`` is ``checks.<name>`` (any name, or one of ``names``)."""
    return (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "checks"
            and (names is None or func.attr in names))


def _check_calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _is_check(node.func, CHECKS):
            yield node.func.attr, node


def hints_of_source(source: str, notebook: str, cell: str) -> list[Hint]:
    """The hints of one code cell's checks."""
    tree = ast.parse(source)
    env, found = _assignments(tree), []
    for name, call in _check_calls(tree):
        keywords = {k.arg: k.value for k in call.keywords}
        if "hint" in keywords:
            found += [Hint(notebook, cell, "hint", t) for t in texts(keywords["hint"], env)]
        if name == "fail" and len(call.args) > 3:
            found += [Hint(notebook, cell, "hint", t) for t in texts(call.args[3], env)]
        if "mistakes" in keywords:
            found += [Hint(notebook, cell, "mistake", t) for k in _mistakes(keywords["mistakes"], env).keys
                      for t in texts(k, env)]
        message = (call.args[1:2] or [keywords.get("message")])[0] if name == "true" else None
        if message is not None:
            found += [Hint(notebook, cell, "message", t.split(LIKELY, 1)[1])
                      for t in texts(message, env) if LIKELY in t]
    return found


def collect(path: Path) -> list[Hint]:
    """Every hint of a notebook's code cells."""
    found = []
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type == "code" and "checks." in cell.source:
            label = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index}"
            found += hints_of_source(cell.source, path.stem, label)
    return found


# --------------------------------------------------------------------------- the detectors

TOKEN_RE = re.compile(r"[A-Za-z_]\w*|\d+(?:\.\d+)?|\*\*|//|[-+*/@%<>=!]=|\S")


def tokens(text: str) -> list[str]:
    return TOKEN_RE.findall(text.lower())


def _significant(window: tuple[str, ...]) -> bool:
    """Code, not notation or prose: a name of 3+ characters and an operator or punctuation."""
    return (any(len(t) >= 3 and (t[0].isalpha() or t[0] == "_") for t in window)
            and any(not (t[0].isalnum() or t[0] == "_") for t in window))


def windows(text: str, size: int = 4) -> set[tuple[str, ...]]:
    toks = tokens(text)
    return {w for w in (tuple(toks[i:i + size]) for i in range(len(toks) - size + 1)) if _significant(w)}


def solution_windows(paths) -> set[tuple[str, ...]]:
    """The significant 4-token windows of every line of the solution regions, comments dropped."""
    found: set[tuple[str, ...]] = set()
    for path in paths:
        for cell in nbformat.read(path, as_version=4).cells:
            for region in SOLUTION_RE.findall(cell.source):
                for line in region.splitlines():
                    found |= windows(line.split("#", 1)[0])
    return found


def starts_with_not(hint: str) -> bool:
    return re.match(r"\s*not\b", hint, re.I) is not None


def quoted_code(hint: str, code: set[tuple[str, ...]]) -> list[str]:
    """The solution-code fragments (4 tokens) that ``hint`` contains."""
    return sorted(" ".join(w) for w in windows(hint) & code)


ASSIGN_RE = re.compile(r"(?<![=<>!+\-*/:])[=:](?![=:])")
FORMULA_RE = re.compile(r"""
      \w\s*\^               # a power or transpose: sigma^2, W^T, M^-1
    | \S\s[-+*/@]\s\S       # a spaced operator: W z + mu, x - mu
    | [\w)\]][*/@][\w(\[]   # a tight operator: 1/2, X@W
    | \b[A-Za-z_]\w*\(      # a function applied: exp(, log(, N(
    | \b[A-Za-z]+_[A-Za-z0-9]\b  # a subscripted symbol: V_M, sigma_i, z_k
    | \bsum_ | \blogvar | \|\| | ~
""", re.X)


IS_RE = re.compile(r"\b(?:is|are|equals)\s+(\S+(?:\s+\S+)?)")


def formula(hint: str) -> bool:
    """An "=" or ":" followed by a formula-like expression, or "is"/"are" followed at once (the next two
    words) by one."""
    return (any(FORMULA_RE.search(hint[m.end():]) for m in ASSIGN_RE.finditer(hint))
            or any(FORMULA_RE.search(m.group(1)) for m in IS_RE.finditer(hint)))


CALL_RE = re.compile(r"""
      \b[A-Za-z_]\w*\.[A-Za-z_]\w+   # a dotted name: torch.randn, optimizer.step, J.item
    | (?<![\w)\]])\.[A-Za-z_]\w*      # a method or attribute on its own: .backward(), .grad
    | \b[A-Za-z_]\w*\(\)              # an empty call: detach(), item()
""", re.X)


def library_call(hint: str) -> list[str]:
    return CALL_RE.findall(hint)


INSTRUCTIONS = {"use", "take", "subtract", "compute", "decode", "encode", "centre", "center", "map", "return",
                "sort", "combine", "zero", "add", "call", "divide", "multiply", "apply", "draw", "scale",
                "remember", "make", "write", "try", "check", "remove", "replace", "keep"}


def instruction(hint: str) -> bool:
    words = hint.split()
    return bool(words) and words[0].lower() in INSTRUCTIONS


def problems(hint: str, code: set[tuple[str, ...]]) -> list[str]:
    """What is wrong with a hint (empty: it keeps the rule)."""
    found = []
    if starts_with_not(hint):
        found.append('(a) starts with "not"')
    if fragments := quoted_code(hint, code):
        found.append(f"(b) quotes the solution code {fragments}")
    if formula(hint):
        found.append('(c) a formula after "=" or ":"')
    if calls := library_call(hint):
        found.append(f"(c) names a library call {calls}")
    if instruction(hint):
        found.append("(d) opens with an instruction")
    if len(hint) > MAX_LENGTH:
        found.append(f"(e) {len(hint)} characters (at most {MAX_LENGTH}: one clause)")
    return found


# --------------------------------------------------------------------------- the solution notebooks

@pytest.fixture(scope="module")
def code():
    return solution_windows(SOLUTIONS)


def test_every_notebook_has_hints_and_solution_code(code):
    assert len(SOLUTIONS) == 5
    for path in SOLUTIONS:
        kinds = {h.kind for h in collect(path)}
        assert {"hint", "mistake"} <= kinds, f"{path.name}: no hints or mistakes found ({kinds})"
    assert ("j", ".", "backward", "(") in code and ("optimizer", ".", "step", "(") in code


def test_every_hint_names_the_mistake(code):
    bad = [f"{h}: {'; '.join(p)}" for path in SOLUTIONS for h in collect(path) if (p := problems(h.text, code))]
    assert not bad, "hints that break the rule of docs/instructors.md:\n" + "\n".join(bad)


# --------------------------------------------------------------------------- planted cases: the old hints

OLD = {
    "a": ["not the squared differences summed over the D coordinates, for every pair of rows",
          "not z = V_M^T (x - mu) for every row x of X",
          "Not working on a copy"],
    "b": ["J.backward() on a copy of w that requires gradients, then return that copy's .grad",
          "total += cost.item() * len(batch) over the epoch's minibatches, then total / N",
          "not working on a copy: w = w.detach().clone().requires_grad_(True)",
          "the last, smaller minibatch was skipped (range(0, N, batch_size) covers it)"],
    "formula": ["KL = 1/2 sum_i (sigma_i^2 + mu_i^2 - 1 - log sigma_i^2)", "C = W W^T + sigma^2 I",
                "the posterior mean is M^-1 W^T (x - mu), one row per x",
                "map x itself: x V_M, with V_M from the SVD of X",
                "log N(x; mu, C) = -1/2 (D log 2 pi + log det C + (x - mu)^T C^-1 (x - mu))",
                "z = mean + exp(logvar / 2) * eps with eps ~ N(0, I)",
                "J was returned as a tensor: return J.item()",
                "the KL term has the wrong sign in the ELBO (ELBO = log p(x|z) - KL)"],
    "call": ["zero the gradients before every backward pass, then optimizer.step()",
             "z ~ N(0, T^2 I): torch.randn, not torch.rand (uniform on [0, 1])",
             "combine the K log-densities with torch.logsumexp (exp underflows at D = 784)",
             "the gradients accumulate from call to call (.grad is not fresh)",
             "likely a detach() in the cost", "model.to(device) missing"],
    "d": ["subtract mu before projecting", "compute the gradient of a fresh copy of w in every call",
          "decode the encoder's mean mu(x), not a random sample of q(z; x)", "use the first M right singular vectors"],
}
DETECTORS = {"a": starts_with_not, "formula": formula, "call": library_call, "d": instruction}


@pytest.mark.parametrize("rule, hint", [(r, h) for r, hs in OLD.items() for h in hs])
def test_a_planted_old_hint_is_caught(rule, hint, code):
    if rule == "b":
        assert quoted_code(hint, code), hint
    else:
        assert DETECTORS[rule](hint), hint
    assert problems(hint, code)


@pytest.mark.parametrize("hint", [
    "the covariance is missing the noise term", "the gradient accumulates over calls",
    "the mean is added back twice", "the squared differences are not summed per pair of rows",
    "W^T (x - mu) was not multiplied by M^-1", "the constant -D/2 log(2 pi sigma^2) is missing",
    "the mean image is not encoded as 0: mu was not subtracted", "a pair (i, j) was written with i > j",
    "the samples z_k ~ p(z) are not drawn afresh at every call", "e.g. a transpose, i.e. the wrong shape"])
def test_a_hint_that_names_the_mistake_passes(hint, code):
    assert problems(hint, code) == []


def test_a_planted_notebook_is_scanned_in_full(tmp_path):
    """Every place a hint can sit is collected and judged: hint=, mistakes=, fail's argument and mistakes=
    through a variable, an f-string message of true (not a plain message); a long hint; an unreadable
    hint is refused."""
    solution = "def f(x):\n    ### BEGIN SOLUTION\n    return x.detach().clone().sum(dim=1)\n    ### END SOLUTION\n"
    tests = '\n'.join([
        'checks.close(a, b, "a", mistakes={"not summed": c}, hint="C = W W^T + sigma^2 I")',
        'hint = "sort the pairs"',
        'checks.fail("pairs", expected, got, hint)',
        'checks.true(ok, f"f: expected {n}, got {m}; likely mistake: " "the row was x.detach().clone() first")',
        'checks.close(a, b, "a", hint="the mean image is not encoded as 0" + " because the rows were centred"'
        ' " with their own mean and then the mean of the training images was added back to them twice")',
        'wrong = {"took the square root: x.sqrt()": c}',
        'checks.close(a, b, "a", mistakes=wrong)',
        'checks.true(ok, "the cost went down")'])
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(solution), nbformat.v4.new_code_cell(tests)])
    path = tmp_path / "planted.ipynb"
    nbformat.write(nb, path)
    found = collect(path)
    assert [h.kind for h in found] == ["hint", "mistake", "hint", "message", "hint", "mistake"]
    code = solution_windows([path])
    verdicts = [problems(h.text, code) for h in found]
    assert [v[0][:3] for v in verdicts] == ["(c)", "(a)", "(d)", "(b)", "(e)", "(c)"], verdicts
    for unreadable in ('hint=make_hint()', 'mistakes=make_mistakes()'):
        with pytest.raises(ValueError, match="cannot read"):
            hints_of_source(f'checks.close(a, b, "a", {unreadable})', "planted", "cell 1")
