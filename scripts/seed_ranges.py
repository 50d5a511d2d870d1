"""Run the solution notebooks with several seeds and record the numbers their model answers quote.

    LABKIT_DATA=../shared/data .venv/bin/python scripts/seed_ranges.py            # seeds 0..4 -> docs/seed_ranges.json
    LABKIT_DATA=../shared/data .venv/bin/python scripts/seed_ranges.py --seeds 3 --out /tmp/r.json
    .venv/bin/python scripts/seed_ranges.py --docs      # only docs/models.md's table, from docs/seed_ranges.json

Each notebook runs as a student runs it (nbclient, the lab's full budget: all 60000
training images, 20 epochs), with its first line ``SEED = 0`` set to each seed in
turn: the seed of the initial parameters, of the Monte Carlo and reparameterisation
noise and of the minibatch order. After the last cell, one extra cell (``MEASURES``
below) reads the notebook's own variables, the ones its printed outputs show, and
prints them as JSON. 1_pca has no randomness: it runs once.

The JSON holds, for every quantity, its value with each seed and its range; the
model answers quote these ranges (``<span data-key="...">``) and
tests/test_answer_key.py checks the quotes against them and against a fresh run of
the notebooks with seed 0. Rerun this script whenever a notebook's code changes.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
DEFAULT_OUT = ROOT / "docs" / "seed_ranges.json"
MODELS_MD = ROOT / "docs" / "models.md"
TABLE_BEGIN = "<!-- seed-ranges table: written by scripts/seed_ranges.py --docs from docs/seed_ranges.json -->"
TABLE_END = "<!-- end of the seed-ranges table -->"
MARK = "ANSWER-KEY-VALUES "
SEED_LINE = re.compile(r"^SEED = 0\b", re.MULTILINE)

# Python run in each notebook's kernel after its last cell: a dict {quantity: number} named _values.
_ENCODING_STATS = '''
def _encoding_stats(prefix, Z):
    Z = Z.double().cpu()
    variances = torch.linalg.eigvalsh(torch.cov(Z.T)).flip(0).tolist()
    return {f"{prefix}_enc_var1": variances[0], f"{prefix}_enc_var2": variances[1],
            f"{prefix}_enc_abs_max": Z.abs().max().item(),
            f"{prefix}_enc_z1_min": Z[:, 0].min().item(), f"{prefix}_enc_z1_max": Z[:, 0].max().item(),
            f"{prefix}_enc_z2_min": Z[:, 1].min().item(), f"{prefix}_enc_z2_max": Z[:, 1].max().item(),
            f"{prefix}_enc_inside3_pct": 100 * (Z.abs() <= 3).all(dim=1).double().mean().item()}

def _per_digit(prefix, errors_per_digit):
    e = errors_per_digit.double().cpu()
    ranks = e.argsort().argsort() + 1   # 1: the lowest error
    out = {f"{prefix}_digit_error_{d}": e[d].item() for d in range(10)}
    out.update({f"{prefix}_digit_rank_{d}": int(ranks[d]) for d in range(10)})
    return out
'''

MEASURES = {
    "1_pca": _ENCODING_STATS + '''
_values = {"pca_test_error": pca_error, "mean_image_error": mean_image_error}
_values.update(_per_digit("pca", per_digit))
''',
    "2_ppca": _ENCODING_STATS + '''
_values = {"ppca_iterations": iterations, "ppca_trained_ll": ll_trained, "ppca_closed_ll": ll_closed_form,
           "ppca_test_error": ppca_error, "pca_test_error": pca_error, "ppca_closed_error": closed_form_error,
           "ppca_error_gap": ppca_error - pca_error, "ppca_shrinkage_gap": closed_form_error - pca_error,
           "ppca_sigma2": ppca.sigma2.item(), "ppca_closed_sigma2": closed_form.sigma2.item(),
           "pca_train_var1": pca.explained_variance[0].item(), "pca_train_var2": pca.explained_variance[1].item()}
for _name, _prefix in (("PCA", "pca"), ("PPCA (yours)", "ppca"), ("PPCA (closed form)", "ppca_closed")):
    _values.update(_encoding_stats(_prefix, encodings[_name]))
_values.update(_per_digit("ppca", per_digit["PPCA"]))
''',
    "3_vae": _ENCODING_STATS + '''
_pca_error = errors["PCA"].mean().item()
_values = {"vae_test_error": vae_error, "vae_pca_error": _pca_error, "vae_ppca_error": errors["PPCA"].mean().item(),
           "vae_reduction_pct": 100 * (1 - vae_error / _pca_error),
           "nonlinear_test_cost": history_nonlinear.test_loss[-1], "vae_test_cost": history_vae.test_loss[-1],
           "nonlinear_minus_vae_test_cost": history_nonlinear.test_loss[-1] - history_vae.test_loss[-1],
           "nonlinear_sigma2": nonlinear.sigma2.item(), "vae_sigma2": vae.sigma2.item()}
_values.update(_encoding_stats("vae", Z_test))
_values.update(_encoding_stats("vae_ppca", Z_ppca_test))
_values.update(_per_digit("vae", per_digit["VAE"]))
_values["vae_closest_pairs"] = [list(p) for p in closest_digit_pairs(metrics.per_digit_mean(Z_test, y_test).cpu(), k=3)]
''',
}
RANDOM = ("2_ppca", "3_vae")  # 1_pca has no randomness


def kernel_env() -> dict:
    """The kernel's environment: the full lab (not the grading budget), no GUI backend, and one
    CPU thread: the same numbers on any machine with torch's CPU kernels, and no threads that
    wait for each other when several notebooks (or several people) share the cores."""
    env = {k: v for k, v in os.environ.items() if k != "LABKIT_GRADING"}
    env.update(MPLBACKEND="Agg", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def execute(name: str, seed: int = 0, timeout: int = 1800, allow_errors: bool = False):
    """Run solutions/<name>.ipynb with SEED = seed; returns (executed notebook, {quantity: value}).
    ``allow_errors``: a failing cell keeps its error output and the next cells still run (as
    nbval runs them); the values are then None when the measuring cell failed too."""
    import nbformat
    from jupyter_client import KernelManager
    from nbclient import NotebookClient

    nb = nbformat.read(SOLUTIONS / f"{name}.ipynb", as_version=4)
    if seed != 0:
        setup = next((c for c in nb.cells if c.cell_type == "code" and SEED_LINE.search(c.source)), None)
        if setup is None:
            raise ValueError(f"{name}: no line 'SEED = 0' to change")
        setup.source = SEED_LINE.sub(f"SEED = {seed}", setup.source, count=1)
    extra = MEASURES[name] + f'\nimport json as _json\nprint({MARK!r} + _json.dumps(_values))\n'
    nb.cells.append(nbformat.v4.new_code_cell(extra))
    # IPC sockets in a private folder, not TCP ports on localhost: on a shared machine another
    # program's client could otherwise reach this kernel (it happened) and run its code in it.
    with tempfile.TemporaryDirectory(prefix="labkit-kernel-") as sockets:
        km = KernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(sockets, "kernel"))
        client = NotebookClient(nb, km=km, timeout=timeout, allow_errors=allow_errors,
                                resources={"metadata": {"path": str(SOLUTIONS)}})
        # cleanup_kc: nbclient shuts down only the kernels of managers it made itself; without it
        # the kernel (busy at ~10% of a core) outlived the execution as long as its process did
        with client.setup_kernel(env=kernel_env(), cleanup_kc=True):
            for index, cell in enumerate(nb.cells):
                if cell.cell_type == "code":
                    client.execute_cell(cell, index)
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("output_type") == "stream")
    line = next((l for l in text.splitlines() if l.startswith(MARK)), None)
    nb.cells.pop()
    return nb, json.loads(line[len(MARK):]) if line is not None else None


def _timed(name: str, seed: int, cache: Path | None = None) -> tuple[dict, float]:
    """execute(name, seed)'s values and its wall time; kept in cache/<name>-<seed>.json when a cache is given."""
    saved = cache / f"{name}-{seed}.json" if cache else None
    if saved and saved.exists():
        record = json.loads(saved.read_text())
        return record["values"], record["seconds"]
    t0 = time.perf_counter()
    values = execute(name, seed)[1]
    took = round(time.perf_counter() - t0, 1)
    if saved:
        saved.write_text(json.dumps({"values": values, "seconds": took}))
    return values, took


def measure(jobs: list[tuple[str, int]], workers: int = 2, cache: Path | None = None, log=None) -> dict:
    """Run every (notebook, seed) of jobs, ``workers`` at a time: {(notebook, seed): (values, seconds)}."""
    out = {}
    with ProcessPoolExecutor(max_workers=workers) as pool:  # one kernel per worker, one thread each
        futures = {pool.submit(_timed, name, seed, cache): (name, seed) for name, seed in jobs}
        for future in as_completed(futures):
            out[futures[future]] = future.result()
            if log:
                log(f"{futures[future][0]} seed {futures[future][1]}: {out[futures[future]][1]} s")
    return out


def summarise(runs: dict[int, dict]) -> dict:
    """{seed: {quantity: value}} -> {quantity: {"values": [...], "min": .., "max": ..}} (numbers only)."""
    seeds = sorted(runs)
    keys = sorted({k for values in runs.values() for k in values})
    out = {}
    for key in keys:
        values = [runs[s][key] for s in seeds if key in runs[s]]
        entry = {"values": values}
        if all(isinstance(v, (int, float)) for v in values):
            entry.update(min=min(values), max=max(values))
        out[key] = entry
    return out


# docs/models.md's "How much the numbers vary": (label, [(quantity, sign, decimals, unit)]); a row with two
# quantities lists both ranges, joined by "and". sign -1 shows the negated quantity (a cost as an ELBO).
DOC_ROWS = [
    ("VAE test reconstruction error (3_vae)", [("vae_test_error", 1, 1, "")]),
    ("VAE error below PCA's (3_vae)", [("vae_reduction_pct", 1, 0, " %")]),
    ("VAE test ELBO after training, the negative of its final test cost (3_vae)", [("vae_test_cost", -1, 1, "")]),
    ("nonlinear model's test log-likelihood estimate (K = 100), the negative of its final test cost (3_vae)",
     [("nonlinear_test_cost", -1, 1, "")]),
    ("gradient-trained PPCA test error (2_ppca)", [("ppca_test_error", 1, 2, "")]),
    ("gradient-trained PPCA test log-likelihood (2_ppca)", [("ppca_trained_ll", 1, 1, "")]),
    ("variances of the trained PPCA's test encodings, z1 and z2 (2_ppca)",
     [("ppca_enc_var1", 1, 2, ""), ("ppca_enc_var2", 1, 2, "")]),
    ("variances of the VAE's test encodings, z1 and z2 (3_vae)", [("vae_enc_var1", 1, 2, ""), ("vae_enc_var2", 1, 2, "")]),
]


def _span(entry: dict, sign: int, decimals: int, unit: str) -> str:
    low, high = sorted((sign * entry["min"], sign * entry["max"]))
    return f"{low:.{decimals}f}–{high:.{decimals}f}{unit}"


def ranges_table(payload: dict) -> str:
    """The Markdown table of DOC_ROWS from a seed_ranges.json payload, between its two marker lines."""
    q, seeds = payload["quantities"], payload["config"]["seeds"]
    lines = [TABLE_BEGIN, "", f"| quantity (notebook) | range over seeds {seeds[0]}–{seeds[-1]} |", "| --- | ---: |"]
    for label, parts in DOC_ROWS:
        lines.append(f"| {label} | " + " and ".join(_span(q[key], *fmt) for key, *fmt in parts) + " |")
    return "\n".join(lines + ["", TABLE_END])


def write_docs_table(payload: dict, path: Path = MODELS_MD) -> bool:
    """Replace the table between the markers in docs/models.md; True when the file changed."""
    text = path.read_text()
    start, end = text.find(TABLE_BEGIN), text.find(TABLE_END)
    if start < 0 or end < start:
        raise SystemExit(f"{path}: the seed-ranges table markers are missing ({TABLE_BEGIN!r} ... {TABLE_END!r})")
    new = text[:start] + ranges_table(payload) + text[end + len(TABLE_END):]
    path.write_text(new)
    return new != text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=5, help="how many seeds, 0..N-1 (at least 5 for docs/seed_ranges.json)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--notebooks", nargs="*", default=["1_pca", "2_ppca", "3_vae"])
    p.add_argument("--workers", type=int, default=2, help="notebooks run at the same time (one CPU thread each)")
    p.add_argument("--cache", type=Path, default=None,
                   help="folder that keeps each run's numbers (<notebook>-<seed>.json): an interrupted run resumes, "
                        "and several runs of the script can share the work")
    p.add_argument("--only", nargs="*", default=None, metavar="NOTEBOOK:SEED",
                   help="run only these jobs (e.g. 3_vae:0 3_vae:1) and write nothing but the cache")
    p.add_argument("--docs", action="store_true",
                   help="only rewrite docs/models.md's table of ranges from the existing --out file (no notebook runs)")
    args = p.parse_args(argv)
    if args.docs:
        changed = write_docs_table(json.loads(args.out.read_text()))
        print(f"{MODELS_MD}: {'rewritten' if changed else 'already up to date'}", file=sys.stderr)
        return 0
    import torch

    runs: dict[int, dict] = {}
    seconds: dict[str, dict[str, float]] = {}
    # the longest first, so that the two workers finish together
    jobs = [(name, seed) for name in sorted(args.notebooks, reverse=True) for seed in range(args.seeds if name in RANDOM else 1)]
    if args.only is not None:
        jobs = [(j.split(":")[0], int(j.split(":")[1])) for j in args.only]
    if args.cache:
        args.cache.mkdir(parents=True, exist_ok=True)
    done = measure(jobs, args.workers, args.cache, log=lambda line: print(line, file=sys.stderr, flush=True))
    for (name, seed), (values, took) in sorted(done.items()):
        seconds.setdefault(name, {})[str(seed)] = took
        runs.setdefault(seed, {}).update(values)
    if args.only is not None:
        return 0
    payload = {
        "about": "Numbers the solution notebooks print, with the lab's full budget, for seeds 0..N-1 (SEED = s in the "
                 "notebook's first cell). Written by scripts/seed_ranges.py; read by tests/test_answer_key.py.",
        "config": {"seeds": list(range(args.seeds)), "torch": torch.__version__, "threads_per_notebook": 1,
                   "python": platform.python_version(), "machine": platform.machine(), "device": "cpu"
                   if not torch.cuda.is_available() else "cuda", "notebook_seconds": seconds},
        "quantities": summarise(runs),
    }
    args.out.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    if args.out == DEFAULT_OUT:
        write_docs_table(payload)
        print(f"wrote the table of ranges in {MODELS_MD}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
