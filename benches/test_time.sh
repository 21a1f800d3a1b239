#!/usr/bin/env bash
# Time the README's test command (`cargo test --locked`) from a clean clone with an empty
# target folder, N times (default 3), and print each run and the median. The cargo registry
# is left as it is (downloads are not what is measured).
set -euo pipefail
runs=${1:-3}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
times=()
for i in $(seq "$runs"); do
  git clone -q "$repo" "$work/clone"
  start=$(date +%s.%N)
  (cd "$work/clone" && cargo test --locked >"$work/run$i.log" 2>&1)
  end=$(date +%s.%N)
  t=$(echo "$end - $start" | bc)
  build=$(sed -n 's/.*Finished `test` profile.* in \(.*\)$/\1/p' "$work/run$i.log" | head -1)
  echo "run $i: ${t} s (compiling: $build)"
  times+=("$t")
  rm -rf "$work/clone"
done
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print "median: " a[int((NR+1)/2)] " s of " NR " runs"}'
