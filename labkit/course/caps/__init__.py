"""Byte caps: what a student's code writes, kept to a budget wherever it comes out.

Owns:

- ``stream``   a subprocess's output read with a byte cap (nbgrader's stdout and stderr carry
               what the kernels write to their file descriptors), decoded with replacement
- ``outputs``  nbgrader's Execute with a byte cap on a notebook's outputs, imported by nbgrader's
               process through the course's ``nbgrader_config.py``

May import: the standard library (``stream``), nbgrader and nbformat (``outputs``, only in
nbgrader's process). Used by ``labkit.course.nbgrader``; imports nothing of labkit.
"""
