"""Grading a class: the run of ``labkit autograde``, one student at a time, and what it writes.

Owns:

- ``autograde``    ``labkit autograde``: the run as named stages (intake, set-up, grading, outputs)
- ``records``      the run's records: ``Options`` and ``Settings`` (checked once, frozen), ``Run``, ``Row``,
                   ``StudentResult`` (one student's result), ``GradeLine`` (one line of grades.csv)
- ``runsetup``     a run's set-up before its students (run folder, sandbox probe, MNIST cache), here or on a worker
- ``assignment``   the template nbgrader course every student's grading starts from
- ``student``      grading one student with nbgrader, every kernel in the sandbox
- ``executors``    where the students are graded, behind one interface: here (``--jobs``) or on a cluster
- ``cluster``      ``--scheduler``: students graded as tasks on a TLS Dask cluster's workers
- ``certs``        ``labkit cluster-certs``: the cluster's certificates, Dask's ``Security`` of them
- ``wire``         what a worker sends back, as data (JSON, a checked tar), never a pickle
- ``progress``     students done, running and left (tqdm)
- ``gradebook``    the class gradebook and grades.csv
- ``kept``         the class course kept with ``--keep``: what ``--from-course`` reads and writes
- ``term``         ``--course``: the term's class course (lock, template, what to grade, each student's commit)
- ``termbook``     the term's record in the class gradebook: one transaction per student, hand grades kept
- ``termout``      what a ``--course`` run writes for the whole course (grades.csv, changes.csv, summary.csv ...)
- ``exports``      summary.csv and the Canvas and Moodle gradebook import files
- ``sanitize``     students' HTML made inert in the notebooks that feedback and the formgrader show
- ``seen``         what the student saw: each submitted notebook with its outputs, capped (``labkit-outputs/``)

May import: ``labkit.course.intake``, ``labkit.course.sandbox``, ``labkit.course.caps``,
``labkit.course.nbgrader``, ``labkit.course.paths``, ``labkit.errors``. Nothing imports
``grading`` but the command line (``labkit.cli``) and the rooms that build on a graded class.

The term's class course (``--course``: ``term``, ``termbook``, ``termout``) lives here, beside
``gradebook`` and ``kept``. The marking page for written answers (``labkit mark``) is
``labkit.course.marking``, the students' feedback pages and the class report
``labkit.course.report``: both read what grading wrote (the class course, grades.csv) and may import
``grading``; ``grading`` never imports them at the top (``autograde``, ``kept`` and ``termout``
import ``report.write_reports`` where they call it).
"""
