#!/usr/bin/env bash
# Model-folder conversion against llama.cpp's own tools: builds llama.cpp from the sources the
# llama-cpp-python package ships (its sdist's vendor/llama.cpp: convert_hf_to_gguf.py, gguf-py,
# and the library whose llama_model_quantize and model loader are used), makes small random
# checkpoint folders with transformers, and runs tests/llama/check.py on them.
#
#   tests/llama/run.sh [check.py options: --only NAME, --types f16,Q4_K_M, --keep DIR]
#
# Installs what it needs in a venv (LLAMA_VENV, default: the interop venv, which has torch); the
# llama.cpp build is cached in that venv and the sdist in LLAMA_CACHE. This check is required:
# anything that cannot be installed fails the script, saying what and why.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=${LLAMA_VENV:-${TMPDIR:-/tmp}/picklescan-rs-interop-venv}
cache=${LLAMA_CACHE:-${TMPDIR:-/tmp}/picklescan-rs-llama}
version=0.3.36
py="$venv/bin/python"
mkdir -p "$cache"

fail() {
  echo "tests/llama/run.sh: FAILED: $*" >&2
  exit 1
}
# pip_install WHAT ARGS...: a quiet install whose output is shown only when it fails.
pip_install() {
  local what=$1
  shift
  local log="$cache/pip-$what.log"
  "$py" -m pip install --disable-pip-version-check "$@" >"$log" 2>&1 ||
    { tail -40 "$log" >&2; fail "pip could not install $what (full log: $log)"; }
}

start=$(date +%s)
[ -x "$py" ] || python3 -m venv "$venv" || fail "python3 -m venv $venv"
# torch: make_models.py builds the checkpoints with it, and the converter reads them with it.
if ! "$py" -c "import torch" 2>/dev/null; then
  echo "-- installing torch into $venv"
  timeout 1200 "$py" -m pip install --quiet --disable-pip-version-check torch ||
    fail "pip could not install torch into $venv (needed to write and convert the test checkpoints)"
fi
# The checkpoints' writers, and what the converter and the sdist's gguf-py (used from its source
# folder, not installed) import. The converter's requirements file pins torch from PyTorch's own
# index, which CI cannot reach: the current releases are used instead.
pip_install "python-packages" --quiet 'numpy>=1.24' 'safetensors>=0.4' transformers sentencepiece \
  tokenizers protobuf tqdm pyyaml requests

# llama.cpp's sources: llama-cpp-python's sdist, found through PyPI's simple index (the JSON API
# is not reachable from CI).
sdist="$cache/llama_cpp_python-$version.tar.gz"
if [ ! -s "$sdist" ]; then
  index=$(curl -fsSL "https://pypi.org/simple/llama-cpp-python/") ||
    fail "cannot read https://pypi.org/simple/llama-cpp-python/ (no network to PyPI?)"
  url=$(grep -o "https://[^\"#]*llama_cpp_python-$version\.tar\.gz" <<<"$index" | head -1)
  [ -n "$url" ] || fail "llama-cpp-python $version's sdist is not listed on PyPI's simple index"
  curl -fsSL -o "$sdist.part" "$url" || fail "cannot download $url"
  mv "$sdist.part" "$sdist"
fi
src="$cache/llama_cpp_python-$version"
if [ ! -f "$src/vendor/llama.cpp/convert_hf_to_gguf.py" ]; then
  tar -xzf "$sdist" -C "$cache" || fail "cannot unpack $sdist"
fi
[ -f "$src/vendor/llama.cpp/convert_hf_to_gguf.py" ] && [ -d "$src/vendor/llama.cpp/gguf-py" ] ||
  fail "$sdist has no vendor/llama.cpp/convert_hf_to_gguf.py or gguf-py"

# The library: built once per venv (about 15 minutes on 2 cores), skipped when it imports.
if "$py" -c "import llama_cpp; assert llama_cpp.__version__ == '$version'" 2>/dev/null; then
  echo "-- llama.cpp $version: already built in $venv"
else
  echo "-- building llama.cpp $version (llama-cpp-python from its sdist; about 15 minutes on 2 cores)"
  t0=$(date +%s)
  # GGML_NATIVE=OFF: portable kernels (AVX2, FMA, F16C). A native build on a CPU that reports
  # AMX uses its tile kernels for Q8_0, which crash where the OS has not granted the tile state
  # (seen on a virtual machine: llama.cpp's own Q8_0 output segfaulted on evaluation).
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAVA_BUILD=OFF" \
    CMAKE_BUILD_PARALLEL_LEVEL=2 pip_install "llama-cpp-python-build" --verbose "$sdist"
  "$py" -c "import llama_cpp; llama_cpp.llama_model_quantize_default_params()" ||
    fail "llama-cpp-python $version was built but does not load (log: $cache/pip-llama-cpp-python-build.log)"
  echo "-- built in $(($(date +%s) - t0)) s"
fi

cargo build --release --locked --quiet
cases=$(mktemp -d)
trap 'rm -rf "$cases"' EXIT
echo "-- writing the test checkpoints (tests/llama/make_models.py)"
"$py" tests/llama/make_models.py "$cases" >"$cases/make_models.log" 2>&1 ||
  { tail -40 "$cases/make_models.log"; fail "tests/llama/make_models.py could not write the checkpoints"; }
status=0
"$py" tests/llama/check.py --bin "${CARGO_TARGET_DIR:-target}/release/picklescan-rs" \
  --llama-cpp "$src/vendor/llama.cpp" --cases "$cases" "$@" || status=$?
echo "-- tests/llama/run.sh: $(($(date +%s) - start)) s"
exit "$status"
