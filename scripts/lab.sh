#!/usr/bin/env bash
# `npm run lab`: JupyterLab on the notebooks, with this project's tslab kernel.
# `npm run report [-- report.py options]`: execute every notebook, write res/report/*.html and index.html.
# Both first make sure the npm packages and the notebook environment are there (scripts/setup.sh,
# scripts/setup-lab.sh; quick when done). Extra arguments go to `jupyter lab` or scripts/report.py.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
cmd="${1:-lab}"
shift || true
bash scripts/setup.sh
env_dir="$(bash scripts/setup-lab.sh | tail -n 1)"
export JUPYTER_PATH="$env_dir/share/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}"
export PATH="$root/node_modules/.bin:$PATH"
root_flag=()
if [ "$(id -u)" = 0 ]; then root_flag=(--allow-root); fi
case "$cmd" in
  lab) exec "$env_dir/bin/jupyter" lab "${root_flag[@]}" --ServerApp.root_dir="$root" --LabApp.default_url=/lab/tree/notebooks/00-quick-start.ipynb "$@" ;;
  report) exec "$env_dir/bin/python" scripts/report.py "$@" ;;
  *) echo "usage: scripts/lab.sh lab|report [args]" >&2; exit 2 ;;
esac
