#!/usr/bin/env bash
# Builds src/backend/stderr-guard.c (a 60-line N-API addon) into .cache/native/stderr-guard.node: it lets
# src/backend/quiet.ts keep TensorFlow's start-up log off stderr. Well under a second with cc; skipped (with a
# note) when there is no C compiler or no Node headers: TensorFlow's start-up lines then stay visible.
set -euo pipefail
cd "$(dirname "$0")/.."

src="src/backend/stderr-guard.c"
out=".cache/native/stderr-guard.node"
say() { echo "[build-stderr-guard] $*" >&2; }

if [ -f "$out" ] && [ "$out" -nt "$src" ]; then exit 0; fi
cc="${CC:-$(command -v cc || command -v gcc || command -v clang || true)}"
[ -n "$cc" ] || { say "no C compiler: TensorFlow's start-up log will show on stderr"; exit 0; }
node_prefix=$(dirname "$(dirname "$(command -v node)")")
inc=""
for d in "$node_prefix/include/node" "$HOME/.cache/node-gyp/$(node -p process.versions.node)/include/node"; do
  if [ -f "$d/node_api.h" ]; then inc="$d"; break; fi
done
[ -n "$inc" ] || { say "no Node headers (node_api.h): TensorFlow's start-up log will show on stderr"; exit 0; }
mkdir -p "$(dirname "$out")"
"$cc" -shared -fPIC -O2 -Wall -Wextra -I"$inc" "$src" -o "$out.tmp.$$" && mv "$out.tmp.$$" "$out" ||
  { rm -f "$out.tmp.$$"; say "the build failed: TensorFlow's start-up log will show on stderr"; exit 0; }
