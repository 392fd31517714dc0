#!/usr/bin/env bash
# Bench-local PyTorch (CPU) for bench/torch/steps.py: creates bench/torch/.venv and installs torch into it
# from pip's configured package index / wheel directory.
#
#   bash bench/torch/setup.sh
#
# Installs numpy too (torch warns at import without it). Idempotent: does nothing when .venv already
# imports torch and numpy. Exit status 0 = ready, 3 = torch could not be
# installed (a single line on stderr says why; the benchmark skips PyTorch with that message).
# TORCH_SPEC overrides the requirement (default torch==2.13.*); PYTHON the interpreter (default python3).
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
py="${PYTHON:-python3}"
spec="${TORCH_SPEC:-torch==2.13.*}"
log="$here/.venv-setup.log"

fail() { echo "pytorch unavailable: $*" >&2; exit 3; }

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import torch, numpy' >/dev/null 2>&1; then
  echo "bench/torch/.venv ready (torch $("$venv/bin/python" -c 'import torch; print(torch.__version__)' 2>/dev/null))"
  exit 0
fi

command -v "$py" >/dev/null 2>&1 || fail "$py not found"
if [ ! -x "$venv/bin/python" ]; then
  rm -rf "$venv"
  "$py" -m venv "$venv" >"$log" 2>&1 || { rm -rf "$venv"; fail "'$py -m venv' failed ($(tail -n 1 "$log" | cut -c1-200))"; }
fi
# --only-binary: never try to build torch from source; pip's configuration supplies the index/wheels.
if ! "$venv/bin/python" -m pip install --retries 1 --only-binary=:all: "$spec" numpy >>"$log" 2>&1; then
  reason="$( (grep -E 'No matching distribution|Could not find a version|Cannot install' "$log" || grep -E '^ERROR' "$log") | tail -n 1 | cut -c1-200)"
  fail "pip install '$spec' failed (${reason:-see $log})"
fi
"$venv/bin/python" -c 'import torch, numpy' >>"$log" 2>&1 || fail "torch installed but does not import ($(tail -n 1 "$log" | cut -c1-200))"
rm -f "$log"
echo "bench/torch/.venv ready (torch $("$venv/bin/python" -c 'import torch; print(torch.__version__)' 2>/dev/null))"
