"""A cap, in bytes and in outputs, on what a student's kernel can put into the autograded notebook.

Owns: :class:`CappedExecute`, nbgrader's ``Execute`` preprocessor with a budget
per notebook. It is imported by nbgrader's process only, through the course's
``nbgrader_config.py`` (:func:`labkit.course.nbgrader.capped_execute_config`).

Where the cap sits, and why there: the outputs come from the kernel to
nbgrader over ZMQ, and nbclient appends them to the notebook in nbgrader's own
process, outside the sandbox. A cap inside the kernel (a wrapped sys.stdout)
could be undone by the student's code, and nbgrader's ``LimitOutput`` counts
lines, after the notebook has been built in memory. Here every message is
weighed as it arrives, by what it *keeps* in the notebook (:meth:`CappedExecute.cost`):

- an output: its content as JSON (data, metadata, text, traceback) and
  :data:`OVERHEAD` bytes for the output itself, so that many tiny outputs weigh too;
- a display id: nbclient copies every ``display_data`` and ``update_display_data``
  of an id into every output that shares it, so a message of size s filling
  n outputs costs n x s (less what those outputs held before);
- widget state (``comm_open``, ``comm_msg``): nbclient keeps the last value of
  each state key and each binary buffer (base64) in ``metadata.widgets``: each
  costs its size, less the value it replaces.

Past ``max_output_bytes`` (for the whole notebook) messages are dropped, with
one note in the cell and the number of bytes left out in the notebook's
metadata (``labkit.output_cut``), which labkit turns into a note in the status.
Past ``max_outputs`` output messages (kept or dropped) the cell is also
interrupted, once: each message costs nbgrader and the kernel time, and a loop
of tiny outputs would otherwise run the cell into its timeout and lose what the
notebook had (the cell ends with a KeyboardInterrupt; the next cells run). Errors are never dropped: nbgrader scores a test cell by whether it
has an error output, so a student who floods the output first must not turn
failing tests into passing ones; past the budget an error keeps its name and
the start of its message (one per cell).
"""
from __future__ import annotations

import asyncio
import json

from nbclient.util import ensure_async
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Integer

OUTPUTS = ("stream", "display_data", "execute_result", "error")  # messages that append an output
WIDGETS = ("comm_open", "comm_msg")                               # widget state, kept in the metadata
ERROR_TEXT = 1000  # bytes of an error's message kept past the budget
OVERHEAD = 100     # bytes an output takes in the notebook's JSON besides its content (keys, indentation)


def _size(value) -> int:
    """Bytes of ``value`` as JSON (non-ASCII escaped: never less than what nbformat writes)."""
    return len(json.dumps(value, default=str))


class CappedExecute(Execute):
    """nbgrader's Execute, keeping at most ``max_output_bytes`` and ``max_outputs`` per notebook
    (errors always)."""

    max_output_bytes = Integer(10 << 20, help="bytes of output a notebook may keep, all cells together").tag(config=True)
    max_outputs = Integer(2_000, help="output messages a notebook may send, all cells together (then the "
                          "cell is interrupted)").tag(config=True)

    def preprocess(self, nb, resources=None, *args, **kwargs):
        self._used, self._sent, self._cut, self._noted, self._errors = 0, 0, 0, set(), set()
        self._display: dict[str, int] = {}                 # display id -> bytes of one copy of it
        self._widget: dict[tuple, int] = {}                # (comm id, state key or buffer path) -> bytes kept
        nb, resources = super().preprocess(nb, resources, *args, **kwargs)
        if self._cut:
            nb.metadata.setdefault("labkit", {})["output_cut"] = self._cut
        return nb, resources

    def _copies(self, display_id: str) -> int:
        """Outputs that hold ``display_id`` now (nbclient's map of them)."""
        return sum(len(indices) for indices in self._display_id_map.get(display_id, {}).values())

    def cost(self, msg_type: str, content: dict, buffers: list) -> tuple[int, int, dict]:
        """(bytes, outputs, sizes to remember) that a message adds to the notebook."""
        if msg_type in WIDGETS:
            data = content.get("data") if isinstance(content.get("data"), dict) else {}
            state = data.get("state")
            if not isinstance(state, dict):
                return 0, 0, {}  # a custom message: nbclient keeps nothing of it
            comm = str(content.get("comm_id"))
            sizes = {(comm, "state", str(key)): _size(value) for key, value in state.items()}
            paths = data.get("buffer_paths") or []
            for path, buf in zip(paths, buffers or []):
                sizes[(comm, "buffer", _size(path))] = len(buf) * 4 // 3 + OVERHEAD + _size(path)
            return sum(new - self._widget.get(key, 0) for key, new in sizes.items()), 0, sizes
        transient = content.get("transient")
        display_id = transient.get("display_id") if isinstance(transient, dict) else None
        payload = {k: v for k, v in content.items() if k not in ("transient", "execution_count")}
        size = _size(payload)
        if not display_id or msg_type not in ("display_data", "execute_result", "update_display_data"):
            return (size + OVERHEAD, 1, {}) if msg_type in OUTPUTS else (0, 0, {})
        copies, old = self._copies(display_id), self._display.get(display_id, 0)
        if msg_type == "update_display_data":  # fills the outputs that share the id, adds none
            return ((size - old) * copies, 0, {display_id: size}) if copies else (0, 0, {})
        return size + OVERHEAD + (size - old) * copies, 1, {display_id: size}

    def process_message(self, msg, cell, cell_index):
        msg_type = msg.get("msg_type") or msg.get("header", {}).get("msg_type")
        content = msg.get("content") or {}
        if msg_type not in OUTPUTS + WIDGETS + ("update_display_data",):
            return super().process_message(msg, cell, cell_index)
        size, outputs, sizes = self.cost(msg_type, content, msg.get("buffers"))
        self._sent += outputs
        if self._sent == self.max_outputs + 1:  # a flood of outputs: stop the cell (once)
            asyncio.ensure_future(ensure_async(self.km.interrupt_kernel()))
            cell.outputs.append(NotebookNode(output_type="stream", name="stderr", text=(
                f"[labkit: more than {self.max_outputs} outputs per notebook: the cell was interrupted]\n")))
        if self._used + size <= self.max_output_bytes and self._sent <= self.max_outputs:
            self._used += size
            (self._widget if msg_type in WIDGETS else self._display).update(sizes)
            if msg_type == "error":
                self._errors.add(cell_index)
            return super().process_message(msg, cell, cell_index)
        self._cut += max(size, OVERHEAD)
        if cell_index not in self._noted:
            self._noted.add(cell_index)
            cell.outputs.append(NotebookNode(
                output_type="stream", name="stderr",
                text=f"[labkit: output past {self.max_output_bytes >> 20} MB per notebook left out]\n"))
        if msg_type != "error" or cell_index in self._errors:
            return None
        self._errors.add(cell_index)
        msg = dict(msg, content={"ename": str(content.get("ename", "Error"))[:200],
                                 "evalue": str(content.get("evalue", ""))[:ERROR_TEXT], "traceback": []})
        return super().process_message(msg, cell, cell_index)
