#!/usr/bin/env bash
# Everything a fresh clone needs before it can run: npm packages (when package-lock.json changed) and the
# native TensorFlow backend (scripts/build-native.sh; offline it builds from a pip tensorflow-cpu wheel).
# Idempotent and quick when nothing changed. HAT_SKIP_NATIVE=1 skips the native backend (wasm is used).
set -euo pipefail
cd "$(dirname "$0")/.."

stamp="node_modules/.hat-setup-stamp"
want="$(node -p "require('crypto').createHash('sha256').update(require('fs').readFileSync('package-lock.json')).digest('hex')")"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "[setup] installing npm packages" >&2
  # The optional @tensorflow/tfjs-node fails its download offline; npm then skips it and build-native.sh takes over.
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$want" > "$stamp"
fi

if [ "${HAT_SKIP_NATIVE:-0}" != "1" ]; then
  bash scripts/build-addons.sh # stderr guard (src/backend/quiet.ts) and fused kernels (src/backend/fused-kernels.ts)
  if ! bash scripts/build-native.sh cpu; then
    if [ -n "${CI:-}" ]; then echo "[setup] the native backend is required in CI" >&2; exit 1; fi
    echo "[setup] WARNING: no native TensorFlow backend; runs will use WebAssembly (slower)." >&2
  fi
fi
