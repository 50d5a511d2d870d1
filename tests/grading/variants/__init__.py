"""Students' answers to the solution cells, one module per notebook (named like the notebook with a
leading "nb"): CELLS maps a solution cell's grade_id to its variants.

Each entry: ``correct`` (answers that must get full marks: other decompositions, library calls,
float32/float64, loops, torch.distributions), ``wrong`` (typical mistakes: the cell's own test and
its visible self-check must fail, with a message; downstream tests must pass: charged once),
``reference`` (calls to labkit's reference implementation: the own test must fail saying so),
``downstream`` (grade_ids of later test cells that use the cell's functions) and ``hidden_only``
(wrong variants that only the hidden data can expose, a genuinely data-dependent bug).
A variant's code replaces the whole cell; a function it does not define keeps the reference's.
"""


def changed(code: str, *changes: tuple[str, str]) -> str:
    """``code`` with each (old, new) text replaced (old must occur): a mistake as an edit of a right answer."""
    for old, new in changes:
        assert old in code, old
        code = code.replace(old, new)
    return code


# squared_errors is asked in 1_pca, 2_ppca and 3_vae: one set of answers serves the three cells.
SQUARED_ERRORS = {
    "correct": {
        "float64": '''
def squared_errors(X, X_rec):
    return ((X.double() - X_rec.double()) ** 2).sum(dim=1)
''',
        "norm squared": '''
def squared_errors(X, X_rec):
    return torch.linalg.vector_norm(X - X_rec, dim=1) ** 2
''',
        "mse_loss": '''
def squared_errors(X, X_rec):
    return torch.nn.functional.mse_loss(X_rec, X, reduction="none").sum(-1)
''',
        "einsum": '''
def squared_errors(X, X_rec):
    d = X - X_rec
    return torch.einsum("nd,nd->n", d, d)
''',
        "loop over images": '''
def squared_errors(X, X_rec):
    return torch.stack([((a - b) ** 2).sum() for a, b in zip(X, X_rec)])
''',
    },
    "wrong": {
        "mean over pixels": '''
def squared_errors(X, X_rec):
    return ((X - X_rec) ** 2).mean(dim=1)
''',
        "distance, not squared": '''
def squared_errors(X, X_rec):
    return torch.linalg.vector_norm(X - X_rec, dim=1)
''',
        "square root of the sum": '''
def squared_errors(X, X_rec):
    return ((X - X_rec) ** 2).sum(dim=1).sqrt()
''',
        "sum over images": '''
def squared_errors(X, X_rec):
    return ((X - X_rec) ** 2).sum(dim=0)
''',
        "absolute errors": '''
def squared_errors(X, X_rec):
    return (X - X_rec).abs().sum(dim=1)
''',
        "not squared": '''
def squared_errors(X, X_rec):
    return (X - X_rec).sum(dim=1)
''',
        "squared sum instead of sum of squares": '''
def squared_errors(X, X_rec):
    return (X - X_rec).sum(dim=1) ** 2
''',
    },
}
