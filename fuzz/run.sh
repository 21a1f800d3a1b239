#!/usr/bin/env bash
# Run every fuzz target for a while; crashes land in fuzz/artifacts/<target>/.
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
# Needs cargo-fuzz (`cargo install cargo-fuzz`); the stable toolchain is enough with
# RUSTC_BOOTSTRAP=1, which lets it use the sanitizer flags.
# A minimised crash goes into fuzz/regressions/<target>/ so `cargo test --test fuzz_regressions`
# replays it on every test run.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(RUSTC_BOOTSTRAP=1 cargo fuzz list)
fi
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  # Seed every target with the project's own fixtures.
  if [ -z "$(ls -A "corpus/$t")" ]; then
    find ../corpus -type f ! -name '*.json' ! -name '*.md' ! -name '*.py' -size -200k \
      -exec cp {} "corpus/$t/" \; 2>/dev/null || true
  fi
  echo "== $t for ${secs}s"
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=512 \
    -timeout=5 -print_final_stats=1 2>&1 | grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|==|SUMMARY|Done)" || true
done
