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
