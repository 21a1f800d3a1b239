#!/usr/bin/env bash
# Collect the model-format files that installed Python packages ship in their test data (joblib's
# dumps of every version since 0.9 with their companion files, numpy's and scipy's .npy/.npz/.pkl,
# statsmodels' pickled results, …) into one folder, for benches/PRECISION.md.
#   benches/shipped_files.sh SITE_PACKAGES OUT_DIR
set -euo pipefail
sp=${1:?site-packages folder}
out=${2:?output folder}
mkdir -p "$out/joblib"
cp "$sp"/joblib/test/data/joblib_* "$out/joblib/"
find "$sp" -path '*tests*' \( -name '*.pkl' -o -name '*.npy' -o -name '*.npz' -o -name '*.pickle' \
  -o -name '*.joblib' -o -name '*.pt' -o -name '*.pth' \) -not -path '*/joblib/test/data/*' |
  while read -r f; do
    rel=${f#"$sp"/}
    mkdir -p "$out/${rel%%/*}"
    cp "$f" "$out/${rel%%/*}/${rel//\//__}"
  done
find "$out" -type f | wc -l
