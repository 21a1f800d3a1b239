#!/usr/bin/env bash
# Container scan benchmark (figures in benches/SCAN.md):
#  (a) a ~1.5 GB torch.save checkpoint: scan time must not grow with tensor data;
#  (b) 2,000 small model files (.pt, .joblib, .pkl, .npy) given as explicit paths;
#  (c) a 1 GiB raw protocol-4 pickle of numpy arrays, beside `cat FILE > /dev/null`, and peak RSS.
# Each beside picklescan and modelscan. Inputs are generated into $WORK (default /tmp/scanbench)
# and never committed. Needs hyperfine, GNU time and a Python with torch, numpy, joblib,
# picklescan and modelscan:
#   PY=/path/to/venv/bin/python benches/scan.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
BIN_DIR=$(dirname "$PY")
PICKLESCAN=${PICKLESCAN:-$BIN_DIR/picklescan}
MODELSCAN=${MODELSCAN:-$BIN_DIR/modelscan}
WORK=${WORK:-/tmp/scanbench}
RUNS=${RUNS:-20}
PEER_RUNS=${PEER_RUNS:-3}
cargo build --release --quiet
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/picklescan-rs}
[ -f "$WORK/big.pt" ] && [ -f "$WORK/raw.pkl" ] && [ -d "$WORK/many" ] \
  || "$PY" benches/scan_fixtures.py "$WORK" all
ls -l "$WORK/big.pt" "$WORK/raw.pkl"
echo "many: $(ls "$WORK/many" | wc -l) files, $(du -sh "$WORK/many" | cut -f1)"
out=$(mktemp -d)

echo "== (a) 1.5 GB torch checkpoint"
hyperfine -N -i --warmup 2 --runs "$RUNS" --export-json "$out/a-rs.json" \
  "$BIN --no-progress $WORK/big.pt"
hyperfine -N -i --warmup 1 --runs "$PEER_RUNS" --export-json "$out/a-peers.json" \
  "$PICKLESCAN -p $WORK/big.pt" \
  "$MODELSCAN -p $WORK/big.pt"

echo "== (b) 2,000 small files, explicit paths"
# One process with every path on its command line; beside it `cat` of the same files, the cost
# of only opening and reading them (one core).
hyperfine -i --warmup 1 --runs "$RUNS" --export-json "$out/b-rs.json" \
  "cd $WORK/many && $BIN --no-progress * > /dev/null" \
  "cd $WORK/many && cat * > /dev/null"
hyperfine -i --warmup 0 --runs "$PEER_RUNS" --export-json "$out/b-peers.json" \
  "$PICKLESCAN -p $WORK/many > /dev/null" \
  "$MODELSCAN -p $WORK/many > /dev/null"

echo "== (c) 1 GiB raw pickle"
hyperfine -i --warmup 2 --runs "$RUNS" --export-json "$out/c.json" \
  "cat $WORK/raw.pkl > /dev/null" \
  "$BIN --no-progress $WORK/raw.pkl > /dev/null"
hyperfine -N -i --warmup 1 --runs "$PEER_RUNS" --export-json "$out/c-peers.json" \
  "$PICKLESCAN -p $WORK/raw.pkl" \
  "$MODELSCAN -p $WORK/raw.pkl"
for f in big.pt raw.pkl; do
  echo "max RSS $f: $(/usr/bin/time -v "$BIN" --no-progress "$WORK/$f" 2>&1 >/dev/null | sed -n 's/.*Maximum resident set size (kbytes): //p') KiB"
done
echo "max RSS many: $(cd "$WORK/many" && /usr/bin/time -v "$BIN" --no-progress * 2>&1 >/dev/null | sed -n 's/.*Maximum resident set size (kbytes): //p') KiB"
echo "== in-process (library): files/s, and private vs mapped memory"
cargo bench --quiet --bench scan_many -- "$WORK/many" 31 2>/dev/null | tail -1
for f in big.pt raw.pkl; do cargo bench --quiet --bench scan_many -- --memory "$WORK/$f" 2>/dev/null | tail -1; done
echo "== medians"
"$PY" - "$out" <<'PY'
import json, pathlib, sys
for p in sorted(pathlib.Path(sys.argv[1]).glob("*.json")):
    for r in json.loads(p.read_text())["results"]:
        print("%-8s %10.1f ms  (%d runs)  %s" % (p.stem, r["median"] * 1e3, len(r["times"]), r["command"]))
PY
rm -rf "$out"
