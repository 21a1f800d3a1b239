#!/usr/bin/env bash
# A Hugging Face checkpoint folder (1.1B parameters, TinyLlama's shape, float32
# pytorch_model.bin) to a Q4_K_M GGUF: picklescan-rs in one command against llama.cpp's
# convert_hf_to_gguf.py followed by llama-quantize, and against the floor (reading the input
# once, writing an output of the same size once). Medians of RUNS runs; peak RSS the largest.
#
#   PY=venv/bin/python LLAMA_CPP=path/to/llama.cpp benches/hf_to_gguf.sh [RUNS]
#
# PY must import torch, transformers, sentencepiece and llama_cpp (llama-cpp-python built from
# the same llama.cpp sources); LLAMA_CPP is llama.cpp's source folder (the sdist's
# vendor/llama.cpp). Needs about 14 GB in ${TMPDIR:-/tmp}.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
py=${PY:-python3}
src=${LLAMA_CPP:?set LLAMA_CPP to the llama.cpp source folder}
work=${TMPDIR:-/tmp}/picklescan-rs-hf-bench
bin=target/release/picklescan-rs
cargo build --release --locked --quiet
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
model="$work/TinyLlama-1.1B-random"
[ -f "$model/pytorch_model.bin" ] || "$py" benches/hf_to_gguf_gen.py "$model" >/dev/null
quantize="$work/quantize.py"
cat > "$quantize" <<'PYEOF'
import sys, llama_cpp
p = llama_cpp.llama_model_quantize_default_params()
p.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M
p.nthread = 2
sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), p))
PYEOF

# time_of LABEL COMMAND...: wall seconds and peak RSS (KiB) of one run, appended to $work/LABEL.
time_of() {
  local label=$1
  shift
  sync
  /usr/bin/time -f "%e %M" -o "$work/t" "$@" >/dev/null 2>&1
  cat "$work/t" >> "$work/$label"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
maxrss() { awk '{if ($2>m) m=$2} END {print m}'; }

for _ in $(seq "$runs"); do
  time_of ours "$bin" --extract "$model" --to gguf --quant q4_k_m -o "$work/ours.gguf" --force --no-progress
  time_of ours_nohash "$bin" --extract "$model" --to gguf --quant q4_k_m -o "$work/ours.gguf" --force --no-progress --no-source-hash
  time_of conv_f32 env PYTHONPATH="$src/gguf-py" "$py" "$src/convert_hf_to_gguf.py" "$model" --outtype f32 --outfile "$work/ref-f32.gguf"
  time_of quant_f32 "$py" "$quantize" "$work/ref-f32.gguf" "$work/ref.gguf"
  rm -f "$work/ref-f32.gguf"
  time_of conv_f16 env PYTHONPATH="$src/gguf-py" "$py" "$src/convert_hf_to_gguf.py" "$model" --outtype f16 --outfile "$work/ref-f16.gguf"
  time_of quant_f16 "$py" "$quantize" "$work/ref-f16.gguf" "$work/ref16.gguf"
  rm -f "$work/ref-f16.gguf" "$work/ref16.gguf"
  size=$(stat -c %s "$work/ours.gguf")
  time_of read_input dd if="$model/pytorch_model.bin" of=/dev/null bs=1M
  time_of write_output dd if=/dev/zero of="$work/floor.out" bs=1M count=$((size >> 20)) conv=fsync
  time_of sha256_input sha256sum "$model/pytorch_model.bin"
done
printf '%-44s %10s %12s\n' step "median s" "peak RSS MB"
for l in ours ours_nohash conv_f32 quant_f32 conv_f16 quant_f16 read_input write_output sha256_input; do
  printf '%-44s %10s %12s\n' "$l" "$(median < "$work/$l")" "$(( $(maxrss < "$work/$l") / 1024 ))"
done
ours=$(median < "$work/ours")
ref=$(awk -v a="$(median < "$work/conv_f32")" -v b="$(median < "$work/quant_f32")" 'BEGIN {print a+b}')
ref16=$(awk -v a="$(median < "$work/conv_f16")" -v b="$(median < "$work/quant_f16")" 'BEGIN {print a+b}')
floor=$(awk -v a="$(median < "$work/read_input")" -v b="$(median < "$work/write_output")" 'BEGIN {print a+b}')
awk -v o="$ours" -v r="$ref" -v r16="$ref16" -v f="$floor" 'BEGIN {
  printf "convert f32 + quantize: %.1f s, %.2fx picklescan-rs\n", r, r / o
  printf "convert f16 + quantize: %.1f s, %.2fx picklescan-rs\n", r16, r16 / o
  printf "floor (read + write): %.2f s; picklescan-rs is %.1fx the floor\n", f, o / f }'
