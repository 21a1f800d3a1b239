#!/usr/bin/env python3
"""Check `picklescan-rs --extract ... --to gguf` against gguf-py's reader and quantizers.

For every benign corpus fixture that has `corpus/expected/<stem>.npz`, run the built binary with
`--extract FIXTURE --to gguf -o OUT --skip-unsupported`, then again with `--quant q8_0`, `q4_0` and
`q4_k`, and read OUT with `gguf.GGUFReader`:

* metadata: general.architecture, general.name, general.file_type, general.alignment (u32 32),
  general.quantization_version (2, when a tensor is quantized), picklescan.source_sha256,
  picklescan.scan_verdict;
* names, shapes in ggml order (the numpy shape reversed), types (the type llama.cpp's rules
  pick: 1-D tensors stay F32, rows that do not fit the block size fall back);
* values: F32/F16/BF16/F64 and integer tensors equal the expected arrays exactly (bytes);
  Q8_0/Q4_0 (and the other legacy fallbacks) equal `gguf.quants.quantize(expected_f32, type)`
  byte for byte; K-quants are dequantized with `gguf.quants.dequantize` and compared within a
  tolerance relative to each row's largest magnitude.

Expected tensors GGUF cannot hold (bool, unsigned, complex, float8; empty or more than four
dimensions) must be absent and reported as skipped.

Legacy GGML files with quantized tensors (corpus/formats/ggml-quant/, one GGJT v3 file with every
block type): the GGUF must hold each tensor with its type and its blocks byte for byte
(`ggml-quant-contents.json`), and gguf-py's `dequantize` of what the reader returns must equal
the values the generator decoded from the input's blocks.

Needs only numpy and gguf. Exit status: 0 when everything matches, 1 on any mismatch, 2 when the
binary or the corpus cannot be found. The last line reads `N passed, M failed`.

    python tests/interop/check_gguf.py --bin target/release/picklescan-rs [--corpus corpus]
"""

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

NATIVE = {"F32": T.F32, "F16": T.F16, "BF16": T.BF16, "F64": T.F64, "I8": T.I8, "I16": T.I16,
          "I32": T.I32, "I64": T.I64}
FLOAT = {"F32", "F16", "BF16", "F64"}
NP_INT = {"I8": np.int8, "I16": np.int16, "I32": np.int32, "I64": np.int64}
K_TYPES = {T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K}
FILE_TYPE = {T.Q8_0: 7, T.Q4_0: 2, T.Q4_K: 14}
# Largest error of a K-quant, relative to the largest magnitude of the row.
K_TOLERANCE = {T.Q4_K: 0.08}
MODES = [None, T.Q8_0, T.Q4_0, T.Q4_K]


def block_size(t):
    return gguf.GGML_QUANT_SIZES[t][0]


def chosen_type(requested, shape):
    """quant::choose_type (llama.cpp's rules)."""
    if len(shape) < 2:
        return T.F32
    row = shape[-1]
    if row % block_size(requested) == 0:
        return requested
    fallback = {T.Q2_K: T.Q4_0, T.Q3_K: T.Q4_0, T.Q4_K: T.Q5_0, T.Q5_K: T.Q5_1,
                T.Q6_K: T.Q8_0}.get(requested, T.F16)
    return fallback if row % block_size(fallback) == 0 else T.F16


def as_f32(arr, dtype):
    if dtype == "BF16":  # stored as raw bits
        return (arr.astype(np.uint32) << 16).view(np.float32)
    return arr.astype(np.float32)


def expected_bytes(arr, dtype, ty):
    """The bytes a tensor must have, or None when only a tolerance applies."""
    arr = np.ascontiguousarray(arr)
    if ty in K_TYPES:
        return None
    if ty == NATIVE.get(dtype):
        return np.ascontiguousarray(arr).tobytes()
    x = as_f32(arr, dtype)
    if ty == T.F32:
        return x.tobytes()
    if ty == T.F16:
        return x.astype(np.float16).tobytes()
    return np.ascontiguousarray(quantize(x.reshape(-1, x.shape[-1]), ty)).tobytes()


def holdable(shape):
    """GGUF (ggml) tensors have at most 4 dimensions, none of them 0."""
    return len(shape) <= 4 and 0 not in shape


def field_value(reader, key):
    f = reader.fields.get(key)
    if f is None:
        return None
    return f.contents()


def check_mode(binary, fixture, expected, meta, mode, out):
    cmd = [str(binary), "--extract", str(fixture), "--to", "gguf", "-o", str(out), "--force",
           "--skip-unsupported"]
    if mode is not None:
        cmd += ["--quant", mode.name.lower()]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not out.exists():
        return ["extraction failed (exit %d): %s" % (proc.returncode, proc.stderr.strip()[-500:])]
    try:
        reader = gguf.GGUFReader(str(out))
    except Exception as e:  # the reader refused the file
        return ["gguf-py refused the output: %s: %s" % (type(e).__name__, e)]
    problems = []
    want = {k for k in expected if meta[k]["dtype"] in NATIVE and holdable(meta[k]["shape"])}
    skipped = set(expected) - want
    got = {t.name: t for t in reader.tensors}
    if set(got) != want:
        problems.append("names differ: missing %s, unexpected %s"
                        % (sorted(want - set(got)), sorted(set(got) - want)))
    for k in sorted(skipped):
        if ("skipped %s:" % k) not in proc.stdout:
            problems.append("%s (%s) is not reported as skipped" % (k, meta[k]["dtype"]))
    quantized = False
    for k in sorted(want & set(got)):
        t, e, dtype = got[k], expected[k], meta[k]["dtype"]
        shape = meta[k]["shape"]
        want_shape = list(reversed(shape)) or [1]
        if [int(d) for d in t.shape] != want_shape:
            problems.append("%s: ggml shape %s, expected %s" % (k, list(t.shape), want_shape))
            continue
        if mode is not None and dtype in FLOAT:
            ty = chosen_type(mode, shape)
        else:
            ty = NATIVE[dtype]
        if t.tensor_type != ty:
            problems.append("%s: type %s, expected %s" % (k, t.tensor_type.name, ty.name))
            continue
        quantized |= block_size(ty) > 1
        data = np.ascontiguousarray(t.data).tobytes()
        want_bytes = expected_bytes(e, dtype, ty)
        if want_bytes is not None:
            if data != want_bytes:
                problems.append("%s: %s bytes differ from the reference" % (k, ty.name))
            continue
        x = as_f32(e, dtype).reshape(-1, shape[-1])
        y = dequantize(np.frombuffer(data, dtype=np.uint8).reshape(x.shape[0], -1), ty)
        y = y.reshape(x.shape)
        scale = np.maximum(np.abs(x).max(axis=1, keepdims=True), 1e-30)
        err = float((np.abs(y - x) / scale).max())
        if err > K_TOLERANCE[ty]:
            problems.append("%s: %s error %.4f of the row's magnitude" % (k, ty.name, err))
    checks = {
        "general.architecture": lambda v: isinstance(v, str) and v != "",
        "general.name": lambda v: v == fixture.name.split(".")[0],
        "general.alignment": lambda v: v == 32,
        "picklescan.scan_verdict": lambda v: v in ("clean", "suspicious", "dangerous"),
        "picklescan.source_sha256": lambda v: isinstance(v, str) and len(v) == 64,
        "general.file_type": lambda v: mode is None or v == FILE_TYPE[mode],
    }
    for key, ok in checks.items():
        v = field_value(reader, key)
        if v is None or not ok(v):
            problems.append("metadata %s = %r" % (key, v))
    if reader.fields.get("general.alignment") is not None and \
            reader.fields["general.alignment"].types != [gguf.GGUFValueType.UINT32]:
        problems.append("general.alignment is not a UINT32")
    qv = field_value(reader, "general.quantization_version")
    if quantized and qv != 2:
        problems.append("general.quantization_version = %r with quantized tensors" % qv)
    return problems


def generated_cases(tmp):
    """Arrays whose rows fit the block sizes (the corpus has none): written with numpy as .npz
    (zip members read in place) and .npy in Fortran order (gathered through a strided view)."""
    rng = np.random.default_rng(7)
    arrays = {
        "w_f32": rng.standard_normal((300, 512)).astype(np.float32),  # several pieces
        "w_f16": rng.standard_normal((16, 256)).astype(np.float16),
        "w_f64": rng.standard_normal((8, 64)),
        "w_row96": (rng.standard_normal((4, 96)) * 3).astype(np.float32),
        "w_3d": rng.standard_normal((2, 3, 256)).astype(np.float32),
        "bias": rng.standard_normal(64).astype(np.float32),
        "ids": np.arange(12, dtype=np.int64).reshape(3, 4),
    }
    arrays["w_f32"][0, :32] = 0.0  # an all-zero block
    arrays["w_f32"][1, 5] = 1e4  # an outlier
    npz = Path(tmp) / "generated.npz"
    np.savez(npz, **arrays)
    meta = {k: {"dtype": {"float32": "F32", "float16": "F16", "float64": "F64",
                          "int64": "I64"}[str(v.dtype)], "shape": list(v.shape)}
            for k, v in arrays.items()}
    fortran = np.asfortranarray(rng.standard_normal((64, 256)).astype(np.float32))
    npy = Path(tmp) / "generated_fortran.npy"
    np.save(npy, fortran)
    return [(npz, arrays, meta),
            (npy, {"array": np.ascontiguousarray(fortran)},
             {"array": {"dtype": "F32", "shape": [64, 256]}})]


def check_legacy_ggml(binary, corpus, tmp):
    """`(label, problems)` for each legacy GGML file with quantized tensors that extracts whole."""
    contents = json.loads((corpus / "formats" / "ggml-quant-contents.json").read_text())
    sha = lambda b: hashlib.sha256(b).hexdigest()
    out = []
    for name, tensors in contents.items():
        if not all(t["extracted"] for t in tensors):
            continue  # older layouts: refused, checked by the Rust tests
        path = corpus / "formats" / "ggml-quant" / name
        target = Path(tmp) / (name + ".gguf")
        r = subprocess.run([str(binary), "--extract", str(path), "--to", "gguf", "-o",
                            str(target), "--force"], capture_output=True, text=True)
        if r.returncode != 0:
            out.append((name, ["exit %d: %s" % (r.returncode, r.stderr.strip()[-300:])]))
            continue
        got = {t.name: t for t in gguf.GGUFReader(str(target)).tensors}
        problems = []
        for t in tensors:
            g = got.get(t["name"])
            if g is None:
                problems.append("%s: missing" % t["name"])
                continue
            if g.tensor_type.name != t["type"]:
                problems.append("%s: type %s, not %s" % (t["name"], g.tensor_type.name, t["type"]))
            if list(reversed([int(d) for d in g.shape])) != t["shape"]:
                problems.append("%s: shape %s" % (t["name"], list(g.shape)))
            raw = np.ascontiguousarray(g.data).tobytes()
            if sha(raw) != t["gguf_sha256"]:
                problems.append("%s: blocks differ from the input's" % t["name"])
            values = dequantize(g.data, g.tensor_type).astype("<f4")
            if t["safetensors"]["dtype"] == "F32" and sha(values.tobytes()) != t["safetensors"]["sha256"]:
                problems.append("%s: decoded values differ" % t["name"])
        out.append(("%s [blocks as is]" % name, problems))
    return out


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
        cases = []
        for entry in files:
            path = entry["path"]
            if not path.startswith("benign/"):
                continue
            stem = Path(path).name.split(".")[0]
            npz = corpus / "expected" / (stem + ".npz")
            js = corpus / "expected" / (stem + ".json")
            if not npz.exists() or not js.exists():
                continue
            meta = json.loads(js.read_text())
            if not any(m["dtype"] in FLOAT for m in meta.values()):
                continue
            with np.load(npz) as z:
                expected = {k: z[k] for k in z.files}
            cases.append((corpus / path, expected, meta))
        cases += generated_cases(tmp)
        results = []
        for fixture, expected, meta in cases:
            for mode in MODES:
                label = "%s [%s]" % (fixture.name, mode.name if mode is not None else "as is")
                out = Path(tmp) / (fixture.name + ".gguf")
                results.append((label, check_mode(binary, fixture, expected, meta, mode, out)))
        results += check_legacy_ggml(binary, corpus, tmp)
        for label, problems in results:
            checked += 1
            if problems:
                failed += 1
                print("FAIL %s" % label)
                for p in problems:
                    print("     %s" % p)
            else:
                print("ok   %s" % label)
    print("%d passed, %d failed" % (checked - failed, failed))
    if checked == 0:
        print("no fixture with expected tensors was found", file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
