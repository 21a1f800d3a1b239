#!/usr/bin/env python3
"""Precision on what real libraries save: clean / suspicious / dangerous counts over the benign
benchmark set, for picklescan-rs (one or more binaries: before and after a change) and the
peers (picklescan, ModelAudit) on the same files.

    python corpus/gen/ecosystem.py --full /tmp/benign     # hundreds of files, by the libraries
    python benches/precision.py /tmp/benign --bin after=target/release/picklescan-rs \
        [--bin before=/path/to/old/picklescan-rs] [--peers VENV_BIN_DIR] [--markdown]

Each tool's verdict per file:
- picklescan-rs: the JSON report's verdict (exit code semantics: 0 clean, 2 suspicious, 1 dangerous);
- picklescan: exit 1 (infected) → dangerous; a parse error or any "suspicious global" → suspicious;
- ModelAudit: one JSON scan of the folder; a file with a critical issue → dangerous, with a
  warning → suspicious (info/debug issues do not count).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path


def files_of(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def ours(binary: str, root: Path) -> dict[str, str]:
    res = subprocess.run([binary, "--no-config", "--no-progress", "--format", "json", str(root)],
                         capture_output=True, text=True)
    doc = json.loads(res.stdout)
    return {str(Path(f["path"]).resolve()): f["verdict"] for f in doc["files"]}


def picklescan(bin_dir: Path, files: list[Path]) -> dict[str, str]:
    out = {}
    for f in files:
        res = subprocess.run([str(bin_dir / "picklescan"), "-p", str(f)], capture_output=True, text=True)
        text = res.stdout + res.stderr
        sus = re.search(r"Suspicious globals: (\d+)", text)
        if res.returncode == 1:
            out[str(f.resolve())] = "dangerous"
        elif res.returncode != 0 or (sus and int(sus.group(1)) > 0) or "ERROR" in text:
            out[str(f.resolve())] = "suspicious"
        else:
            out[str(f.resolve())] = "clean"
    return out


def modelaudit(bin_dir: Path, root: Path, files: list[Path]) -> dict[str, str]:
    res = subprocess.run([str(bin_dir / "modelaudit"), "scan", "--format", "json", str(root)],
                         capture_output=True, text=True)
    try:
        doc = json.loads(res.stdout)
    except json.JSONDecodeError:
        print("modelaudit: no JSON output", file=sys.stderr)
        return {}
    worst: dict[str, str] = defaultdict(lambda: "clean")
    rank = {"clean": 0, "suspicious": 1, "dangerous": 2}
    for issue in doc.get("issues", []):
        loc = issue.get("location") or (issue.get("details") or {}).get("path") or ""
        loc = str(Path(loc.split(" ")[0].split(":")[0]).resolve()) if loc else ""
        sev = issue.get("severity", "")
        v = "dangerous" if sev == "critical" else "suspicious" if sev == "warning" else "clean"
        if rank[v] > rank[worst[loc]]:
            worst[loc] = v
    return {str(f.resolve()): worst[str(f.resolve())] for f in files}


def sample(root: Path, n: int) -> Path:
    """Copy N files per library (first-level folder) under 256 KiB into a temporary folder."""
    import random
    import shutil
    import tempfile

    rng = random.Random(1)
    out = Path(tempfile.mkdtemp(prefix="precision-sample-"))
    for lib in sorted(p for p in root.iterdir() if p.is_dir()):
        small = sorted(f for f in lib.iterdir() if f.is_file() and f.stat().st_size < 256 * 1024)
        (out / lib.name).mkdir()
        for f in rng.sample(small, min(n, len(small))):
            shutil.copy(f, out / lib.name / f.name)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("root", type=Path)
    ap.add_argument("--bin", action="append", default=[], help="NAME=PATH of a picklescan-rs binary")
    ap.add_argument("--peers", type=Path, help="folder with the picklescan and modelaudit commands")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--details", type=Path, help="write every tool's verdict per file here (JSON)")
    ap.add_argument("--sample", type=int, metavar="N",
                    help="only N files per library under 256 KiB, drawn with a fixed seed (ModelAudit takes seconds a file)")
    a = ap.parse_args()
    if a.sample:
        a.root = sample(a.root, a.sample)
    files = files_of(a.root)
    results: dict[str, dict[str, str]] = {}
    for spec in a.bin:
        name, path = spec.split("=", 1)
        results[f"picklescan-rs ({name})"] = ours(path, a.root)
    if a.peers:
        results["picklescan"] = picklescan(a.peers, files)
        results["ModelAudit"] = modelaudit(a.peers, a.root, files)
    libs = sorted({f.relative_to(a.root).parts[0] for f in files})
    print(f"{len(files)} files in {len(libs)} libraries: {', '.join(libs)}\n")
    print("| tool | files | clean | suspicious | dangerous | not clean |")
    print("|---|---|---|---|---|---|")
    for tool, verdicts in results.items():
        c = Counter(verdicts.get(str(f.resolve()), "missing") for f in files)
        bad = len(files) - c["clean"]
        print(f"| {tool} | {len(files)} | {c['clean']} | {c['suspicious']} | {c['dangerous']} | "
              f"{100 * bad / len(files):.1f} % |")
    print()
    for tool, verdicts in results.items():
        per_lib = defaultdict(Counter)
        for f in files:
            per_lib[f.relative_to(a.root).parts[0]][verdicts.get(str(f.resolve()), "missing")] += 1
        cells = ", ".join(f"{lib} {c['clean']}/{sum(c.values())}" for lib, c in sorted(per_lib.items()))
        print(f"- {tool}, clean per library: {cells}")
    if a.details:
        a.details.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
