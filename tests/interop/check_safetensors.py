#!/usr/bin/env python3
"""Check `picklescan-rs --extract` against the real safetensors reader.

For every benign corpus fixture that has `corpus/expected/<stem>.npz`, run the built binary with
`--extract FIXTURE -o OUT --skip-unsupported`, open OUT with the `safetensors` package and compare
every tensor with the expected arrays: names, dtypes, shapes and exact values (bf16 and float8 are
compared as their raw bit patterns, as the expected files store them). Expected tensors of a dtype
safetensors cannot hold (complex) must be absent from the output and reported as skipped.

The layout is checked against the reference writer too: re-serializing the loaded tensors with
`safetensors.numpy.save` must give the same tensor entries in the same order and the same data bytes.

Needs only numpy and safetensors. Exit status: 0 when everything matches, 1 on any mismatch,
2 when the binary or the corpus cannot be found.

    python tests/interop/check_safetensors.py --bin target/release/picklescan-rs [--corpus corpus]
"""

import argparse
import json
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import safetensors
from safetensors.numpy import load_file, save

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

# safetensors dtypes numpy has no type for: compared as raw bits, like the expected files.
RAW_BITS = {"BF16": np.uint16, "F8_E4M3": np.uint8, "F8_E5M2": np.uint8, "F8_E8M0": np.uint8,
            "F8_E4M3FNUZ": np.uint8, "F8_E5M2FNUZ": np.uint8}
NP_DTYPE = {"F64": "float64", "F32": "float32", "F16": "float16", "I64": "int64", "I32": "int32",
            "I16": "int16", "I8": "int8", "U8": "uint8", "U16": "uint16", "U32": "uint32",
            "U64": "uint64", "BOOL": "bool", "BF16": "uint16", "F8_E4M3": "uint8",
            "F8_E5M2": "uint8"}
UNSUPPORTED = {"C64", "C128"}


def read_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = f.read(n)
    return n, header, json.loads(header)


def load_output(path):
    """Tensors of a safetensors file as numpy arrays (raw bits for dtypes numpy lacks)."""
    n, _, header = read_header(path)
    if not any(v["dtype"] in RAW_BITS for k, v in header.items() if k != "__metadata__"):
        return load_file(str(path)), header
    # Validate the whole file with the reference reader first, then read the raw bits.
    with safetensors.safe_open(str(path), framework="numpy") as f:
        keys = list(f.keys())
        out = {k: f.get_tensor(k) for k in keys if header[k]["dtype"] not in RAW_BITS}
    data = Path(path).read_bytes()[8 + n:]
    for k, v in header.items():
        if k != "__metadata__" and v["dtype"] in RAW_BITS:
            b, e = v["data_offsets"]
            out[k] = np.frombuffer(data[b:e], dtype=RAW_BITS[v["dtype"]]).reshape(v["shape"])
    return out, header


def same_layout_as_reference(path, tensors, header):
    """Re-serialize with the reference writer: same entries in the same order, same data."""
    if any(v["dtype"] in RAW_BITS for k, v in header.items() if k != "__metadata__"):
        return None  # numpy cannot hand these dtypes to the reference writer
    ref = save(tensors)
    n = struct.unpack("<Q", ref[:8])[0]
    ref_header = json.loads(ref[8:8 + n])
    ours_n, _, ours_header = read_header(path)
    ours_entries = [(k, v) for k, v in ours_header.items() if k != "__metadata__"]
    ref_entries = [(k, v) for k, v in ref_header.items() if k != "__metadata__"]
    if ours_entries != ref_entries:
        return "tensor entries differ from the reference writer's: %s vs %s" % (
            [k for k, _ in ours_entries], [k for k, _ in ref_entries])
    if Path(path).read_bytes()[8 + ours_n:] != ref[8 + n:]:
        return "data section differs from the reference writer's"
    if ours_n % 8 != 0:
        return "header length %d is not a multiple of 8" % ours_n
    return None


def check_fixture(binary, fixture, expected_npz, expected_json, out_dir):
    problems = []
    out = out_dir / (fixture.name + ".safetensors")
    proc = subprocess.run([str(binary), "--extract", str(fixture), "-o", str(out), "--force",
                           "--skip-unsupported"], capture_output=True, text=True)
    if proc.returncode != 0 or not out.exists():
        return ["extraction failed (exit %d): %s" % (proc.returncode, proc.stderr.strip()[-500:])]
    meta = json.loads(expected_json.read_text())
    with np.load(expected_npz) as z:
        expected = {k: z[k] for k in z.files}
    try:
        got, header = load_output(out)
    except Exception as e:  # the reader refused the file
        return ["safetensors refused the output: %s: %s" % (type(e).__name__, e)]
    md = header.get("__metadata__", {})
    for key in ("format", "source_sha256", "scan_verdict"):
        if key not in md:
            problems.append("__metadata__ lacks %s" % key)
    want = {k for k in expected if meta[k]["dtype"] not in UNSUPPORTED}
    skipped = {k for k in expected if meta[k]["dtype"] in UNSUPPORTED}
    if set(got) != want:
        problems.append("names differ: missing %s, unexpected %s"
                        % (sorted(want - set(got)), sorted(set(got) - want)))
    for k in sorted(skipped):
        if k in got:
            problems.append("%s (%s) should have been skipped" % (k, meta[k]["dtype"]))
        elif ("skipped %s:" % k) not in proc.stdout:
            problems.append("%s (%s) is not reported as skipped" % (k, meta[k]["dtype"]))
    for k in sorted(want & set(got)):
        e, g = expected[k], got[k]
        st_dtype = header[k]["dtype"]
        if st_dtype != meta[k]["dtype"]:
            problems.append("%s: dtype %s, expected %s" % (k, st_dtype, meta[k]["dtype"]))
            continue
        if list(g.shape) != meta[k]["shape"] or g.shape != e.shape:
            problems.append("%s: shape %s, expected %s" % (k, list(g.shape), meta[k]["shape"]))
            continue
        if g.dtype != np.dtype(NP_DTYPE[st_dtype]):
            problems.append("%s: numpy dtype %s" % (k, g.dtype))
            continue
        # Exact: compare the bytes, so NaNs and -0.0 count too.
        if np.ascontiguousarray(g).tobytes() != np.ascontiguousarray(e).astype(g.dtype).tobytes():
            problems.append("%s: values differ" % k)
    if not problems:
        layout = same_layout_as_reference(out, got, header)
        if layout:
            problems.append(layout)
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=str(ROOT / "target" / "release" / "picklescan-rs"))
    ap.add_argument("--corpus", default=str(ROOT / "corpus"))
    args = ap.parse_args()
    binary, corpus = Path(args.bin), Path(args.corpus)
    if not binary.exists():
        print("no binary at %s (cargo build --release first)" % binary, file=sys.stderr)
        return 2
    manifest = corpus / "manifest.json"
    if not manifest.exists():
        print("no corpus manifest at %s" % manifest, file=sys.stderr)
        return 2
    files = json.loads(manifest.read_text())["files"]
    checked, failed = 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        for entry in files:
            path = entry["path"]
            if not path.startswith("benign/"):
                continue
            stem = Path(path).name.split(".")[0]
            npz = corpus / "expected" / (stem + ".npz")
            js = corpus / "expected" / (stem + ".json")
            if not npz.exists() or not js.exists():
                continue
            problems = check_fixture(binary, corpus / path, npz, js, Path(tmp))
            checked += 1
            if problems:
                failed += 1
                print("FAIL %s" % path)
                for p in problems:
                    print("     %s" % p)
            else:
                print("ok   %s" % path)
    print("%d passed, %d failed" % (checked - failed, failed))
    if checked == 0:
        print("no fixture with expected tensors was found", file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
