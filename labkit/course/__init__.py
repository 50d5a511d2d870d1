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
- ``layouts``      how platforms lay out SUBMISSIONS (Moodle, GitHub Classroom, Canvas), detected and read
- ``roster``       the class roster, matched to the submissions (missing students, strangers)
- ``unzip``        one zip member read with a hard cap on the bytes it decompresses to
- ``repair``       checking a submitted notebook against its release and repairing it
- ``assignment``   the template nbgrader course every student's grading starts from
- ``student``      grading one student with nbgrader, every kernel in the sandbox
- ``gradebook``    the class gradebook, grades.csv and the feedback pages
- ``exports``      summary.csv and the Canvas and Moodle gradebook import files
- ``autograde``    ``labkit autograde``: the run that ties the above together
- ``runsetup``     a run's set-up before its students (run folder, sandbox probe, MNIST cache), here or on a worker
- ``cluster``      ``--scheduler``: students graded as tasks on a Dask cluster's workers
- ``progress``     students done, running and left (tqdm)
- ``sanitize``     students' HTML made inert in the notebooks that feedback and the formgrader show
- ``outputcap``    nbgrader's Execute with a byte cap on a notebook's outputs
- ``capture``      a subprocess's output read with a byte cap, decoded with replacement
- ``sandbox``      the kernel wrapper that confines students' code
- ``kernel``       the kernel it starts: IPython's, ending at once when nbgrader shuts it down
- ``bwrap``        bubblewrap: whether it works here, the command line that confines a kernel
- ``uids``         as root, a fresh unprivileged uid per kernel; ending all its processes
- ``nbgrader``     nbgrader as a subprocess, course configuration files
- ``paths``        the checkout's folders (solutions/, notebooks/)
"""
