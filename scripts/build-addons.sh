#!/usr/bin/env bash
# Builds this project's two small C addons into .cache/native/ (each well under a second with cc):
#   stderr-guard.node   (src/backend/stderr-guard.c): lets src/backend/quiet.ts keep TensorFlow's start-up log
#                       off stderr;
#   fused-kernels.node  (src/backend/fused-kernels.c): fused elementwise TensorFlow kernels for the training
#                       step (src/backend/fused-kernels.ts), same results as TensorFlow's own ops, faster.
# Neither is required: without a C compiler or Node's headers each is skipped with a note, and the code falls
# back (TensorFlow's log stays visible; TensorFlow's own ops run).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "[build-addons] $*" >&2; }

cc="${CC:-$(command -v cc || command -v gcc || command -v clang || true)}"
[ -n "$cc" ] || { say "no C compiler: addons not built (TensorFlow's start-up log shows; no fused kernels)"; exit 0; }
node_prefix=$(dirname "$(dirname "$(command -v node)")")
inc=""
for d in "$node_prefix/include/node" "$HOME/.cache/node-gyp/$(node -p process.versions.node)/include/node"; do
  if [ -f "$d/node_api.h" ]; then inc="$d"; break; fi
done
[ -n "$inc" ] || { say "no Node headers (node_api.h): addons not built (TensorFlow's start-up log shows; no fused kernels)"; exit 0; }
mkdir -p .cache/native

# build NAME EXTRA_FLAGS...: src/backend/NAME.c -> .cache/native/NAME.node, when the source is newer
build() {
  local name="$1"; shift
  local src="src/backend/$name.c" out=".cache/native/$name.node"
  if [ -f "$out" ] && [ "$out" -nt "$src" ] && [ "$out" -nt "$0" ]; then return 0; fi
  "$cc" -shared -fPIC -Wall -Wextra -I"$inc" "$@" "$src" -o "$out.tmp.$$" && mv "$out.tmp.$$" "$out" ||
    { rm -f "$out.tmp.$$"; say "building $name failed: it is not used"; }
}

build stderr-guard -O2
# -ffp-contract=off: no fused multiply-add, so each product and sum is rounded as TensorFlow's separate ops
# round it (bit-identical results); -fno-trapping-math lets the selects of ReLU and dropout vectorise.
build fused-kernels -O3 -ffp-contract=off -fno-trapping-math -pthread -ldl -lm
