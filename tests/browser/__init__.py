"""Helpers for tests/test_browser.py: the student's lab driven in a real browser.

- ``workfolder``: the throwaway folder of notebooks the tests open (student notebooks with their
  solution cells filled in from ``solutions/``, the unsolved ones as handed out).
- ``servers``: JupyterLab / Notebook 7 on 127.0.0.1 with a token, isolated from the user's settings.
- ``chromium``: the system Chromium through Playwright, and the record of every request a page makes.
- ``notebook_ui``: what a student does in the page (run cells, move a slider) and what the tests read
  back from it (errors, images, widgets, screenshots).
"""
