#!/usr/bin/env bash
# Interop checks against the real Python readers (safetensors, gguf-py). Creates its own venv.
#   tests/interop/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=${INTEROP_VENV:-${TMPDIR:-/tmp}/picklescan-rs-interop-venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check 'numpy>=1.24' 'safetensors>=0.4' 'gguf>=0.10'
cargo build --release --locked --quiet
bin="${CARGO_TARGET_DIR:-target}/release/picklescan-rs"
for check in tests/interop/check_*.py; do
  echo "-- $check"
  "$venv/bin/python" "$check" --bin "$bin" --corpus corpus
done
