"""Execute the tslab notebooks and write static HTML reports (`npm run report`).

    python scripts/report.py [--out res/report] [--res-dir DIR] [--inline-plotly] [--timeout 900] [NOTEBOOK ...]

Runs every notebook (default: notebooks/[0-9]*.ipynb, in name order) top to bottom in the tslab kernel with
nbclient, from the notebooks folder, then writes OUT/NAME.html (nbconvert, lab template without CDN
scripts) and OUT/index.html, which links every report and says which results each used (your own, or the
committed lite reproduction). The executed notebooks are kept as OUT/NAME.ipynb. The reports share one copy
of plotly.js, OUT/plotly.min.js (the notebooks are told by $HAT_PLOTLY_SRC); --inline-plotly puts it into
every report instead, for single self-contained files. Nothing is loaded from the network either way.
A failing cell stops everything: its notebook, cell number, source and the cell's own error (and stderr)
are printed, and the exit status is 1. --res-dir sets HAT_RES_DIR for the kernel.
"""
import argparse
import html
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# what src/notebook/project.ts notebookResults says about the results a notebook draws
SOURCE = re.compile(r"\*\*Results: ([^*]+)\*\*,? ?([^\n]*)")
PLOTLY = ROOT / "node_modules" / "plotly.js-dist-min" / "plotly.min.js"


def results_used(nb):
    """The notebook's own statement of which results it drew (markdown outputs of notebookResults)."""
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text = out.get("data", {}).get("text/markdown", "")
            text = "".join(text) if isinstance(text, list) else text
            m = SOURCE.search(text)
            if m:
                found.append(f"{m.group(1)}, {m.group(2)}".rstrip(", ."))
    return found


def cell_failure(nb, index):
    """The readable error of a failed cell: error outputs, else its stderr (tslab reports compile errors there)."""
    cell = nb.cells[index]
    lines = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            lines.append(f"{out.get('ename', 'Error')}: {out.get('evalue', '')}")
            tb = "\n".join(out.get("traceback", []))
            if tb.strip():
                lines.append(ANSI.sub("", tb))
        elif out.get("output_type") == "stream" and out.get("name") == "stderr":
            lines.append(ANSI.sub("", out.get("text", "")).rstrip())
    return "\n".join(l for l in lines if l.strip()) or "(the kernel reported an error without a message)"


def title_of(nb, fallback):
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return fallback


def execute(path: Path, timeout: int, kernel: str):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel, resources={"metadata": {"path": str(path.parent)}}, allow_errors=False)
    current = {"index": -1, "since": 0.0}
    cells = []  # (cell number, seconds) of every code cell, to see where a report's time goes

    def on_cell_start(cell, cell_index):
        current["index"] = cell_index
        current["since"] = time.time()

    def on_cell_executed(cell, cell_index, **_):
        cells.append((cell_index + 1, round(time.time() - current["since"], 1)))

    client.on_cell_start = on_cell_start
    client.on_cell_executed = on_cell_executed
    started = time.time()
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as e:
        i = current["index"]
        src = nb.cells[i].source if 0 <= i < len(nb.cells) else ""
        detail = cell_failure(nb, i) if 0 <= i < len(nb.cells) else ""
        if isinstance(e, CellTimeoutError):
            detail = f"timed out after {timeout} s\n{detail}"
        elif isinstance(e, DeadKernelError):
            detail = f"the kernel died: {e}\n{detail}"
        head = "\n".join("    " + l for l in src.splitlines()[:12])
        raise SystemExit(f"\n[report] {path.name}: cell {i + 1} failed\n{head}\n--- error ---\n{detail}\n")
    return nb, time.time() - started, cells


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebooks", nargs="*", help="notebooks to run (default: notebooks/[0-9]*.ipynb)")
    ap.add_argument("--out", default=str(ROOT / "res" / "report"))
    ap.add_argument("--res-dir", help="results folder for the notebooks (sets HAT_RES_DIR)")
    ap.add_argument("--timeout", type=int, default=int(os.environ.get("HAT_CELL_TIMEOUT", "900")), help="seconds per cell")
    ap.add_argument("--kernel", default="tslab")
    ap.add_argument("--inline-plotly", action="store_true", help="put plotly.js into every report (single self-contained files)")
    args = ap.parse_args()
    if args.res_dir:
        os.environ["HAT_RES_DIR"] = str(Path(args.res_dir).resolve())
    paths = [Path(p).resolve() for p in args.notebooks] or sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
    if not paths:
        raise SystemExit("[report] no notebooks found")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.inline_plotly:
        os.environ.pop("HAT_PLOTLY_SRC", None)
        (out / "plotly.min.js").unlink(missing_ok=True)
    else:
        if not PLOTLY.exists():
            raise SystemExit(f"[report] {PLOTLY} is missing: run npm ci")
        shutil.copyfile(PLOTLY, out / "plotly.min.js")
        os.environ["HAT_PLOTLY_SRC"] = "plotly.min.js"
    exporter = HTMLExporter(template_name="hat-report", extra_template_basedirs=[str(ROOT / "scripts" / "nbconvert")])
    entries = []
    total = time.time()
    for path in paths:
        print(f"[report] running {path.name} ...", file=sys.stderr, flush=True)
        nb, seconds, cells = execute(path, args.timeout, args.kernel)
        nbformat.write(nb, out / path.name)
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": path.stem}})
        (out / f"{path.stem}.html").write_text(body, encoding="utf-8")
        title = title_of(nb, path.stem)
        entries.append((path.stem, title, seconds, results_used(nb), cells))
        print(f"[report] {path.name}: {seconds:.1f} s -> {out / (path.stem + '.html')}", file=sys.stderr, flush=True)
    def used(sources):
        code = lambda s: re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(s))
        return "".join(f"<br><small>results: {code(s)}</small>" for s in sources) or "<br><small>results: none (live runs only)</small>"

    items = "\n".join(
        f'<li><a href="{html.escape(stem)}.html">{html.escape(title)}</a> <small>({html.escape(stem)}, {sec:.0f} s)</small>{used(src)}</li>'
        for stem, title, sec, src, _ in entries
    )
    index = (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>hat-ts report</title>"
        "<style>body{font-family:sans-serif;max-width:50em;margin:2em auto}li{margin:.4em 0}</style></head><body>"
        "<h1>hat-ts: the paper's figures and tables</h1>"
        f"<p>Notebooks executed on {time.strftime('%Y-%m-%d %H:%M')}. Each draws your own results from <code>{html.escape(os.environ.get('HAT_RES_DIR', str(ROOT / 'res')))}</code> when there are any, else the committed lite reproduction <code>res/reference/lite</code>; below, which.</p>"
        f"<ol>{items}</ol></body></html>\n"
    )
    (out / "index.html").write_text(index, encoding="utf-8")
    json.dump({"notebooks": [{"name": s, "title": t, "seconds": round(sec, 1), "results": src, "cells": dict(c)} for s, t, sec, src, c in entries]}, open(out / "timings.json", "w"), indent=1)
    print(f"[report] {len(entries)} notebooks in {time.time() - total:.0f} s; open {out / 'index.html'}", file=sys.stderr)


if __name__ == "__main__":
    main()
