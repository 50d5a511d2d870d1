"""Checking a submitted notebook against its released student version, and repairing it.

Owns: :func:`repair_notebook` (invalid files named, duplicated cells and
grade ids, deleted graded cells restored, nbgrader's markup put back) and the
small helpers that read nbgrader's cell markup (:func:`nbgrader_meta`).
"""
from __future__ import annotations

import copy
import json
import re
import warnings


def nbgrader_meta(cell) -> dict | None:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) and isinstance(meta.get("grade_id"), str) else None


def is_anchor(meta: dict | None) -> bool:
    return bool(meta) and bool(meta.get("grade") or meta.get("solution") or meta.get("locked"))


def _tags(metadata) -> set[str]:
    tags = metadata.get("tags")
    return {str(t) for t in tags} if isinstance(tags, list) else set()


def cell_source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def repair_notebook(raw: bytes, release, source=None) -> tuple[object | None, list[str], str | None]:
    """Check a submitted notebook against the student version ``release`` and repair it.

    Returns (notebook or None, notes, problem). ``problem`` (e.g. ``invalid
    notebook: not JSON``) means the file cannot be graded. Repairs, each
    noted: cell ids made unique; of cells sharing a grade id only the last
    keeps its nbgrader markup (as nbgrader does); markup of unknown grade ids
    dropped; every graded, solution or locked cell gets all of its metadata
    from the student version back (nbgrader's markup, and tags such as
    ``skip-execution`` or ``raises-exception`` that change how nbclient runs
    it: noted when they differed); deleted ones are restored (solution stubs right
    after the cell before them, tests and locked cells right before the cell
    after them, so that a student's own extra cells run before the tests).
    Locked cells whose text differs from both the student version and the
    instructor's ``source`` (when given) are only noted: nbgrader overwrites
    them with the originals from the gradebook (hidden tests included).
    """
    import nbformat

    nb, problem = read_notebook(raw)
    if problem:
        return None, [], problem
    release_cells = {m["grade_id"]: c for c in release.cells if is_anchor(m := nbgrader_meta(c))}
    source_text = {m["grade_id"]: cell_source(c) for c in (source.cells if source else []) if (m := nbgrader_meta(c))}
    cells = nb.cells
    notes = _keep_last_markup(cells, release_cells)
    notes += _markup_as_released(cells, release_cells, source_text)
    notes += _restore_deleted(cells, release_cells)
    _unique_ids(cells)
    nb.metadata = copy.deepcopy(release.metadata)  # kernelspec and language as released
    try:
        nbformat.validate(nb)
    except Exception as e:
        return None, notes, f"invalid notebook: {short(e)}"
    return nb, notes, None


def read_notebook(raw: bytes) -> tuple[object | None, str | None]:
    """(notebook, None) for a submitted file that reads as a notebook (version 4.5, code cells
    without outputs, sources as text), else (None, ``invalid notebook: <why>``)."""
    import nbformat

    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, "invalid notebook: not UTF-8 text"
    if not text.strip():
        return None, "invalid notebook: empty file"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        return None, f"invalid notebook: not JSON ({e.msg}, line {e.lineno})"
    except RecursionError:
        return None, "invalid notebook: JSON nested too deeply"
    if not isinstance(data, dict) or not isinstance(data.get("nbformat"), int):
        return None, "invalid notebook: JSON but not a notebook (no nbformat version)"
    if not isinstance(data.get("cells", data.get("worksheets")), list):
        return None, "invalid notebook: no list of cells"
    try:
        with warnings.catch_warnings():  # duplicate or missing cell ids: repaired later
            warnings.simplefilter("ignore")
            nb = nbformat.reads(text, as_version=4, capture_validation_error={})
    except Exception as e:  # nbformat raises several kinds on malformed notebooks
        return None, f"invalid notebook: {short(e)}"
    nb.nbformat, nb.nbformat_minor = 4, 5
    for cell in nb.cells:
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            return None, "invalid notebook: a cell of unknown type"
        if not isinstance(cell.get("metadata"), dict):
            cell["metadata"] = nbformat.NotebookNode()
        cell["source"] = cell_source(cell)
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    nb.cells = list(nb.cells)
    return nb, None


def _keep_last_markup(cells: list, release_cells: dict) -> list[str]:
    """Of cells sharing a grade id, only the last keeps its nbgrader markup (nbgrader's
    DeduplicateIds keeps the last too); markup of grade ids the release lacks is dropped."""
    last: dict[str, int] = {}
    for i, cell in enumerate(cells):
        meta = nbgrader_meta(cell)
        if "nbgrader" in cell["metadata"] and (meta is None or meta["grade_id"] not in release_cells):
            del cell["metadata"]["nbgrader"]  # not one of the assignment's cells
        elif meta is not None:
            last[meta["grade_id"]] = i
    dups = sorted({nbgrader_meta(c)["grade_id"] for i, c in enumerate(cells)
                   if nbgrader_meta(c) and last[nbgrader_meta(c)["grade_id"]] != i})
    for i, cell in enumerate(cells):
        meta = nbgrader_meta(cell)
        if meta and last[meta["grade_id"]] != i:
            del cell["metadata"]["nbgrader"]
    return [f"duplicate grade_id {gid} (the last copy was graded)" for gid in dups]


def _markup_as_released(cells: list, release_cells: dict, source_text: dict[str, str]) -> list[str]:
    """Every graded, solution or locked cell gets its released metadata back; edited locked cells
    and changed tags are noted."""
    edited, altered = [], []
    for cell in cells:
        meta = nbgrader_meta(cell)
        if meta is None:
            continue
        original = release_cells[meta["grade_id"]]
        if _tags(cell["metadata"]) != _tags(original.metadata):  # skip-execution, raises-exception ...
            altered.append(meta["grade_id"])
        # all of it as released: nbgrader's markup, and the tags (skip-execution, raises-exception),
        # execution and jupyter keys nbclient, nbgrader and nbconvert read; nothing of the student's
        cell["metadata"] = copy.deepcopy(original.metadata)
        unchanged = cell["source"] in (cell_source(original), source_text.get(meta["grade_id"]))
        if original.metadata["nbgrader"].get("locked") and (not unchanged or cell["cell_type"] != original.cell_type):
            edited.append(meta["grade_id"])
    notes = []
    if edited:
        notes.append("edited locked cells " + ", ".join(edited) + " (the originals were run)")
    if altered:
        notes.append("changed tags of graded cells " + ", ".join(altered) + " (the released ones were used)")
    return notes


def _restore_deleted(cells: list, release_cells: dict) -> list[str]:
    """The release's graded cells missing from ``cells`` put back: solution stubs right after the
    cell before them, tests and locked cells right before the cell after them."""
    order = list(release_cells)
    present = {nbgrader_meta(c)["grade_id"]: i for i, c in enumerate(cells) if nbgrader_meta(c)}
    inserts = []
    for k, gid in enumerate(order):
        if gid in present:
            continue
        before = [present[g] for g in order[:k] if g in present]
        after = [present[g] for g in order[k + 1:] if g in present]
        if release_cells[gid].metadata["nbgrader"].get("solution"):
            pos = before[-1] + 1 if before else (after[0] if after else len(cells))
        else:
            pos = after[0] if after else len(cells)
        restored = copy.deepcopy(release_cells[gid])
        restored["id"] = "restored-" + re.sub(r"[^A-Za-z0-9_-]", "-", gid)[:50]
        inserts.append((pos, k, restored))
    for pos, _, cell in sorted(inserts, key=lambda t: (t[0], t[1]), reverse=True):
        cells.insert(pos, cell)
    if not inserts:
        return []
    return ["restored deleted cells " + ", ".join(order[k] for _, k, _ in sorted(inserts, key=lambda t: t[1]))]


def _unique_ids(cells: list) -> None:
    """Every cell an id of its own that nbformat accepts."""
    seen_ids: set[str] = set()
    for i, cell in enumerate(cells):
        cid = cell.get("id")
        if not isinstance(cid, str) or cid in seen_ids or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", cid):
            cid = f"cell-{i}"
            while cid in seen_ids:
                cid += "-"
            cell["id"] = cid
        seen_ids.add(cid)


def short(error: BaseException, limit: int = 120) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."

