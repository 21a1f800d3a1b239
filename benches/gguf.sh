#!/usr/bin/env bash
# GGUF conversion benchmark: picklescan-rs --extract --to gguf --quant {q8_0,q4_0} on a ~1.5 GB
# fp32 torch checkpoint vs gguf-py quantizing the same tensors, in the same run (benches/GGUF.md).
#   PY=/path/to/python benches/gguf.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
py=${PY:-python3}
dir=${BENCH_DIR:-/tmp/picklescan-gguf-bench}
mkdir -p "$dir"
[ -f "$dir/model.pt" ] || "$py" benches/gguf_gen.py "$dir/model.pt"
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/picklescan-rs"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "input: $(stat -c %s "$dir/model.pt") bytes, $(nproc) cores"
for q in q8_0 q4_0; do
  for hash in "" "--no-source-hash"; do
    : > "$dir/times"
    for _ in $(seq "$runs"); do
      /usr/bin/time -f "%e %U %S %M" -a -o "$dir/times" \
        "$bin" --extract "$dir/model.pt" --to gguf --quant "$q" -o "$dir/out.gguf" --force $hash >/dev/null
    done
    printf '%s %-18s wall %ss  user %ss  sys %ss  maxrss %s KB\n' "$q" "${hash:-(with hash)}" \
      "$(cut -d' ' -f1 "$dir/times" | median)" "$(cut -d' ' -f2 "$dir/times" | median)" \
      "$(cut -d' ' -f3 "$dir/times" | median)" "$(cut -d' ' -f4 "$dir/times" | sort -n | tail -1)"
  done
done
# The floor of any conversion: reading the input once (page cache warm).
: > "$dir/times"
for _ in $(seq "$runs"); do
  /usr/bin/time -f "%e %U %S %M" -a -o "$dir/times" cat "$dir/model.pt" >/dev/null
done
printf 'cat model.pt > /dev/null   wall %ss  sys %ss\n' \
  "$(cut -d' ' -f1 "$dir/times" | median)" "$(cut -d' ' -f3 "$dir/times" | median)"
echo "gguf-py (TYPE wall_s cpu_s GB/s):"
"$py" benches/gguf_py.py "$dir/model.pt" "$runs" Q8_0,Q4_0
rm -f "$dir/out.gguf"
