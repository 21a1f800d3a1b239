#!/usr/bin/env bash
# Benchmarks of `picklescan-rs serve` (figures in benches/SERVE.md).
#   benches/serve.sh            all three scenarios, 3 runs each (medians go in SERVE.md)
# Needs: a release build (built here), python3, curl.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${CARGO_TARGET_DIR:-target}"
cargo build --release --quiet
BIN="$TARGET/release/picklescan-rs"
RUNS="${RUNS:-3}"
for i in $(seq "$RUNS"); do
  # 100 concurrent clients × 20 uploads of small corpus files (every verdict checked).
  python3 benches/serve_load.py small --bin "$BIN" --clients 100 --requests 20
done
for i in $(seq "$RUNS"); do
  # 1 MB pickle: one client (latency), then 4 clients (latency under load).
  python3 benches/serve_load.py onemb --bin "$BIN" --clients 1 --requests 200
  python3 benches/serve_load.py onemb --bin "$BIN" --clients 4 --requests 100
done
for i in $(seq "$RUNS"); do
  # One 1.5 GB upload: server memory must not grow with the file.
  python3 benches/serve_load.py huge --bin "$BIN" --size 1.5G --kind pickle
  python3 benches/serve_load.py huge --bin "$BIN" --size 1.5G --kind zip
  python3 benches/serve_load.py huge --bin "$BIN" --size 150M --kind zip
done
