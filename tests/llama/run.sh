#!/usr/bin/env bash
# Model-folder conversion against llama.cpp's own tools: builds llama.cpp from the sources the
# llama-cpp-python package ships (its sdist's vendor/llama.cpp: convert_hf_to_gguf.py, gguf-py,
# and the library whose llama_model_quantize and model loader are used), makes small random
# checkpoint folders with transformers, and runs tests/llama/check.py. Installs what it needs
# in a venv (LLAMA_VENV, default: the interop venv); the build is cached in it.
#   tests/llama/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=${LLAMA_VENV:-${TMPDIR:-/tmp}/picklescan-rs-interop-venv}
cache=${LLAMA_CACHE:-${TMPDIR:-/tmp}/picklescan-rs-llama}
version=0.3.36
mkdir -p "$cache"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
pip() { "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"; }
"$venv/bin/python" -c "import torch" 2>/dev/null || timeout 1200 "$venv/bin/pip" install --quiet --disable-pip-version-check torch
pip 'numpy>=1.24' 'safetensors>=0.4' transformers sentencepiece tokenizers protobuf
sdist="$cache/llama_cpp_python-$version.tar.gz"
if [ ! -s "$sdist" ]; then
  # The sdist's address, from PyPI's simple index (the only index reachable in CI).
  url=$(curl -fsSL "https://pypi.org/simple/llama-cpp-python/" |
    grep -o "https://[^\"#]*llama_cpp_python-$version\.tar\.gz" | head -1)
  [ -n "$url" ] || { echo "llama-cpp-python $version sdist not found on PyPI"; exit 1; }
  curl -fsSL -o "$sdist.part" "$url"
  mv "$sdist.part" "$sdist"
fi
src="$cache/llama_cpp_python-$version"
[ -d "$src/vendor/llama.cpp" ] || tar -xzf "$sdist" -C "$cache"
if ! "$venv/bin/python" -c "import llama_cpp; assert llama_cpp.__version__ == '$version'" 2>/dev/null; then
  echo "-- building llama.cpp $version (llama-cpp-python from source; about 4 minutes on 2 cores)"
  CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAVA_BUILD=OFF" \
    CMAKE_BUILD_PARALLEL_LEVEL=2 "$venv/bin/pip" install --quiet --disable-pip-version-check "$sdist"
fi
cargo build --release --locked --quiet
cases=$(mktemp -d)
trap 'rm -rf "$cases"' EXIT
"$venv/bin/python" tests/llama/make_models.py "$cases" > "$cases/make_models.log" 2>&1 || { cat "$cases/make_models.log"; exit 1; }
"$venv/bin/python" tests/llama/check.py --bin "${CARGO_TARGET_DIR:-target}/release/picklescan-rs" \
  --llama-cpp "$src/vendor/llama.cpp" --cases "$cases"
