"""What the student saw: each submitted notebook kept with its outputs, capped, for the marking page.

Owns: :data:`OUTPUTS_DIR` and :func:`keep_outputs`. Intake's repair empties every code cell's
outputs (nbgrader runs the notebook again, in grading mode), so the numbers and figures a written
answer talks about exist only in the file as submitted. ``<course>/labkit-outputs/<student>/
<notebook>.ipynb`` keeps them: the submitted cells, scripts dropped (JavaScript outputs and widget
state), outputs kept up to :data:`MAX_OUTPUT_BYTES` per notebook. Whatever is kept is still
hostile: the marking page renders it through ``labkit.course.render``.
"""
from __future__ import annotations

import json
from pathlib import Path

OUTPUTS_DIR = "labkit-outputs"
MAX_OUTPUT_BYTES = 4 << 20  # of outputs per notebook (a few figures)
_ACTIVE = ("application/javascript", "text/javascript", "application/vnd.jupyter.widget-view+json")


def _output(out: dict) -> dict:
    if isinstance(out.get("data"), dict):
        out = {**out, "data": {k: v for k, v in out["data"].items() if k not in _ACTIVE}}
    return out


def capped_cells(cells: list, max_bytes: int = MAX_OUTPUT_BYTES) -> list[dict]:
    """``cells`` with the outputs of code cells kept until ``max_bytes`` of them; then a note."""
    used, kept = 0, []
    for cell in cells:
        if not isinstance(cell, dict):
            continue
        cell = {k: v for k, v in cell.items() if k in ("cell_type", "id", "metadata", "source", "outputs")}
        if cell.get("cell_type") == "code":
            outputs = []
            for out in cell.get("outputs") or []:
                if not isinstance(out, dict):
                    continue
                out = _output(out)
                size = len(json.dumps(out))
                if used + size > max_bytes:
                    outputs.append({"output_type": "stream", "name": "stderr",
                                    "text": f"[labkit: outputs over {max_bytes >> 20} MB in this notebook left out]\n"})
                    used = max_bytes + 1
                    break
                used += size
                outputs.append(out)
            cell["outputs"] = outputs
        kept.append(cell)
    return kept


def keep_outputs(raw: bytes, dest: Path, max_bytes: int = MAX_OUTPUT_BYTES) -> bool:
    """Write the submitted notebook ``raw`` with its outputs capped to ``dest``; False (nothing
    written) when it is no notebook's JSON."""
    try:
        data = json.loads(raw.decode("utf-8-sig"))
        cells = data["cells"] if isinstance(data, dict) else None
    except (ValueError, KeyError, RecursionError):
        return False
    if not isinstance(cells, list):
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps({"cells": capped_cells(cells, max_bytes), "metadata": {}, "nbformat": 4,
                                "nbformat_minor": 5}), encoding="utf-8")
    return True
