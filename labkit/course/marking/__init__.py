"""``labkit mark``: the written answers of a class course marked by question, in a local web page.

Owns: reading a class course for marking (``course``), the marks store and the gradebook's manual
scores (``store``), the pages (``page``: the shared frame, the index and the page of what is still
to mark; ``questionpage``: one question with its grouped answers), the tornado server (``server``)
and the command (``command``); ``static/`` holds the page's script and stylesheet.

May import: ``labkit.course.grading`` (``kept``, ``assignment``), ``labkit.course.rubric``,
``labkit.course.render``, ``labkit.course.nbgrader``, ``labkit.errors``. Nothing of
``labkit.course`` imports it (only ``labkit.cli``).
"""
