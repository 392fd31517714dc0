#!/usr/bin/env bash
# The notebooks' environment, project-local and idempotent (quick when already done):
#  - a Python venv .venv-lab (or $HAT_LAB_ENV, e.g. an activated conda env: HAT_LAB_ENV=$CONDA_PREFIX)
#    with the pinned JupyterLab, nbconvert, nbclient and ipykernel of scripts/lab-requirements.txt;
#  - the tslab kernel registered inside that environment (kernel spec with the absolute path of this
#    project's node_modules/.bin/tslab), so the user's own Jupyter set-up is left alone;
#  - with --browser: Debian's chromium for the browser tests (apt-get, as root).
# Options: --browser; --optional: on failure warn and exit 0 (tests then skip), except in CI (CI set),
# where every failure is fatal. Prints the environment's folder on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
browser=0
optional=0
for a in "$@"; do
  case "$a" in
    --browser) browser=1 ;;
    --optional) optional=1 ;;
    *) echo "setup-lab.sh: unknown option $a" >&2; exit 2 ;;
  esac
done

fail() {
  echo "[setup-lab] $*" >&2
  if [ "$optional" = 1 ] && [ -z "${CI:-}" ]; then
    echo "[setup-lab] skipping: the notebook and browser tests will be skipped." >&2
    exit 0
  fi
  exit 1
}

env_dir="${HAT_LAB_ENV:-$root/.venv-lab}"
python="${HAT_PYTHON:-python3}"
tslab="$root/node_modules/.bin/tslab"
[ -x "$tslab" ] || fail "no $tslab: run npm ci (or bash scripts/setup.sh) first"

stamp="$env_dir/.hat-lab-stamp"
want="$(cat scripts/lab-requirements.txt "$root/node_modules/tslab/package.json" | sha256sum | cut -c1-32) $root"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "[setup-lab] preparing $env_dir (JupyterLab, nbconvert, tslab kernel)" >&2
  start=$SECONDS
  if [ ! -x "$env_dir/bin/python" ]; then
    "$python" -m venv "$env_dir" >&2 || fail "cannot create a venv with $python (Debian: apt-get install python3-venv)"
  fi
  # --retries 0: without internet pip would otherwise retry the public index for minutes before using the local one
  if ! "$env_dir/bin/python" -m pip install --disable-pip-version-check --quiet --retries 0 --timeout 30 -r scripts/lab-requirements.txt > "$env_dir/pip.log" 2>&1; then
    grep -v "is ignored: it is neither" "$env_dir/pip.log" | tail -20 >&2
    fail "pip could not install scripts/lab-requirements.txt into $env_dir (log: $env_dir/pip.log)"
  fi
  "$tslab" install --python="$env_dir/bin/python" --binary="$tslab" --prefix="$env_dir" >&2 || fail "tslab install failed"
  "$env_dir/bin/jupyter" kernelspec list 2>/dev/null | grep -q "$env_dir/share/jupyter/kernels/tslab" || fail "the tslab kernel is not visible to $env_dir/bin/jupyter"
  echo "$want" > "$stamp"
  echo "[setup-lab] done in $((SECONDS - start)) s" >&2
fi

if [ "$browser" = 1 ]; then
  if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "[setup-lab] installing Debian's chromium for the browser tests" >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; } \
        || fail "apt-get could not install chromium"
    else
      fail "chromium is not installed (Debian: sudo apt-get install chromium); or set HAT_CHROMIUM=/path/to/chromium"
    fi
  fi
fi
echo "$env_dir"
