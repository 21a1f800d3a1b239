#!/usr/bin/env bash
# Scanning speed of large non-pickle models (figures in benches/FORMATS.md): a 512 MiB HDF5 file
# and a 1 GiB ONNX model with external data, written by h5py and onnx
# (benches/format_speed_gen.py, into $WORK, never committed), scanned from the page cache,
# beside the floor of reading each file once (`cat > /dev/null`). Needs hyperfine and a Python
# with h5py, numpy and onnx:
#   PY=/path/to/python benches/format_speed.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
WORK=${WORK:-/tmp/formatbench}
RUNS=${RUNS:-10}
cargo build --release --quiet
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/picklescan-rs}
[ -f "$WORK/big.h5" ] && [ -f "$WORK/onnx/model.onnx" ] || "$PY" benches/format_speed_gen.py "$WORK"
ls -l "$WORK/big.h5" "$WORK/onnx/model.onnx" "$WORK/onnx/weights.bin"
"$BIN" "$WORK/big.h5" "$WORK/onnx/model.onnx"
hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$WORK/speed.json" \
  "$BIN --no-progress $WORK/big.h5" \
  "$BIN --no-progress $WORK/onnx/model.onnx" \
  "cat $WORK/big.h5" \
  "cat $WORK/onnx/weights.bin"
"$PY" -c '
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print("%9.4f s  %s" % (r["median"], r["command"]))
' "$WORK/speed.json"
