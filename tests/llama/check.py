#!/usr/bin/env python3
"""picklescan-rs's model-folder conversion against llama.cpp's own tools, on the folders of
make_models.py.

For each folder and type: the reference is `convert_hf_to_gguf.py --outtype T` (f32, f16, bf16,
q8_0), or `convert_hf_to_gguf.py --outtype f32` followed by llama-quantize (through the
llama_cpp bindings' `llama_model_quantize`) for the mixes; ours is `picklescan-rs --extract
FOLDER --to gguf --quant T`. Compared with gguf-py's reader (the sdist's own gguf-py, so reader
and converter are the same version): every metadata key and value, bit for bit (apart from the
`picklescan.*` provenance keys ours adds), every tensor's name, type, shape and bytes. Then
llama.cpp loads both files (llama_cpp.Llama): the same prompt must give the same tokens and the
same logits, exactly.

    python tests/llama/check.py --bin target/release/picklescan-rs --llama-cpp SRC --cases DIR \
        [--only SUBSTRING] [--keep DIR]
"""
import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TYPES = ["f32", "f16", "bf16", "q8_0"]
MIXES = ["Q4_K_M", "Q4_K_S", "Q5_K_M", "Q5_K_S", "Q6_K", "Q3_K_M", "Q2_K"]
PROMPT = b"the quick brown fox jumps over 42 lazy dogs \xc3\xbcn\xc3\xafc\xc3\xb6d\xc3\xa9 \xe6\x9d\xb1\xe4\xba\xac"
# How many differing keys / tensors are printed in full for one conversion.
SHOW = 8


class Failure(Exception):
    """A conversion whose reference or ours could not be made."""


def pre_of(case: str) -> str:
    if case.startswith("gpt2"):
        return "gpt-2"
    return "qwen2" if case.startswith("qwen") else "llama-bpe"


@contextlib.contextmanager
def stderr_to(path: Path):
    """Send file descriptor 2 to `path` (llama.cpp's C code logs there, not to sys.stderr)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "ab") as f:
        os.dup2(f.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def tail(text: str, n: int = 1200) -> str:
    return text.strip()[-n:]


def convert(src: Path, case: Path, outtype: str, out: Path) -> None:
    # The BPE cases' tokenizers are trained here, so the converter's pre-tokenizer hash lookup
    # does not know them: convert_forced_pre.py names the pre-tokenizer they are built to match.
    env = dict(os.environ, PRE=pre_of(case.name))
    cmd = [sys.executable, str(HERE / "convert_forced_pre.py"), str(src), str(case),
           "--outtype", outtype, "--outfile", str(out)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise Failure(f"reference convert_hf_to_gguf.py --outtype {outtype} exited "
                      f"{r.returncode}:\n{tail(r.stderr)}")


def reference(src: Path, case: Path, t: str, work: Path) -> Path:
    out = work / f"ref-{t}.gguf"
    if t in TYPES:
        convert(src, case, t, out)
        return out
    # llama-quantize's input is the converter's f32 output, made once per folder.
    f32 = work / "ref-f32.gguf"
    if not f32.exists():
        convert(src, case, "f32", f32)
    import llama_cpp
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{t}")
    params.nthread = 2
    log = work / f"quantize-{t}.log"
    with stderr_to(log):
        code = llama_cpp.llama_model_quantize(str(f32).encode(), str(out).encode(), params)
    if code != 0:
        raise Failure(f"reference llama_model_quantize {t} returned {code}:\n"
                      f"{tail(log.read_text(errors='replace'))}")
    return out


def ours(binary: Path, case: Path, t: str, work: Path) -> Path:
    out = work / f"ours-{t}.gguf"
    cmd = [str(binary), "--extract", str(case), "--to", "gguf", "--quant", t.lower(), "-o",
           str(out), "--force", "--no-progress"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise Failure(f"picklescan-rs exited {r.returncode}:\n{tail(r.stderr)}")
    return out


# -- metadata -------------------------------------------------------------------------------------

def raw_values(field) -> list[bytes]:
    """The value parts of a key, as raw bytes: comparing these compares floats bit for bit."""
    return [field.parts[i].tobytes() for i in field.data]


def shown(field, i: int | None = None):
    """A readable value (or element i of an array value)."""
    try:
        v = field.contents() if i is None else field.contents(i)
    except Exception:  # not UTF-8, nested arrays: show the raw bytes
        parts = raw_values(field)
        v = parts if i is None else parts[i]
    s = repr(v)
    return s if len(s) <= 160 else s[:160] + f"... ({len(s)} chars)"


def key_difference(k: str, a, b) -> str | None:
    ta, tb = [t.name for t in a.types], [t.name for t in b.types]
    if ta != tb:
        return f"key {k}: type {'/'.join(ta)} != reference {'/'.join(tb)}: {shown(a)} vs {shown(b)}"
    va, vb = raw_values(a), raw_values(b)
    if va == vb:
        return None
    if ta[0] != "ARRAY":
        return f"key {k}: {shown(a)} != reference {shown(b)}"
    diff = [i for i in range(min(len(va), len(vb))) if va[i] != vb[i]]
    msg = f"key {k}: array of {len(va)} vs reference {len(vb)}"
    if diff:
        i = diff[0]
        msg += f"; {len(diff)} elements differ, first [{i}]: {shown(a, i)} != {shown(b, i)}"
    return msg


def key_problems(a, b) -> list[str]:
    # GGUF.* are the reader's pseudo-keys (version, counts): the tensor comparison covers them.
    def keys(r):
        return {k: f for k, f in r.fields.items() if not k.startswith("GGUF.")}
    ka, kb = keys(a), keys(b)
    problems = []
    if not any(k.startswith("picklescan.") for k in ka):
        problems.append("ours has no picklescan.* provenance key")
    for k in sorted(set(ka) | set(kb)):
        if k.startswith("picklescan."):
            continue
        if k not in ka:
            problems.append(f"key {k} missing in ours (reference: {shown(kb[k])})")
        elif k not in kb:
            problems.append(f"key {k} only in ours: {shown(ka[k])}")
        elif (d := key_difference(k, ka[k], kb[k])) is not None:
            problems.append(d)
    return problems


# -- tensors --------------------------------------------------------------------------------------

def dequantized_difference(x, y) -> str:
    """Max abs difference of two same-shaped tensors after dequantizing: a debugging aid."""
    import numpy as np
    from gguf.quants import dequantize
    try:
        da = dequantize(x.data, x.tensor_type).astype(np.float64).reshape(-1)
        db = dequantize(y.data, y.tensor_type).astype(np.float64).reshape(-1)
    except Exception as e:  # noqa: BLE001 (a type gguf-py cannot dequantize: say so, go on)
        return f"(not dequantized: {e})"
    if da.shape != db.shape:
        return f"(dequantized sizes {da.size} vs {db.size})"
    d = np.abs(da - db)
    return (f"max abs diff {d.max():.6g} after dequantizing, {int((d > 0).sum())}/{d.size} "
            f"values differ, first at {int(np.argmax(d > 0))}")


def dims(t) -> list[int]:
    return [int(d) for d in t.shape]


def tensor_problems(a, b) -> list[str]:
    ta = {t.name: t for t in a.tensors}
    tb = {t.name: t for t in b.tensors}
    problems = []
    for n in [t.name for t in b.tensors] + [t.name for t in a.tensors if t.name not in tb]:
        if n not in ta:
            problems.append(f"tensor {n} missing in ours")
            continue
        if n not in tb:
            problems.append(f"tensor {n} only in ours ({ta[n].tensor_type.name} {dims(ta[n])})")
            continue
        x, y = ta[n], tb[n]
        if dims(x) != dims(y):
            problems.append(f"tensor {n}: shape {dims(x)} != reference {dims(y)}")
        elif x.tensor_type != y.tensor_type:
            problems.append(f"tensor {n}: type {x.tensor_type.name} != reference "
                            f"{y.tensor_type.name} {dims(x)}; {dequantized_difference(x, y)}")
        elif x.data.tobytes() != y.data.tobytes():
            problems.append(f"tensor {n}: bytes differ ({x.tensor_type.name} {dims(x)}); "
                            f"{dequantized_difference(x, y)}")
    return problems


def notes(a, b) -> list[str]:
    """Differences that llama.cpp does not care about, printed but not failed."""
    if [t.name for t in a.tensors] != [t.name for t in b.tensors]:
        return ["tensor order differs from the reference's"]
    return []


# -- running --------------------------------------------------------------------------------------

def run(path: Path, log: Path):
    """Tokens of PROMPT and the logits of every position, from llama.cpp itself."""
    import llama_cpp
    import numpy as np
    with stderr_to(log):
        m = llama_cpp.Llama(model_path=str(path), logits_all=True, n_ctx=64, verbose=False,
                            seed=0, n_threads=2)
        try:
            tokens = m.tokenize(PROMPT, add_bos=True, special=False)[:48]
            m.eval(tokens)
            return tokens, np.array(m.scores[: len(tokens)])
        finally:
            m.close()


def run_problems(ours_path: Path, ref_path: Path, work: Path) -> tuple[list[str], str]:
    import numpy as np
    try:
        ref_tokens, ref_logits = run(ref_path, work / "llama-ref.log")
    except Exception as e:  # noqa: BLE001
        raise Failure(f"llama.cpp cannot run the reference: {e}")
    try:
        our_tokens, our_logits = run(ours_path, work / "llama-ours.log")
    except Exception as e:  # noqa: BLE001
        return [f"llama.cpp cannot run ours: {e}"], ""
    if our_tokens != ref_tokens:
        return [f"llama.cpp tokenizes the prompt as {our_tokens} != reference {ref_tokens}"], ""
    if not np.isfinite(ref_logits).all():
        raise Failure("the reference's logits are not finite")
    if not np.array_equal(our_logits, ref_logits):
        d = np.abs(our_logits.astype(np.float64) - ref_logits)
        return [f"logits differ: max abs diff {np.nanmax(d):.6g} over {len(our_tokens)} tokens"], ""
    return [], f"same logits ({len(our_tokens)} tokens)"


def check(binary: Path, src: Path, case: Path, t: str, work: Path) -> tuple[str, list[str]]:
    """One conversion: (status, details). status is 'ok …', 'FAIL …' or 'REF-FAIL …'."""
    import gguf
    try:
        ref = reference(src, case, t, work)
    except Failure as e:
        return "REF-FAIL reference not made", [str(e)]
    try:
        mine = ours(binary, case, t, work)
    except Failure as e:
        return "FAIL picklescan-rs failed", [str(e)]
    a, b = gguf.GGUFReader(str(mine)), gguf.GGUFReader(str(ref))
    keys, tensors = key_problems(a, b), tensor_problems(a, b)
    try:
        ran, ok_note = run_problems(mine, ref, work)
    except Failure as e:
        return "REF-FAIL reference does not run", [str(e)]
    details = keys[:SHOW] + tensors[:SHOW] + ran + notes(a, b)
    if len(keys) > SHOW:
        details.insert(SHOW, f"... {len(keys) - SHOW} more differing keys")
    if len(tensors) > SHOW:
        details.append(f"... {len(tensors) - SHOW} more differing tensors")
    reasons = ([f"{len(keys)} keys"] if keys else []) + \
        ([f"{len(tensors)}/{len(b.tensors)} tensors"] if tensors else []) + \
        (["logits"] if ran else [])
    if reasons:
        return "FAIL " + ", ".join(reasons), details
    return f"ok, {ok_note}", details


def table(rows: list[tuple[str, str, str]]) -> None:
    cases = list(dict.fromkeys(r[0] for r in rows))
    types = list(dict.fromkeys(r[1] for r in rows))
    status = {(c, t): s for c, t, s in rows}
    width = max(len(c) for c in cases)
    print("\n" + " " * width + " " + " ".join(f"{t:>7}" for t in types))
    for c in cases:
        cells = []
        for t in types:
            s = status.get((c, t), "-")
            cells.append(f"{'ok' if s.startswith('ok') else s.split()[0] if s != '-' else '-':>7}")
        print(f"{c:<{width}} " + " ".join(cells))
    failed = [(c, t, s) for c, t, s in rows if not s.startswith("ok")]
    for c, t, s in failed:
        print(f"  {c} {t}: {s}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, type=Path, help="the picklescan-rs binary")
    ap.add_argument("--llama-cpp", required=True, type=Path,
                    help="llama.cpp's source folder (convert_hf_to_gguf.py, conversion/, gguf-py/)")
    ap.add_argument("--cases", required=True, type=Path, help="make_models.py's output folder")
    ap.add_argument("--only", default="", help="only the cases (or types) whose name contains this")
    ap.add_argument("--types", default="", help="comma-separated types (default: all)")
    ap.add_argument("--keep", type=Path, help="keep every GGUF and log in this folder")
    args = ap.parse_args()
    # The sdist's own gguf-py, not a PyPI gguf: the converter and the reader must agree.
    sys.path.insert(0, str(args.llama_cpp / "gguf-py"))
    types = args.types.split(",") if args.types else TYPES + MIXES
    cases = sorted(p for p in args.cases.iterdir() if p.is_dir() and not p.name.startswith("."))
    rows = []
    start = time.monotonic()
    for case in cases:
        chosen = [t for t in types if not args.only or args.only in case.name or args.only == t]
        if not chosen:
            continue
        if args.keep:
            work = args.keep / case.name
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
        else:
            work = Path(tempfile.mkdtemp(prefix="llama-check-"))
        try:
            for t in chosen:
                t0 = time.monotonic()
                try:
                    status, details = check(args.bin, args.llama_cpp, case, t, work)
                except Exception as e:  # noqa: BLE001 (a harness error fails the row, not the run)
                    status, details = f"FAIL harness error {type(e).__name__}", [repr(e)]
                rows.append((case.name, t, status))
                print(f"{case.name:32} {t:7} {status}  [{time.monotonic() - t0:.1f} s]", flush=True)
                for d in details:
                    print("    " + d.replace("\n", "\n    "), flush=True)
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
    if not rows:
        print("no case selected")
        return 1
    table(rows)
    failed = sum(1 for r in rows if not r[2].startswith("ok"))
    print(f"\n{len(rows) - failed}/{len(rows)} conversions agree with llama.cpp's tools "
          f"({time.monotonic() - start:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
