#!/usr/bin/env bash
# Extraction of a legacy GGML file with quantized tensors (figures in benches/FORMATS.md): a
# GGJT v3 file of 620 MB of Q4_0 and Q6_K blocks (random blocks with finite scales, written
# by benches/ggml_extract_gen.py into $WORK, never committed), extracted to GGUF (blocks copied)
# and to safetensors (blocks decoded to F32), each with and without the source hash, beside the
# floor: `cp` of the input and `sha256sum` of it. Needs hyperfine and a Python with numpy:
#   PY=/path/to/python benches/ggml_extract.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
WORK=${WORK:-/tmp/ggmlbench}
RUNS=${RUNS:-5}
cargo build --release --quiet
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/picklescan-rs}
mkdir -p "$WORK"
[ -f "$WORK/model.bin" ] || "$PY" benches/ggml_extract_gen.py "$WORK/model.bin"
ls -l "$WORK/model.bin"
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$WORK/gguf.json" \
  "$BIN --no-progress --extract $WORK/model.bin --to gguf -o $WORK/out.gguf --force" \
  "$BIN --no-progress --extract $WORK/model.bin --to gguf --no-source-hash -o $WORK/out.gguf --force" \
  "cp $WORK/model.bin $WORK/copy.bin" \
  "sha256sum $WORK/model.bin"
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$WORK/st.json" \
  "$BIN --no-progress --extract $WORK/model.bin -o $WORK/out.safetensors --force" \
  "$BIN --no-progress --extract $WORK/model.bin --no-source-hash -o $WORK/out.safetensors --force"
ls -l "$WORK/out.gguf" "$WORK/out.safetensors"
rm -f "$WORK/copy.bin"
# Medians (machines are noisy; writing GBs makes the spread wide).
"$PY" -c '
import json, sys
for f in sys.argv[1:]:
    for r in json.load(open(f))["results"]:
        print("%8.3f s  %s" % (r["median"], r["command"]))
' "$WORK/gguf.json" "$WORK/st.json"
