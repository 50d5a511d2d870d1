"""A cap, in bytes, on what a student's kernel can put into the autograded notebook.

Owns: :class:`CappedExecute`, nbgrader's ``Execute`` preprocessor with a byte
budget per notebook. It is imported by nbgrader's process only, through the
course's ``nbgrader_config.py`` (:func:`labkit.course.nbgrader.capped_execute_config`).

Where the cap sits, and why there: the outputs come from the kernel to
nbgrader over ZMQ, and nbclient appends them to the notebook in nbgrader's own
process, outside the sandbox. A cap inside the kernel (a wrapped sys.stdout)
could be undone by the student's code, and nbgrader's ``LimitOutput`` counts
lines, after the notebook has been built in memory. Here every output message
is weighed as it arrives; past ``max_output_bytes`` (for the whole notebook)
outputs are dropped, with one note in the cell and the number of bytes left
out in the notebook's metadata (``labkit.output_cut``), which labkit turns
into a note in the status. Errors are never dropped: nbgrader scores a test
cell by whether it has an error output, so a student who floods the output
first must not turn failing tests into passing ones; past the budget an
error keeps its name and the start of its message (one per cell).
"""
from __future__ import annotations

from nbformat import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Integer

# messages that add to the notebook (comm messages: widget state, kept in its metadata)
WEIGHED = ("stream", "display_data", "update_display_data", "execute_result", "error", "comm_open", "comm_msg")
ERROR_TEXT = 1000  # bytes of an error's message kept past the budget


def _weight(content: dict) -> int:
    """Bytes of an output message's payload (text, data, traceback)."""
    total = len(str(content.get("text", ""))) + len(str(content.get("evalue", "")))
    data = content.get("data") or {}
    total += sum(len(str(value)) for value in data.values()) if isinstance(data, dict) else len(str(data))
    total += sum(len(str(line)) for line in content.get("traceback") or [])
    return total


class CappedExecute(Execute):
    """nbgrader's Execute, keeping at most ``max_output_bytes`` of output per notebook (errors always)."""

    max_output_bytes = Integer(10 << 20, help="bytes of output a notebook may keep, all cells together").tag(config=True)

    def preprocess(self, nb, resources=None, *args, **kwargs):
        self._used, self._cut, self._noted = 0, 0, set()
        nb, resources = super().preprocess(nb, resources, *args, **kwargs)
        if self._cut:
            nb.metadata.setdefault("labkit", {})["output_cut"] = self._cut
        return nb, resources

    def process_message(self, msg, cell, cell_index):
        msg_type = msg.get("msg_type") or msg.get("header", {}).get("msg_type")
        content = msg.get("content") or {}
        if msg_type in WEIGHED:
            size = _weight(content)
            if self._used + size > self.max_output_bytes:
                self._cut += size
                if cell_index not in self._noted:
                    self._noted.add(cell_index)
                    cell.outputs.append(NotebookNode(
                        output_type="stream", name="stderr",
                        text=f"[labkit: output past {self.max_output_bytes >> 20} MB per notebook left out]\n"))
                if msg_type != "error" or any(o.get("output_type") == "error" for o in cell.outputs):
                    return None
                msg = dict(msg, content={"ename": str(content.get("ename", "Error"))[:200],
                                         "evalue": str(content.get("evalue", ""))[:ERROR_TEXT], "traceback": []})
            else:
                self._used += size
        return super().process_message(msg, cell, cell_index)

