"""The instructor's tools: releasing the student notebooks and autograding a class.

Students never import this subpackage; the notebooks use ``labkit.data``,
``labkit.models``, ``labkit.train`` and ``labkit.plotting``. Four rooms, named
after what the instructor does (``docs/ARCHITECTURE.md`` draws the map and
follows one submission through it); each subpackage's docstring says what it
owns and what it may import:

- ``release/``   ``labkit release`` and ``labkit publish``: the student notebooks, the leak scanner, the student repository
- ``intake/``    a class's SUBMISSIONS as platforms deliver them: folders, zips, Canvas's download, rosters, repair
- ``grading/``   ``labkit autograde``: the run's records, one student, the template, the cluster, the gradebook and its outputs
- ``sandbox/``   the confined kernel: the grading side (``prepare``), the wrapper process, bubblewrap, uids, reaping, mounts
- ``marking/``   ``labkit mark``: the written answers marked by question in a local page (reads a graded class)
- ``report/``    what a graded class gives back: feedback pages, the class report, the pages in one upload

and what they share:

- ``nbgrader``   nbgrader as a subprocess, course configuration files
- ``caps/``      the byte caps: a subprocess's output stream, a notebook's outputs
- ``paths``      the checkout's folders (solutions/, notebooks/)
- ``rubric``     the written answers of the solutions and their rubrics (``rubric_for``)
- ``render``     safe HTML from students' Markdown and outputs

Dependencies point one way: ``release`` and ``grading`` import the shared modules;
``grading`` imports ``intake`` and ``sandbox``; ``intake`` and ``sandbox`` import no
other room. Rooms still to come: the class's persistent course in ``grading/``, the
marking web page (``labkit mark``) in ``marking/``; like ``report/``, they may import
``grading``, never the reverse (``grading`` calls ``report.write_reports``, imported where it is called).
"""
