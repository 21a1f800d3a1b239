#!/usr/bin/env bash
# Wall time and peak RSS of the release binary on each resource bomb (tests/it/bombs.rs has the
# same bombs as tests). Writes benches/BOMBS.md.
#   benches/bombs.sh            (needs python3 and GNU time at /usr/bin/time)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release/picklescan-rs
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 benches/make_bombs.py "$dir"
# A 10 GB sparse file: a pickle header, then holes.
printf '\x80\x02' >"$dir/sparse_10g.bin"
truncate -s 10G "$dir/sparse_10g.bin"
truncate -s 10G "$dir/sparse_10g_zeros.bin"

out=benches/BOMBS.md
{
  echo "# Resource bombs"
  echo
  echo "Release binary, \`picklescan-rs FILE\` (text report: JSON would hash every byte), measured with \`/usr/bin/time -v\`"
  echo "by \`benches/bombs.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores. Target: each under 1 s and"
  echo "256 MB peak RSS, with a finding and a verdict other than clean (exit 1 dangerous, 2 suspicious)."
  echo
  echo "| bomb | file size | exit | verdict | findings (rule ids) | wall s | peak RSS MB |"
  echo "|---|---|---|---|---|---|---|"
} >"$out"
for f in "$dir"/*; do
  name=$(basename "$f")
  size=$(stat -c %s "$f")
  set +e
  /usr/bin/time -v "$bin" "$f" >"$dir/.out" 2>"$dir/.time"
  code=$?
  set -e
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$dir/.time" |
    awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$dir/.time")
  case $code in 0) verdict=clean ;; 1) verdict=dangerous ;; 2) verdict=suspicious ;; *) verdict=error ;; esac
  ids=$(grep -o 'PS[0-9][0-9][0-9]' "$dir/.out" | sort -u | tr '\n' ' ' || true)
  echo "| $name | $size | $code | $verdict | $ids | $wall | $rss |" | tee -a "$out"
done
