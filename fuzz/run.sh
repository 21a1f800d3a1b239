#!/usr/bin/env bash
# Run every fuzz target for a while; crashes land in fuzz/artifacts/<target>/, logs in
# fuzz/logs/<target>.log.
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
# Needs cargo-fuzz (`cargo install cargo-fuzz`); the stable toolchain is enough with
# RUSTC_BOOTSTRAP=1, which lets it use the sanitizer flags.
# Environment: RUNS=N stops each target after N executions (the time limit still applies);
# MAX_LEN=N caps the input size (libFuzzer's -max_len; otherwise the largest seed sets it);
# SANITIZER=none builds without AddressSanitizer (several times faster, for long hunts for
# panics, hangs and memory blow-ups; the parsers hold no `unsafe`).
# Exits 1 when a target found a crash, a timeout or an out-of-memory input.
# A minimised crash (`cargo fuzz tmin TARGET ARTIFACT`) goes into fuzz/regressions/<target>/ so
# `cargo test --test it fuzz_regressions::` replays it on every test run; the regressions also seed
# the fuzzer here.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(RUSTC_BOOTSTRAP=1 cargo fuzz list)
fi
mkdir -p logs
status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  # Seed every target with the project's own fixtures.
  if [ -z "$(ls -A "corpus/$t")" ]; then
    find ../corpus -type f ! -name '*.json' ! -name '*.md' ! -name '*.py' -size -200k \
      -exec cp {} "corpus/$t/" \; 2>/dev/null || true
  fi
  dirs=("corpus/$t")
  if [ -d "regressions/$t" ]; then dirs+=("regressions/$t"); fi
  echo "== $t for ${secs}s"
  extra=()
  if [ -n "${RUNS:-}" ]; then extra+=("-runs=$RUNS"); fi
  if [ -n "${MAX_LEN:-}" ]; then extra+=("-max_len=$MAX_LEN"); fi
  if ! RUSTC_BOOTSTRAP=1 cargo fuzz run -s "${SANITIZER:-address}" "$t" "${dirs[@]}" -- \
    -max_total_time="$secs" "${extra[@]}" \
    -rss_limit_mb=512 -timeout=5 -print_final_stats=1 >"logs/$t.log" 2>&1; then
    status=1
    grep -E "^(==[0-9]+==|SUMMARY|artifact_prefix|Test unit written)|panicked|ERROR" "logs/$t.log" | head -20 || true
    echo "!! $t: crash, timeout or OOM (see fuzz/logs/$t.log)"
  fi
  grep -E "^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb|Done)" \
    "logs/$t.log" || true
done
exit $status
