#!/usr/bin/env python3
"""Extraction benchmark: `picklescan-rs --extract` beside `cp` of the same file and beside
torch.load(weights_only=True, mmap=True) + safetensors.torch.save_file, in one run, alternating
the three commands so that they share the machine's conditions. Reports medians of wall time and
of peak RSS (`/usr/bin/time -v` "Maximum resident set size").

    python benches/extract_gen.py /tmp/bench/model.pth          # ~1.5 GB fp32 state_dict
    cargo build --release
    python benches/extract_bench.py /tmp/bench/model.pth --runs 5 [--bin target/release/picklescan-rs]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(cmd):
    """(wall seconds, peak RSS in KiB) of one command, via /usr/bin/time -v."""
    subprocess.run(["sync"], check=True)
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.exit("command failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), p.stderr[-2000:]))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", p.stderr).group(1)
    secs = 0.0
    for part in wall.split(":"):
        secs = secs * 60 + float(part)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
    return secs, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--bin", default=str(HERE.parent / "target" / "release" / "picklescan-rs"))
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--out-dir", default=None, help="where outputs go (default: beside the model)")
    a = ap.parse_args()
    model = Path(a.model)
    out = Path(a.out_dir) if a.out_dir else model.parent
    size = model.stat().st_size
    cmds = {
        "cp": ["cp", str(model), str(out / "bench_cp.pth")],
        "picklescan-rs --extract": [a.bin, "--extract", str(model), "-o",
                                    str(out / "bench_ours.safetensors"), "--force"],
        "picklescan-rs --extract --no-source-hash": [
            a.bin, "--extract", str(model), "-o", str(out / "bench_ours_nohash.safetensors"),
            "--force", "--no-source-hash"],
        "torch.load(mmap) + save_file": [a.python, str(HERE / "extract_torch_ref.py"), str(model),
                                         str(out / "bench_ref.safetensors")],
        # The floor set by the source digest the output's metadata carries (OpenSSL SHA-256).
        "sha256 of the input (hashlib)": [
            a.python, "-c",
            "import hashlib,sys\nh=hashlib.sha256()\nf=open(sys.argv[1],'rb')\n"
            "while b:=f.read(8<<20): h.update(b)", str(model)],
    }
    results = {k: [] for k in cmds}
    for i in range(a.runs):
        for name, cmd in cmds.items():
            for f in out.glob("bench_*"):
                f.unlink()
            results[name].append(timed(cmd))
            print("run %d %-30s %6.2f s %8d KiB" % ((i + 1, name) + results[name][-1]), flush=True)
    for f in out.glob("bench_*"):
        f.unlink()
    med = {k: (statistics.median(t for t, _ in v), statistics.median(r for _, r in v))
           for k, v in results.items()}
    ours = med["picklescan-rs --extract"][0]
    print("\ninput: %s, %.2f GB; %d runs; medians" % (model, size / 1e9, a.runs))
    print("| command | wall (s) | MB/s | peak RSS (MiB) | vs picklescan-rs |")
    print("|---|---:|---:|---:|---:|")
    for k, (t, r) in med.items():
        print("| %s | %.2f | %.0f | %.1f | %.2f× |" % (k, t, size / t / 1e6, r / 1024, t / ours))
    print("\nspeed vs cp: %.2f× (target ≥ 0.8×); vs torch+safetensors: %.2f× faster (target ≥ 3×); "
          "peak RSS %.1f MiB (target < 100)" % (med["cp"][0] / ours,
                                                 med["torch.load(mmap) + save_file"][0] / ours,
                                                 med["picklescan-rs --extract"][1] / 1024))


if __name__ == "__main__":
    main()
