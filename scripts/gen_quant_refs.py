#!/usr/bin/env python3
"""Generate the reference vectors in tests/fixtures/quant/ for tests/it/quant.rs.

References:
  * F16, BF16: ggml's own conversions (ggml_compute_fp32_to_fp16 / _bf16 from ggml-impl.h),
    cross-checked against numpy astype(float16) (non-NaN values) and gguf.quants (BF16).
  * Q4_0, Q4_1, Q5_0, Q5_1, Q8_0: gguf.quants.quantize (gguf-py), cross-checked against
    ggml's C quantize_row_*_ref.
  * Q2_K, Q3_K, Q4_K, Q5_K, Q6_K: ggml's C quantize_row_*_ref (gguf-py has no K-quantizer).
  * Dequantization: SHA-256 of ggml's C dequantize_row_* output for every quantized fixture.
  * example.gguf: a file written by gguf-py's GGUFWriter with metadata of every value type and
    tensors of several types; tests/it/quant.rs rebuilds it byte for byte with the Rust writer.

The C reference is compiled from the ggml sources vendored in the ggml-python sdist from PyPI
(downloaded with pip into a temporary directory; nothing of it is kept in the repository),
with `gcc -O2 -ffp-contract=off` for plain x86-64, so no multiply-add is fused.

Usage: python3 scripts/gen_quant_refs.py [--ggml-src DIR] [--out DIR]
  --ggml-src  a ggml source tree (containing src/ggml-quants.c and include/ggml.h); when
              omitted, the ggml-python sdist is downloaded with pip and its vendor/ggml used.
Needs: numpy, gguf (gguf-py), gcc, pip.
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

GGML_PYTHON_VERSION = "0.0.45"
QK_K = 256

LEGACY = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"]
KQUANTS = ["Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]
BLOCK = {"Q4_0": (32, 18), "Q4_1": (32, 20), "Q5_0": (32, 22), "Q5_1": (32, 24), "Q8_0": (32, 34),
         "Q2_K": (256, 84), "Q3_K": (256, 110), "Q4_K": (256, 144), "Q5_K": (256, 176),
         "Q6_K": (256, 210)}

STUBS = r"""
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include "ggml.h"
#include "ggml-impl.h"
void ggml_abort(const char * file, int line, const char * fmt, ...) {
    fprintf(stderr, "ggml_abort %s:%d %s\n", file, line, fmt); abort();
}
size_t ggml_row_size(enum ggml_type t, int64_t ne) { (void)t; (void)ne; abort(); }
const char * ggml_type_name(enum ggml_type t) { (void)t; return "?"; }
size_t ggml_type_size(enum ggml_type t) { (void)t; abort(); }
void ref_fp32_to_fp16_row(const float * x, uint16_t * y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = ggml_compute_fp32_to_fp16(x[i]);
}
void ref_fp32_to_bf16_row(const float * x, uint16_t * y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = ggml_compute_fp32_to_bf16(x[i]).bits;
}
void ref_fp16_to_fp32_row(const uint16_t * x, float * y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = ggml_compute_fp16_to_fp32(x[i]);
}
"""


def fetch_ggml_src(work: str) -> str:
    subprocess.run([sys.executable, "-m", "pip", "download", f"ggml-python=={GGML_PYTHON_VERSION}",
                    "--no-binary", "ggml-python", "--no-deps", "-d", work], check=True)
    sdist = glob.glob(os.path.join(work, "ggml_python-*.tar.gz"))[0]
    with tarfile.open(sdist) as tf:
        members = [m for m in tf.getmembers() if "/vendor/ggml/" in m.name
                   and ("/src/" in m.name or "/include/" in m.name) and m.isfile()]
        tf.extractall(work, members=members, filter="data")
    return glob.glob(os.path.join(work, "ggml_python-*", "vendor", "ggml"))[0]


def build_lib(src: str, work: str) -> ctypes.CDLL:
    stubs = os.path.join(work, "stubs.c")
    with open(stubs, "w") as f:
        f.write(STUBS)
    lib = os.path.join(work, "libggmlquants.so")
    cmd = ["gcc", "-O2", "-ffp-contract=off", "-fno-fast-math", "-std=gnu11", "-fPIC", "-shared",
           "-I", os.path.join(src, "include"), "-I", os.path.join(src, "src"),
           "-I", os.path.join(src, "src", "ggml-cpu"),
           os.path.join(src, "src", "ggml-quants.c"), stubs, "-o", lib, "-lm"]
    subprocess.run(cmd, check=True)
    return ctypes.CDLL(lib)


class CRef:
    def __init__(self, lib: ctypes.CDLL):
        self.lib = lib

    def quantize(self, name: str, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32).ravel()
        bs, ts = BLOCK[name]
        assert x.size % bs == 0
        out = np.zeros(x.size // bs * ts, dtype=np.uint8)
        fn = getattr(self.lib, f"quantize_row_{name.lower().replace('_k', '_K')}_ref")
        fn(x.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(ctypes.c_void_p),
           ctypes.c_int64(x.size))
        return out

    def dequantize(self, name: str, q: np.ndarray) -> np.ndarray:
        bs, ts = BLOCK[name]
        q = np.ascontiguousarray(q, dtype=np.uint8)
        n = q.size // ts * bs
        out = np.zeros(n, dtype=np.float32)
        fn = getattr(self.lib, f"dequantize_row_{name.lower().replace('_k', '_K')}")
        fn(q.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(ctypes.c_void_p), ctypes.c_int64(n))
        return out

    def conv(self, fname: str, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32).ravel()
        out = np.zeros(x.size, dtype=np.uint16)
        getattr(self.lib, fname)(x.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(ctypes.c_void_p),
                                 ctypes.c_int64(x.size))
        return out


def edge_rows(rng: np.random.Generator) -> np.ndarray:
    """Rows of 256 values exercising the corner cases of every quantizer."""
    n = QK_K
    rows = []
    def add(r):
        rows.append(np.asarray(r, dtype=np.float32).reshape(n))
    for _ in range(4):
        add(rng.standard_normal(n))
    add(np.zeros(n))                                          # all zeros
    add(np.full(n, 0.5))                                      # constant positive
    add(np.full(n, -3.0))                                     # constant negative
    add(rng.standard_normal(n) * 1e4)                         # large values
    add(rng.uniform(-6.0e4, 6.0e4, n))                        # near the f16 maximum
    add(rng.standard_normal(n) * 1e-3)                        # small
    add(rng.standard_normal(n) * 1e-6)                        # f16-subnormal scales
    add(rng.standard_normal(n) * 1e-20)                       # below GROUP_MAX_EPS
    r = rng.standard_normal(n); r[37] = 100.0; add(r)         # one positive outlier
    r = rng.standard_normal(n); r[200] = -250.0; add(r)       # one negative outlier
    add(-np.abs(rng.standard_normal(n)))                      # negative only
    add(np.abs(rng.standard_normal(n)) + 1.0)                 # positive only, offset
    add(rng.integers(-254, 255, n) * 0.5)                     # half-integers, amax 127: roundf ties
    r = rng.integers(-254, 255, n) * 0.5; r[0] = 127.0; add(r)
    add(rng.integers(-8, 8, n).astype(np.float32))            # exactly representable in 4 bits
    add(rng.integers(-16, 16, n).astype(np.float32))          # exactly representable in 5 bits
    r = np.zeros(n); idx = rng.choice(n, 12, replace=False); r[idx] = rng.standard_normal(12); add(r)  # sparse
    add(np.where(np.arange(n) % 2 == 0, 1.0, -1.0) * rng.uniform(0.5, 2.0, n))  # alternating
    r = np.zeros(n); r[:32] = rng.standard_normal(32); r[128:160] = 5.0; add(r)  # mixed zero/non-zero sub-blocks
    add(np.linspace(-1.0, 1.0, n))                            # ramp (many ties in scaled values)
    return np.stack(rows).astype(np.float32)


def random_rows(rng: np.random.Generator) -> np.ndarray:
    rows = rng.standard_normal((32, QK_K)).astype(np.float32)
    scales = (10.0 ** rng.uniform(-4, 2, size=(32, 1))).astype(np.float32)
    rows = rows * scales
    # heavy tails in some rows
    rows[::5] = (rng.standard_t(3, size=rows[::5].shape) * 0.05).astype(np.float32)
    return rows.astype(np.float32)


def float_values(rng: np.random.Generator) -> np.ndarray:
    special = np.array([0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x7f800000, 0xff800000,
                        0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001, 0x7fa00000, 0xffc12345,
                        0x7fffffff, 0x00000001, 0x80000001, 0x007fffff, 0x00800000, 0x7f7fffff,
                        0xff7fffff, 0x477fe000, 0x477fefff, 0x477ff000, 0x477fffff, 0x47800000,
                        0x38800000, 0x387fffff, 0x33800000, 0x33000000, 0x33000001, 0x337fffff,
                        0x3f808000, 0x3f818000, 0x3f807fff, 0x3f80ffff, 0x7f7f8000, 0x7f7f7fff,
                        0x3f801000, 0x3f803000, 0x3f800fff, 0x38ffe000, 0x387fe000],
                       dtype=np.uint32)
    rnd_bits = rng.integers(0, 2**32, size=6000, dtype=np.uint64).astype(np.uint32)
    # values concentrated around the f16 range, incl. subnormals and ties
    mags = (2.0 ** rng.uniform(-30, 18, size=2000)).astype(np.float32) * rng.choice([-1, 1], 2000)
    ties = (rng.integers(0, 2**16, size=151, dtype=np.uint64).astype(np.uint32) << 13) | 0x1000
    ties = ties | (rng.integers(100, 140, size=151, dtype=np.uint64).astype(np.uint32) << 23)
    bits = np.concatenate([special, rnd_bits, mags.view(np.uint32), ties]).astype(np.uint32)
    return bits.view(np.float32)


def example_values(n: int) -> np.ndarray:
    """Deterministic test data, exactly representable in f32 (tests/it/quant.rs uses the same)."""
    i = np.arange(n, dtype=np.int64)
    return (((i * 37) % 101 - 50) / 16.0).astype(np.float32)


def write_example_gguf(path: str) -> None:
    V = gguf.GGUFValueType
    w = gguf.GGUFWriter(path, "llama")
    w.add_key_value("example.u8", 200, V.UINT8)
    w.add_key_value("example.i8", -100, V.INT8)
    w.add_key_value("example.u16", 60000, V.UINT16)
    w.add_key_value("example.i16", -30000, V.INT16)
    w.add_key_value("example.u32", 4000000000, V.UINT32)
    w.add_key_value("example.i32", -2000000000, V.INT32)
    w.add_key_value("example.f32", 1.5, V.FLOAT32)
    w.add_key_value("example.bool", True, V.BOOL)
    w.add_key_value("example.string", "h\u00e9llo, world", V.STRING)
    w.add_key_value("example.u64", 18000000000000000000, V.UINT64)
    w.add_key_value("example.i64", -9000000000000000000, V.INT64)
    w.add_key_value("example.f64", -2.25e300, V.FLOAT64)
    w.add_key_value("example.arr.u8", [1, 2, 255], V.ARRAY, V.UINT8)
    w.add_key_value("example.arr.i8", [-1, 2, -128], V.ARRAY, V.INT8)
    w.add_key_value("example.arr.u16", [1, 65535], V.ARRAY, V.UINT16)
    w.add_key_value("example.arr.i16", [-2, 300], V.ARRAY, V.INT16)
    w.add_key_value("example.arr.u32", [7, 8, 9], V.ARRAY, V.UINT32)
    w.add_key_value("example.arr.i32", [-7, 8], V.ARRAY, V.INT32)
    w.add_key_value("example.arr.f32", [0.5, -1.25], V.ARRAY, V.FLOAT32)
    w.add_key_value("example.arr.bool", [True, False, True], V.ARRAY, V.BOOL)
    w.add_key_value("example.arr.string", ["a", "", "\u00fc\u00df"], V.ARRAY, V.STRING)
    w.add_key_value("example.arr.u64", [1, 2**64 - 1], V.ARRAY, V.UINT64)
    w.add_key_value("example.arr.i64", [-(2**63), 5], V.ARRAY, V.INT64)
    w.add_key_value("example.arr.f64", [3.0, -0.125], V.ARRAY, V.FLOAT64)
    w.add_custom_alignment(64)
    w.add_quantization_version(2)
    x = example_values(15).reshape(3, 5)
    w.add_tensor("t.f32", x)
    w.add_tensor("t.f16", example_values(64).reshape(2, 4, 8).astype(np.float16))
    bf = gguf.quants.quantize(example_values(32).reshape(2, 16), T.BF16)
    w.add_tensor("t.bf16", bf.view(np.uint8).reshape(2, 32), raw_dtype=T.BF16)
    q8 = gguf.quants.quantize(example_values(256).reshape(4, 64), T.Q8_0)
    w.add_tensor("t.q8_0", q8, raw_dtype=T.Q8_0)
    w.add_tensor("t.vec", example_values(7))
    w.add_tensor("t.4d", example_values(24).reshape(2, 1, 3, 4))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    r = gguf.GGUFReader(path)
    assert [t.name for t in r.tensors][-1] == "t.4d"


def sha256(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ggml-src")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "quant"))
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)

    work = tempfile.mkdtemp(prefix="ggml-ref-")
    src = args.ggml_src or fetch_ggml_src(work)
    cref = CRef(build_lib(src, work))

    rng = np.random.default_rng(20240611)
    manifest = {"generator": "scripts/gen_quant_refs.py",
                "numpy": np.__version__, "gguf": getattr(gguf, "__version__", "0.19.0"),
                "ggml_source": (f"ggml-python {GGML_PYTHON_VERSION} sdist (vendor/ggml)"
                                if not args.ggml_src else "local ggml tree"),
                "sets": []}

    # Block types.
    for set_name, data in (("edge", edge_rows(rng)), ("random", random_rows(rng))):
        data.tofile(os.path.join(out, f"{set_name}.f32"))
        entry = {"name": set_name, "input": f"{set_name}.f32", "rows": int(data.shape[0]),
                 "row_len": int(data.shape[1]), "outputs": []}
        for name in LEGACY + KQUANTS:
            c_bytes = cref.quantize(name, data)
            if name in LEGACY:
                py = gguf.quants.quantize(data, getattr(T, name)).reshape(-1).view(np.uint8)
                if not np.array_equal(py, c_bytes):
                    bad = int(np.flatnonzero(py != c_bytes)[0])
                    sys.exit(f"gguf-py and ggml C disagree for {name}/{set_name} at byte {bad}")
                ref = py
                source = "gguf.quants.quantize (== ggml quantize_row_ref)"
            else:
                ref = c_bytes
                source = "ggml quantize_row_ref (C)"
                # cross-check the layout with gguf-py's dequantizer
                deq_py = gguf.quants.dequantize(ref.reshape(data.shape[0], -1), getattr(T, name)).ravel()
                deq_c = cref.dequantize(name, ref)
                if not np.allclose(deq_py, deq_c, rtol=1e-5, atol=1e-30, equal_nan=True):
                    sys.exit(f"gguf-py and ggml C dequantize disagree for {name}/{set_name}")
            fname = f"{set_name}.{name}.bin"
            ref.tofile(os.path.join(out, fname))
            deq = cref.dequantize(name, ref)
            entry["outputs"].append({"type": name, "file": fname, "reference": source,
                                     "dequant_sha256": sha256(deq.astype("<f4"))})
        manifest["sets"].append(entry)

    # Float conversions.
    vals = float_values(rng)
    vals.tofile(os.path.join(out, "floats.f32"))
    f16 = cref.conv("ref_fp32_to_fp16_row", vals)
    bf16 = cref.conv("ref_fp32_to_bf16_row", vals)
    with np.errstate(over="ignore"):
        np_f16 = vals.astype(np.float16).view(np.uint16)
    nan = np.isnan(vals)
    assert np.array_equal(np_f16[~nan], f16[~nan]), "numpy f16 differs from ggml on non-NaN values"
    py_bf16 = gguf.quants.quantize(vals, T.BF16).reshape(-1).view(np.uint16)
    assert np.array_equal(py_bf16, bf16), "gguf-py bf16 differs from ggml"
    f16.astype("<u2").tofile(os.path.join(out, "floats.F16.bin"))
    bf16.astype("<u2").tofile(os.path.join(out, "floats.BF16.bin"))
    manifest["floats"] = {"input": "floats.f32", "count": int(vals.size),
                          "F16": {"file": "floats.F16.bin",
                                  "reference": "ggml_compute_fp32_to_fp16 (== numpy astype except NaN payloads)"},
                          "BF16": {"file": "floats.BF16.bin",
                                   "reference": "ggml_compute_fp32_to_bf16 (== gguf.quants BF16)"}}

    write_example_gguf(os.path.join(out, "example.gguf"))
    manifest["example_gguf"] = {"file": "example.gguf", "writer": "gguf.GGUFWriter"}

    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(p) for p in glob.glob(os.path.join(out, "*")))
    print(f"wrote {out} ({total} bytes)")


if __name__ == "__main__":
    main()
