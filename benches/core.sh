#!/usr/bin/env bash
# Scanner core benchmark: an op-heavy ~20 MB pickle (about a million small tuples, dicts and
# strings) scanned by picklescan-rs, beside CPython's pickle.load of the same file (which executes
# it) and picklescan. Needs hyperfine and a Python with picklescan installed:
#   PY=/path/to/venv/bin/python benches/core.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
PICKLESCAN=${PICKLESCAN:-$(dirname "$PY")/picklescan}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release --quiet
"$PY" benches/ops_heavy.py "$work/ops.pkl"
ls -l "$work/ops.pkl"
hyperfine -N --warmup 2 --runs "${RUNS:-15}" --export-markdown "$work/core.md" \
  "target/release/picklescan-rs --no-progress $work/ops.pkl" \
  "$PY benches/pickle_load.py $work/ops.pkl" \
  "$PICKLESCAN -p $work/ops.pkl" || true
cat "$work/core.md"
/usr/bin/time -v target/release/picklescan-rs "$work/ops.pkl" 2>&1 >/dev/null | grep -E "Maximum resident|Elapsed"
