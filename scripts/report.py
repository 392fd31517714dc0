"""Execute the tslab notebooks and write static HTML reports (`npm run report`).

    python scripts/report.py [--out res/report] [--res-dir DIR] [--timeout 900] [NOTEBOOK ...]

Runs every notebook (default: notebooks/[0-9]*.ipynb, in name order) top to bottom in the tslab kernel with
nbclient, from the notebooks folder, then writes OUT/NAME.html (nbconvert, lab template without CDN
scripts: the Plotly figures are inlined by the notebooks) and OUT/index.html. The executed notebooks are
kept as OUT/NAME.ipynb. A failing cell stops everything: its notebook, cell number, source and the cell's
own error (and stderr) are printed, and the exit status is 1. --res-dir sets HAT_RES_DIR for the kernel.
"""
import argparse
import html
import json
import os
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


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
    current = {"index": -1}

    def on_cell_start(cell, cell_index):
        current["index"] = cell_index

    client.on_cell_start = on_cell_start
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
    return nb, time.time() - started


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebooks", nargs="*", help="notebooks to run (default: notebooks/[0-9]*.ipynb)")
    ap.add_argument("--out", default=str(ROOT / "res" / "report"))
    ap.add_argument("--res-dir", help="results folder for the notebooks (sets HAT_RES_DIR)")
    ap.add_argument("--timeout", type=int, default=int(os.environ.get("HAT_CELL_TIMEOUT", "900")), help="seconds per cell")
    ap.add_argument("--kernel", default="tslab")
    args = ap.parse_args()
    if args.res_dir:
        os.environ["HAT_RES_DIR"] = str(Path(args.res_dir).resolve())
    paths = [Path(p).resolve() for p in args.notebooks] or sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
    if not paths:
        raise SystemExit("[report] no notebooks found")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name="hat-report", extra_template_basedirs=[str(ROOT / "scripts" / "nbconvert")])
    entries = []
    total = time.time()
    for path in paths:
        print(f"[report] running {path.name} ...", file=sys.stderr, flush=True)
        nb, seconds = execute(path, args.timeout, args.kernel)
        nbformat.write(nb, out / path.name)
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": path.stem}})
        (out / f"{path.stem}.html").write_text(body, encoding="utf-8")
        title = title_of(nb, path.stem)
        entries.append((path.stem, title, seconds))
        print(f"[report] {path.name}: {seconds:.1f} s -> {out / (path.stem + '.html')}", file=sys.stderr, flush=True)
    items = "\n".join(f'<li><a href="{html.escape(stem)}.html">{html.escape(title)}</a> <small>({html.escape(stem)}, {sec:.0f} s)</small></li>' for stem, title, sec in entries)
    index = (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>hat-ts report</title>"
        "<style>body{font-family:sans-serif;max-width:50em;margin:2em auto}li{margin:.4em 0}</style></head><body>"
        "<h1>hat-ts: the paper's figures and tables</h1>"
        f"<p>Notebooks executed on {time.strftime('%Y-%m-%d %H:%M')} with results from <code>{html.escape(os.environ.get('HAT_RES_DIR', str(ROOT / 'res')))}</code>.</p>"
        f"<ol>{items}</ol></body></html>\n"
    )
    (out / "index.html").write_text(index, encoding="utf-8")
    json.dump({"notebooks": [{"name": s, "title": t, "seconds": round(sec, 1)} for s, t, sec in entries]}, open(out / "timings.json", "w"), indent=1)
    print(f"[report] {len(entries)} notebooks in {time.time() - total:.0f} s; open {out / 'index.html'}", file=sys.stderr)


if __name__ == "__main__":
    main()
