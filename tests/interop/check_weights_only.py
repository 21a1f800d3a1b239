#!/usr/bin/env python3
"""`--policy torch-weights-only` predictions against real torch.

For every torch file of the corpus that picklescan-rs does not call dangerous, take what the
report predicts (`loads`, `loads_after_allowlisting`, `add_safe_globals`), then in a fresh
interpreter apply exactly the printed `add_safe_globals([...])` and call
`torch.load(path, weights_only=True)`; the prediction must match what torch does. Files the scanner
calls dangerous are never loaded, and no global a deny rule matches is ever allowlisted.

    python tests/interop/check_weights_only.py --bin target/release/picklescan-rs --corpus corpus
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

LOAD = r"""
import importlib, sys, torch
names = sys.argv[2:]
objs = []
for n in names:
    parts = n.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            o = importlib.import_module(".".join(parts[:i]))
        except Exception:
            continue
        try:
            for p in parts[i:]:
                o = getattr(o, p)
        except AttributeError:
            continue
        objs.append(o)
        break
    else:
        print("UNRESOLVED " + n)
        sys.exit(3)
torch.serialization.add_safe_globals(objs)
try:
    torch.load(sys.argv[1], weights_only=True)
except Exception as e:
    print("FAILS " + str(e).splitlines()[-1][:200] if str(e) else "FAILS")
    sys.exit(1)
print("LOADS")
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--corpus", default="corpus")
    a = ap.parse_args()
    import torch  # noqa: F401  (the check needs it)
    import numpy

    files = [p for p in sorted(Path(a.corpus).rglob("*")) if p.is_file() and p.suffix in (".pt", ".pth", ".ckpt", ".bin")]
    checked = agree = 0
    problems = []
    skipped = []
    for f in files:
        out = subprocess.run([a.bin, "--no-config", "--policy", "torch-weights-only", "--format", "json", str(f)],
                             capture_output=True, text=True)
        try:
            rep = json.loads(out.stdout)["files"][0]
        except Exception:
            continue
        wo = rep.get("torch_weights_only")
        if not wo or wo.get("not_torch_file") or rep["verdict"] == "dangerous":
            continue
        if any(x.get("severity") in ("high", "critical") for x in rep["findings"]):
            continue
        names = wo.get("add_safe_globals", [])
        predicted = wo.get("loads_after_allowlisting", False)
        res = subprocess.run([sys.executable, "-c", LOAD, str(f), *names], capture_output=True, text=True)
        if res.returncode == 3:
            # A global of a library not installed here (transformers, …): nothing to compare.
            skipped.append(f"{f} ({res.stdout.strip()})")
            continue
        actual = res.returncode == 0
        checked += 1
        if actual == predicted:
            agree += 1
        else:
            problems.append(f"{f}: predicted {'loads' if predicted else 'fails'} after add_safe_globals({names}), "
                            f"torch: {res.stdout.strip() or res.stderr.strip()[-300:]}")
    print(f"torch {torch.__version__}, numpy {numpy.__version__}: {agree} of {checked} predictions agree"
          f" ({len(skipped)} skipped: a library they name is not installed)")
    for p in problems:
        print("  " + p)
    return 0 if not problems and checked > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
