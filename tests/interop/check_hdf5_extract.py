#!/usr/bin/env python3
"""Check `picklescan-rs --extract` of HDF5 files (h5py data files, Keras `.weights.h5`, legacy
Keras `.h5` models, the `model.weights.h5` inside `.keras` zips) against h5py's own reading.

For every clean HDF5 or `.keras` fixture of corpus/formats/hdf5 and corpus/formats/hdf5-chunked,
extract it to safetensors (`--skip-unsupported`: strings, and datasets compressed with a filter
other than deflate, shuffle and Fletcher-32, are not extracted) and compare every numeric
dataset h5py reads (contiguous, compact or chunked) with the tensor of the same name (its path
without the leading `/`): dtype, shape and exact values, big-endian data in native order. Files
with external links, external storage or virtual datasets must be refused (exit 1 or 3); files of
damaged chunks are left to the Rust tests.

    python tests/interop/check_hdf5_extract.py --bin target/release/picklescan-rs [--corpus corpus]
"""

import argparse
import io
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import h5py
import numpy as np
from safetensors.numpy import load_file


def expected(f):
    """Every dataset h5py reads that the extraction must produce, by name."""
    out = {}

    def visit(name, obj):
        if not isinstance(obj, h5py.Dataset) or obj.dtype.kind not in "fiu":
            return
        if obj.external or obj.is_virtual:
            return
        if obj.chunks is not None and (obj.compression not in (None, "gzip")
                                       or obj.scaleoffset is not None):
            return  # a filter extraction does not decode: listed as not extracted
        if obj.id.get_offset() is None and obj.size > 0 and \
                obj.id.get_create_plist().get_layout() == h5py.h5d.CONTIGUOUS:
            return  # never written
        out[name] = obj[()]
    f.visititems(visit)
    return out


def check(binary, path, out):
    r = subprocess.run([str(binary), "--extract", str(path), "-o", str(out), "--force",
                        "--skip-unsupported"], capture_output=True, text=True)
    if r.returncode != 0:
        return f"exit {r.returncode}: {r.stderr.strip()[-300:]}", 0
    ours = load_file(str(out))
    if path.suffix == ".keras":
        with zipfile.ZipFile(path) as z:
            f = h5py.File(io.BytesIO(z.read("model.weights.h5")), "r")
    else:
        f = h5py.File(path, "r")
    with f:
        want = expected(f)
    if not want:
        return "no dataset to compare", 0
    for name, w in want.items():
        got = ours.get(name)
        if got is None:
            return f"{name}: missing", 0
        w = np.asarray(w)
        w = w.astype(w.dtype.newbyteorder("=")) if w.dtype.byteorder == ">" else w
        if got.dtype != w.dtype or got.shape != w.shape or not np.array_equal(got, w):
            return f"{name}: {got.dtype}{got.shape} differs from {w.dtype}{w.shape}", 0
    return None, len(want)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, type=Path)
    ap.add_argument("--corpus", default=Path("corpus"), type=Path)
    a = ap.parse_args()
    files = []
    for m in ("manifest-hdf5.json", "manifest-hdf5-chunked.json"):
        files += json.loads((a.corpus / "formats" / m).read_text())["files"]
    failures, checked, refused, datasets = [], 0, 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        for e in files:
            if Path(e["path"]).name.startswith("damaged"):
                continue
            path = a.corpus / "formats" / e["path"]
            out = Path(tmp) / (path.name + ".safetensors")
            outside = any(r in ("PS985", "PS986") for r in e["rules"])
            if outside:
                r = subprocess.run([str(a.bin), "--extract", str(path), "-o", str(out)],
                                   capture_output=True, text=True)
                # Refused: dangerous (1) or not extractable (3), and nothing written.
                if r.returncode not in (1, 3) or out.exists():
                    failures.append(f"{e['path']}: extraction of a file reading outside itself "
                                    f"exited {r.returncode}")
                refused += 1
                continue
            if e["verdict"] != "clean":
                continue
            problem, n = check(a.bin, path, out)
            checked += 1
            datasets += n
            if problem:
                failures.append(f"{e['path']}: {problem}")
    for f in failures:
        print("FAIL", f)
    print(f"{checked} HDF5/Keras files extracted and compared with h5py ({datasets} datasets), "
          f"{refused} refused, {len(failures)} failures")
    return 1 if failures or checked < 30 else 0


if __name__ == "__main__":
    sys.exit(main())
