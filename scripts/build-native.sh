#!/usr/bin/env bash
# Makes the native TensorFlow backend for TensorFlow.js loadable, without internet if need be.
#
#   bash scripts/build-native.sh            # CPU: @tensorflow/tfjs-node
#   bash scripts/build-native.sh gpu        # CUDA: @tensorflow/tfjs-node-gpu (needs a CUDA build of TensorFlow)
#
# Route 1 (users with internet): the package's own installer downloads libtensorflow 2.9.1 and a prebuilt addon.
# Route 2 (offline, or when route 1 fails): build the N-API addon from source against the TensorFlow C library
# shipped in a pip wheel (tensorflow-cpu for CPU, tensorflow for GPU), taken from pip's configured index or
# from HAT_TF_WHEEL=/path/to/wheel.whl. Idempotent: does nothing when the backend already loads.
#
# Environment: HAT_TF_WHEEL (wheel file to use), HAT_TF_VERSION (default 2.21.0),
#              HAT_NATIVE_SKIP_DOWNLOAD=1 (skip route 1), HAT_NATIVE_TIMEOUT (route 1 time limit, s).
set -euo pipefail
cd "$(dirname "$0")/.."

flavour="${1:-cpu}"
case "$flavour" in
  cpu) pkg="@tensorflow/tfjs-node"; wheel_name="tensorflow-cpu" ;;
  gpu) pkg="@tensorflow/tfjs-node-gpu"; wheel_name="tensorflow" ;;
  *) echo "build-native: unknown flavour '$flavour' (use cpu or gpu)" >&2; exit 2 ;;
esac
tfjs_version="4.22.0"
tf_version="${HAT_TF_VERSION:-2.21.0}"
cache=".cache/native"
say() { echo "[build-native] $*" >&2; }

loads() { node -e "require('$pkg')" >/dev/null 2>&1; }

if loads; then say "$pkg already loads"; exit 0; fi

pkg_dir="node_modules/$pkg"
if [ ! -f "$pkg_dir/package.json" ]; then
  say "installing $pkg@$tfjs_version without its download script"
  npm install --no-save --ignore-scripts --no-audit --no-fund "$pkg@$tfjs_version" >&2
fi

if [ "${HAT_NATIVE_SKIP_DOWNLOAD:-0}" != "1" ]; then
  say "route 1: the package's own installer (downloads libtensorflow)"
  if (cd "$pkg_dir" && timeout "${HAT_NATIVE_TIMEOUT:-600}" node scripts/install.js "$flavour" >/dev/null 2>&1) && loads; then
    say "$pkg installed by its own installer"; exit 0
  fi
  say "route 1 failed (no internet?): building against a pip wheel instead"
fi

mkdir -p "$cache"
wheel="${HAT_TF_WHEEL:-}"
if [ -z "$wheel" ]; then
  wheel=$(ls "$cache"/${wheel_name//-/_}-"$tf_version"-*.whl 2>/dev/null | head -n 1 || true)
fi
if [ -z "$wheel" ]; then
  say "fetching the $wheel_name==$tf_version wheel with pip (from pip's configured index)"
  if ! python3 -m pip download --no-deps --quiet --retries 0 --timeout 30 "$wheel_name==$tf_version" -d "$cache" >&2; then
    cat >&2 <<MSG
[build-native] ERROR: no $wheel_name==$tf_version wheel could be had from pip.
  Fix one of:
   - give a local wheel: HAT_TF_WHEEL=/path/to/${wheel_name//-/_}-$tf_version-...whl npm run build:native
   - make pip reach an index that has it (pip config list), or set HAT_TF_VERSION to a version it has
   - use the pure-wasm backend instead (slower): HAT_BACKEND=wasm
MSG
    exit 1
  fi
  wheel=$(ls "$cache"/${wheel_name//-/_}-"$tf_version"-*.whl | head -n 1)
fi
[ -f "$wheel" ] || { say "ERROR: wheel '$wheel' does not exist"; exit 1; }

say "extracting the TensorFlow C library from $(basename "$wheel")"
lib_dir="$pkg_dir/deps/lib"; inc_dir="$pkg_dir/deps/include"
rm -rf "$pkg_dir/deps" "$cache/unpacked"
python3 - "$wheel" "$cache/unpacked" "$pkg_dir/binding" <<'PY'
# Extract the two shared libraries and only the headers the addon includes (transitively): the wheel's
# include/ folder is 270 MB, the closure a few hundred kB.
import os, re, sys, zipfile
wheel, out, binding = sys.argv[1:4]
inc = 'tensorflow/include/'
libs = ['tensorflow/libtensorflow_cc.so.2', 'tensorflow/libtensorflow_framework.so.2']
include_re = re.compile(r'^\s*#\s*include\s*[<"]([^">]+)[">]', re.M)
with zipfile.ZipFile(wheel) as z:
    names = set(z.namelist())
    missing = [l for l in libs if l not in names]
    if missing:
        sys.exit(f'{wheel} has no {missing[0]}: not a Linux TensorFlow 2.x wheel?')
    todo = []
    for f in os.listdir(binding):
        if f.endswith(('.cc', '.h')):
            todo += include_re.findall(open(os.path.join(binding, f), encoding='utf-8').read())
    seen = set()
    while todo:
        h = todo.pop()
        if h in seen or inc + h not in names:
            continue
        seen.add(h)
        todo += include_re.findall(z.read(inc + h).decode('utf-8', 'replace'))
    for n in libs + [inc + h for h in sorted(seen)]:
        z.extract(n, out)
    print(f'[build-native] {len(seen)} headers extracted', file=sys.stderr)
PY
mkdir -p "$lib_dir" "$inc_dir"
cp -r "$cache/unpacked/tensorflow/include/." "$inc_dir/"
cp "$cache/unpacked/tensorflow/libtensorflow_cc.so.2" "$cache/unpacked/tensorflow/libtensorflow_framework.so.2" "$lib_dir/"
ln -sf libtensorflow_cc.so.2 "$lib_dir/libtensorflow.so.2"
ln -sf libtensorflow.so.2 "$lib_dir/libtensorflow.so"
ln -sf libtensorflow_framework.so.2 "$lib_dir/libtensorflow_framework.so"
rm -rf "$cache/unpacked"

# node-gyp downloads Node's headers unless told where the installed ones are (offline they cannot be downloaded).
node_prefix=$(dirname "$(dirname "$(command -v node)")")
nodedir_flag=()
if [ -f "$node_prefix/include/node/node_api.h" ]; then nodedir_flag=(--nodedir="$node_prefix"); fi
pre_gyp=$(node -p "require.resolve('@mapbox/node-pre-gyp/bin/node-pre-gyp', {paths: ['$pkg_dir']})")
say "compiling the N-API addon (about 2 minutes on 2 cores)"
(cd "$pkg_dir" && node "$pre_gyp" rebuild --build-from-source "${nodedir_flag[@]}" >"$OLDPWD/$cache/build.log" 2>&1) || {
  say "ERROR: the addon build failed; see $cache/build.log"; tail -n 20 "$cache/build.log" >&2; exit 1; }
if loads; then say "$pkg built against TensorFlow $tf_version"; else
  say "ERROR: $pkg still does not load:"; node -e "require('$pkg')" >&2 || true; exit 1; fi
