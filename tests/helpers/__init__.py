"""The test suite's shared helpers (plain modules, no tests; no test module imports another).

- ``markers``: the markers a test gets from what it uses (``tests/conftest.py`` applies them at
  collection), and the guard that fails an unmarked test which starts a kernel or nbgrader.
- ``course``: the tiny fixture assignment (``tests/fixtures/grading``), its notebooks and
  grades.csv, the sandbox mode the grading tests use (bubblewrap probed once, when first asked),
  the one builder of submission folders and zips, and the template course built once per session.
- ``liar``: a Dask worker's ``grade_task`` that lies (tests/test_adversarial_cluster.py's clusters import it).
- ``executed``: 1_pca, 2_ppca and 3_vae executed once per session, for nbval's cells of them and
  for the answer-key test.
"""
