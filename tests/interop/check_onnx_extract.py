#!/usr/bin/env python3
"""Check `picklescan-rs --extract` of ONNX models against the onnx package's own reader.

For every ONNX fixture of corpus/formats/onnx whose scan is clean, extract it to safetensors and
compare every initializer `onnx.numpy_helper.to_array` gives (external data resolved from the
model's folder) with the tensor of the same name: dtype, shape and exact values. Fixtures whose
external data leaves the folder must be refused (exit 3) and write nothing.

    python tests/interop/check_onnx_extract.py --bin target/release/picklescan-rs [--corpus corpus]
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from safetensors.numpy import load_file


def check(binary: Path, model: Path, out: Path) -> str | None:
    r = subprocess.run([str(binary), "--extract", str(model), "-o", str(out), "--force"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return f"exit {r.returncode}: {r.stderr.strip()}"
    ours = load_file(str(out))
    proto = onnx.load(str(model), load_external_data=False)
    for t in proto.graph.initializer:
        want = numpy_helper.to_array(t, base_dir=str(model.parent))
        got = ours.get(t.name)
        if got is None:
            return f"{t.name}: missing"
        if got.dtype != want.dtype or got.shape != want.shape or not np.array_equal(got, want):
            return f"{t.name}: {got.dtype}{got.shape} differs from {want.dtype}{want.shape}"
    return None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, type=Path)
    ap.add_argument("--corpus", default=Path("corpus"), type=Path)
    args = ap.parse_args()
    root = args.corpus / "formats" / "onnx"
    benign = [root / "mlp.onnx", root / "external_ok" / "model.onnx"]
    refused = [root / "absolute_path" / "model.onnx", root / "cve_2022_25882_traversal" / "model.onnx"]
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for m in benign:
            problem = check(args.bin, m, Path(tmp) / "out.safetensors")
            print(f"{m}: {problem or 'ok'}")
            failures += problem is not None
        for m in refused:
            if not m.exists():
                continue
            out = Path(tmp) / "refused.safetensors"
            r = subprocess.run([str(args.bin), "--extract", str(m), "-o", str(out)],
                               capture_output=True, text=True)
            ok = r.returncode != 0 and not out.exists()
            print(f"{m}: {'refused' if ok else 'NOT REFUSED'}")
            failures += not ok
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
