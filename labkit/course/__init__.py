"""The instructor's tools: releasing the student notebooks and autograding a class.

Students never import this subpackage; the notebooks use ``labkit.data``,
``labkit.models``, ``labkit.train`` and ``labkit.plotting``. One module per
concern (``docs/ARCHITECTURE.md`` draws the map and follows one submission
through it):

- ``release``      ``labkit release``: student notebooks generated from solutions/, checked for leaks
- ``leaks``        which lines of the solutions are secret, found in any text
- ``student_repo`` where the student repository lives (pyproject.toml); the Colab badge and install cell
- ``publish``      ``labkit publish``: the student repository, without the solutions
- ``submissions``  finding and reading SUBMISSIONS (folders, zips), matching files to notebooks
- ``repair``       checking a submitted notebook against its release and repairing it
- ``assignment``   the template nbgrader course every student's grading starts from
- ``student``      grading one student with nbgrader, every kernel in the sandbox
- ``gradebook``    the class gradebook, grades.csv and the feedback pages
- ``autograde``    ``labkit autograde``: the run that ties the above together
- ``sandbox``      the kernel wrapper that confines students' code
- ``nbgrader``     nbgrader as a subprocess, course configuration files
- ``paths``        the checkout's folders (solutions/, notebooks/)
"""
