#!/usr/bin/env bash
# Interop checks against the real Python readers (safetensors, gguf-py). Creates its own venv.
#   tests/interop/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=${INTEROP_VENV:-${TMPDIR:-/tmp}/picklescan-rs-interop-venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check 'numpy>=1.24' 'safetensors>=0.4' 'gguf>=0.10' 'onnx>=1.16' 'h5py>=3.10'
cargo build --release --locked --quiet
bin="${CARGO_TARGET_DIR:-target}/release/picklescan-rs"
for check in tests/interop/check_*.py; do
  # The weights_only check needs torch: it runs below, once torch is installed.
  [ "$check" = tests/interop/check_weights_only.py ] && continue
  echo "-- $check"
  "$venv/bin/python" "$check" --bin "$bin" --corpus corpus
done

# torch.load(weights_only=True) against --policy torch-weights-only's predictions. torch is a large
# download: a failed install skips this check with a message (INTEROP_TORCH=0 skips it).
if [ "${INTEROP_TORCH:-1}" = 1 ]; then
  "$venv/bin/python" -c "import torch" 2>/dev/null ||
    timeout 1200 "$venv/bin/pip" install --quiet --disable-pip-version-check torch >/dev/null 2>&1 || true
  if "$venv/bin/python" -c "import torch" 2>/dev/null; then
    echo "-- tests/interop/check_weights_only.py"
    "$venv/bin/python" tests/interop/check_weights_only.py --bin "$bin" --corpus corpus
  else
    echo "-- torch could not be installed: the weights_only predictions were not checked"
  fi
fi
