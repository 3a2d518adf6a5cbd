#!/usr/bin/env bash
# Build a venv that behaves like Kaggle's notebook image for imports and `pip check`:
# Python 3.12 and the image's versions of every package a hubkit kernel meets.
#   bash kernels/image/make-venv.sh [VENV_DIR]     (default .kaggle-venv; about 6 GB, torch is the CUDA build)
# Re-running reuses a venv whose spec has not changed (its stamp file holds the spec's hash).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${1:-$repo/.kaggle-venv}"
spec="$repo/hubkit/kaggle/images/kaggle-gpu-2026.txt"
reqs="$here/requirements.txt"
python="${KAGGLE_PYTHON:-}"
if [ -z "$python" ]; then  # the first python3.12 that runs (a pyenv shim may exist and refuse)
    for candidate in python3.12 "$(pyenv root 2>/dev/null)"/versions/3.12*/bin/python3.12; do
        if "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
            python="$candidate"; break
        fi
    done
fi
[ -n "$python" ] || { echo "make-venv: no Python 3.12 found (set KAGGLE_PYTHON)" >&2; exit 2; }
stamp="$(cat "$spec" "$reqs" "$0" | sha256sum | cut -c1-16)"
if [ -f "$venv/.image-stamp" ] && [ "$(cat "$venv/.image-stamp")" = "$stamp" ]; then
    echo "make-venv: $venv is up to date ($stamp)"; exit 0
fi
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q -c "$spec" pip  # the image's own pip
# --no-cache-dir: the CUDA torch build would otherwise be kept twice on disk.
"$venv/bin/python" -m pip install -q --no-cache-dir -c "$spec" -r "$reqs"
"$venv/bin/python" -m pip check
echo "$stamp" > "$venv/.image-stamp"
"$venv/bin/python" -c 'import sys, torch, numpy; print("make-venv: Python", sys.version.split()[0], "torch", torch.__version__, "numpy", numpy.__version__)'
