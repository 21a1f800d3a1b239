#!/usr/bin/env bash
# Peak memory, time and bytes read of remote scans of large files through the CLI, against the
# three kinds of server of benches/http_server.py (range support; no range support; chunked,
# without Content-Length). Medians of RUNS runs. Used for benches/REMOTE.md.
#
#   benches/remote_rss.sh BINARY DIR [RUNS] [FILE...]
#   e.g. benches/remote_rss.sh target/release/picklescan-rs /tmp/remote-bench 3 model.joblib.gz
set -euo pipefail
bin=$(realpath "$1"); dir=$2; runs=${3:-3}; shift 3 || shift $#
files=("$@"); [ ${#files[@]} -gt 0 ] || files=(model.joblib.gz evil.joblib.gz)
here=$(dirname "$(realpath "$0")")
py=${PYTHON:-python3}
base=$((20000 + RANDOM % 20000))
pids=()
trap 'kill "${pids[@]}" 2>/dev/null' EXIT
modes=(ranges whole chunked)
for i in 0 1 2; do
    "$py" "$here/http_server.py" $((base + i)) "$dir" "${modes[$i]}" & pids+=($!)
done
sleep 1
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "| file | server | peak RSS | time | bytes read | verdict |"
echo "|---|---|---|---|---|---|"
for f in "${files[@]}"; do
    for i in 0 1 2; do
        rss=(); secs=(); out=""
        for _ in $(seq "$runs"); do
            /usr/bin/time -f "%M %e" -o /tmp/remote_rss.time \
                "$bin" --no-config --max-remote-bytes 2G --format json \
                "http://127.0.0.1:$((base + i))/$f" > /tmp/remote_rss.json || true
            read -r kb s < <(tail -n 1 /tmp/remote_rss.time)
            rss+=("$kb"); secs+=("$s")
            out=$("$py" -c '
import json, sys
d = json.load(open("/tmp/remote_rss.json"))
r = d["files"][0]
print("{:,} | {}".format(r["transferred"], r["verdict"]))')
        done
        kb=$(printf '%s\n' "${rss[@]}" | median); s=$(printf '%s\n' "${secs[@]}" | median)
        printf '| %s | %s | %.1f MB | %s s | %s |\n' "$f" "${modes[$i]}" "$(echo "$kb / 1000" | bc -l)" "$s" "$out"
    done
done
