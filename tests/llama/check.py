#!/usr/bin/env python3
"""picklescan-rs's model-folder conversion against llama.cpp's own tools, on the folders of
make_models.py.

For each folder and type: the reference is `convert_hf_to_gguf.py --outtype T` (f32, f16, bf16,
q8_0), or `convert_hf_to_gguf.py --outtype f32` followed by llama-quantize (through the
llama_cpp bindings' `llama_model_quantize`) for the mixes; ours is `picklescan-rs --extract
FOLDER --to gguf --quant T`. Compared with gguf-py's reader: every metadata key and value (apart
from the `picklescan.*` provenance keys ours adds), every tensor's name, type, shape and bytes.
Then llama.cpp loads both files (llama_cpp.Llama) and the logits of a prompt must be equal.

    python tests/llama/check.py --bin target/release/picklescan-rs --llama-cpp SRC --cases DIR
"""
import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TYPES = ["f32", "f16", "bf16", "q8_0"]
MIXES = ["Q4_K_M", "Q4_K_S", "Q5_K_M", "Q5_K_S", "Q6_K", "Q3_K_M", "Q2_K"]
# The types whose outputs are also run by llama.cpp (logits compared).
RUN = {"f16", "Q4_K_M"}


def pre_of(case: str) -> str:
    return "qwen2" if case.startswith("qwen") else "llama-bpe"


def fields(reader) -> dict:
    out = {}
    for k, f in reader.fields.items():
        if k.startswith("GGUF.") or k.startswith("picklescan."):
            continue
        out[k] = (tuple(int(t) for t in f.types), f.contents())
    return out


def compare(ours: Path, ref: Path) -> list[str]:
    import gguf
    a, b = gguf.GGUFReader(str(ours)), gguf.GGUFReader(str(ref))
    problems = []
    fa, fb = fields(a), fields(b)
    for k in sorted(set(fa) | set(fb)):
        if k not in fa:
            problems.append(f"key {k} missing (reference: {str(fb[k][1])[:80]})")
        elif k not in fb:
            problems.append(f"key {k} extra ({str(fa[k][1])[:80]})")
        elif fa[k] != fb[k]:
            problems.append(f"key {k}: {str(fa[k])[:80]} != {str(fb[k])[:80]}")
    if "picklescan.source_sha256" not in a.fields:
        problems.append("no picklescan.source_sha256")
    ta = {t.name: t for t in a.tensors}
    tb = {t.name: t for t in b.tensors}
    for n in sorted(set(ta) | set(tb)):
        if n not in ta or n not in tb:
            problems.append(f"tensor {n} only in {'reference' if n in tb else 'ours'}")
            continue
        x, y = ta[n], tb[n]
        if x.tensor_type != y.tensor_type or list(x.shape) != list(y.shape):
            problems.append(f"tensor {n}: {x.tensor_type.name}{list(x.shape)} != "
                            f"{y.tensor_type.name}{list(y.shape)}")
        elif x.data.tobytes() != y.data.tobytes():
            problems.append(f"tensor {n}: bytes differ ({x.tensor_type.name})")
    return problems


def logits(path: Path):
    import llama_cpp
    import numpy as np
    m = llama_cpp.Llama(model_path=str(path), logits_all=True, n_ctx=64, verbose=False, seed=0,
                        n_threads=2)
    tokens = [1, 5, 9, 20, 33, 7, 64, 3]
    m.eval(tokens)
    out = np.array(m.scores[: len(tokens)])
    m.close()
    return out


def reference(src: Path, case: Path, t: str, work: Path) -> Path:
    env = dict(os.environ, PRE=pre_of(case.name))
    conv = [sys.executable, str(HERE / "convert_forced_pre.py"), str(src), str(case)]
    if t in TYPES:
        out = work / f"ref-{t}.gguf"
        subprocess.run(conv + ["--outtype", t, "--outfile", str(out)], env=env, check=True,
                       capture_output=True)
        return out
    f32 = work / "ref-f32.gguf"
    if not f32.exists():
        subprocess.run(conv + ["--outtype", "f32", "--outfile", str(f32)], env=env, check=True,
                       capture_output=True)
    import llama_cpp
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{t}")
    params.nthread = 2
    out = work / f"ref-{t}.gguf"
    if llama_cpp.llama_model_quantize(str(f32).encode(), str(out).encode(), params) != 0:
        raise RuntimeError(f"llama_model_quantize {t} failed")
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, type=Path)
    ap.add_argument("--llama-cpp", required=True, type=Path)
    ap.add_argument("--cases", required=True, type=Path)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    sys.path.insert(0, str(args.llama_cpp / "gguf-py"))
    import numpy as np
    rows = []
    for case in sorted(p for p in args.cases.iterdir() if p.is_dir()):
        if args.only and args.only not in case.name:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            for t in TYPES + MIXES:
                status = "ok"
                try:
                    ref = reference(args.llama_cpp, case, t, work)
                    ours = work / f"ours-{t}.gguf"
                    r = subprocess.run([str(args.bin), "--extract", str(case), "--to", "gguf",
                                        "--quant", t.lower(), "-o", str(ours), "--force",
                                        "--no-progress"], capture_output=True, text=True)
                    if r.returncode != 0:
                        status = f"FAIL: exit {r.returncode}: {r.stderr.strip()[-300:]}"
                    else:
                        problems = compare(ours, ref)
                        if problems:
                            status = "FAIL: " + "; ".join(problems[:6])
                        elif t in RUN:
                            a, b = logits(ours), logits(ref)
                            if not np.isfinite(a).all() or not np.array_equal(a, b):
                                status = f"FAIL: logits differ by {float(np.abs(a - b).max())}"
                            else:
                                status = "ok, same logits"
                except Exception as e:  # a reference that cannot be made is a failure too
                    status = f"FAIL: {type(e).__name__}: {e}"
                rows.append((case.name, t, status))
                print(f"{case.name:32} {t:7} {status}", flush=True)
    failed = [r for r in rows if not r[2].startswith("ok")]
    print(f"{len(rows) - len(failed)}/{len(rows)} conversions agree with llama.cpp's tools")
    return 1 if failed or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
