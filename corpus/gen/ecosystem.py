#!/usr/bin/env python3
"""Generate corpus/ecosystem/: files the ML ecosystem's normal save paths write (benign), files
of a model repository that are not models, and attacks on the allowlists and on TorchScript.

    python corpus/gen/ecosystem.py                 # the committed sample + manifest
    python corpus/gen/ecosystem.py --full DIR      # the benign benchmark set (hundreds of files)

Benign files are made by the libraries themselves (pickle.dump at protocols 2-5, joblib.dump with
its compressors, torch.save, torch.jit.save) from the objects of scripts/ml_objects.py; attacks are
assembled opcode by opcode (encodings as in CPython's Lib/pickletools.py) or by editing a real
save. Payloads only run `true` or `echo ...`.
"""

from __future__ import annotations

import argparse
import io
import json
import pickle
import struct
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import ml_objects  # noqa: E402

OUT = ROOT / "corpus" / "ecosystem"
MAX_COMMITTED = 160_000  # bytes: larger benign files go to the benchmark set only

# Which objects of each library go into the committed sample (the full set takes them all).
SAMPLE = {
    "stdlib": ["datetime_zoneinfo", "decimal", "path", "defaultdict", "http_status", "parse_result", "uuid", "regex"],
    "numpy": ["matrix", "masked", "recarray", "generator", "random_state", "structured", "scalars", "array_object"],
    "scipy": ["csr_matrix", "coo_array", "frozen_norm"],
    "pandas": ["frame", "series", "multiindex", "timestamp_tz", "categorical"],
    "sklearn": ["sklearn_LinearRegression", "sklearn_RandomForestClassifier", "sklearn_DecisionTreeClassifier",
                "sklearn_hgb_categorical", "sklearn_pipeline_log", "sklearn_KMeans", "sklearn_SVC",
                "sklearn_StandardScaler", "sklearn_KNeighborsClassifier", "sklearn_GradientBoostingRegressor"],
    "torch": ["torch_module_linear", "torch_module_sequential", "torch_state_lstm", "torch_optimizer_adam",
              "torch_checkpoint", "torch_scaler", "torch_module_mha"],
    "xgboost": ["xgb_classifier"],
    "lightgbm": ["lgbm_classifier"],
    "statsmodels": ["ols_results"],
    "gensim": ["keyedvectors"],
    "transformers": ["config_BertConfig", "generation_config"],
}


# Objects whose real saves are rightly not clean, and why.
NOT_CLEAN = {
    "ols_results": ("suspicious", "statsmodels results hold a ModelData, whose __setstate__ re-evaluates the "
                                  "model's formula (Python code): refused by the allowlist generator"),
}


def saves(lib: str, name: str, obj) -> list[tuple[str, bytes]]:
    """The normal save paths for one object: (file name, bytes)."""
    out = []
    for proto in (2, 4, 5):
        try:
            out.append((f"{name}.p{proto}.pkl", pickle.dumps(obj, protocol=proto)))
        except Exception:
            pass
    try:
        import joblib

        for compress in (0, ("zlib", 3), ("gzip", 3), ("lz4", 3), ("xz", 3), ("bz2", 3)):
            buf = io.BytesIO()
            try:
                joblib.dump(obj, buf, compress=compress)
            except Exception:
                continue
            tag = "raw" if compress == 0 else compress[0]
            out.append((f"{name}.{tag}.joblib", buf.getvalue()))
    except ImportError:
        pass
    if lib in ("torch", "torchvision", "transformers"):
        import torch

        buf = io.BytesIO()
        try:
            torch.save(obj, buf)
            out.append((f"{name}.pt", buf.getvalue()))
        except Exception:
            pass
    return out


def torchscript_files() -> list[tuple[str, bytes, str]]:
    import torch
    from torch import nn

    out = []
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(nn.Sequential(nn.Linear(3, 2), nn.ReLU())), buf)
    out.append(("torchscript_sequential.pt", buf.getvalue(), "clean"))
    buf = io.BytesIO()
    torch.jit.save(torch.jit.trace(nn.Conv2d(1, 2, 3), torch.ones(1, 1, 5, 5)), buf)
    out.append(("torchscript_traced_conv.pt", buf.getvalue(), "clean"))
    return out


def torchscript_attacks(clean: bytes) -> list[tuple[str, bytes, str, list[str]]]:
    """A real torch.jit.save archive whose forward code is edited to reach a file, or a native
    library's operator."""
    def edit(replace_line) -> bytes:
        src = zipfile.ZipFile(io.BytesIO(clean))
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
            for info in src.infolist():
                data = src.read(info)
                if info.filename.endswith("code/__torch__/torch/nn/modules/container.py"):
                    data = replace_line(data.decode()).encode()
                z.writestr(info, data)
        return out.getvalue()

    anchor = '    _0 = getattr(self, "0")'

    def inject(line: str):
        def f(src: str) -> str:
            if anchor not in src:
                raise SystemExit("torch.jit.save wrote Sequential.forward differently: update the anchor")
            return src.replace(anchor, f"    {line}\n{anchor}", 1)
        return f

    read_file = edit(inject('_f = torch.from_file("/etc/passwd", None, 4096)'))
    foreign = edit(inject('_r = ops.evil.run("echo pwned")'))
    return [
        ("torchscript_from_file.pt", read_file, "dangerous", []),
        ("torchscript_foreign_op.pt", foreign, "suspicious", []),
    ]


# --- opcode-level attacks on the allowlists ------------------------------------------------

def g(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def s(text: str) -> bytes:
    b = text.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def sg(module: str, name: str) -> bytes:
    """Protocol 4 STACK_GLOBAL: any dotted name."""
    return s(module) + s(name) + b"\x93"


P2 = b"\x80\x02"
P4 = b"\x80\x04"


def allowlist_attacks() -> list[tuple[str, bytes, str, list[str], list[str]]]:
    """(file, bytes, verdict at least, globals reported, calls rendered)."""
    return [
        # An allowed class called with arguments (real saves only instantiate it and set state).
        ("allowed_class_called.pkl",
         P2 + g("torch.nn.modules.linear", "Linear") + b"J\xa0\x86\x01\x00J\xa0\x86\x01\x00\x86R.",
         "suspicious", ["torch.nn.modules.linear.Linear"], ["Linear(100000, 100000)"]),
        # An allowed class's method, smuggled through a dotted name or getattr.
        ("allowed_class_method_dotted.pkl",
         P4 + sg("pandas.core.frame", "DataFrame.to_pickle") + s("/tmp/x") + b"\x85R.",
         "suspicious", ["pandas.core.frame.DataFrame.to_pickle"], []),
        ("allowed_class_getattr_method.pkl",
         P2 + g("builtins", "getattr") + g("sklearn.linear_model._base", "LinearRegression") + s("fit") + b"\x86R)R.",
         "suspicious", ["sklearn.linear_model._base.LinearRegression.fit"], []),
        ("allowed_class_globals.pkl",
         P4 + sg("sklearn.linear_model._base", "LinearRegression.__init__.__globals__") + b".",
         "dangerous", ["sklearn.linear_model._base.LinearRegression.__init__.__globals__"], []),
        ("getattr_subclasses.pkl",
         P2 + g("builtins", "getattr") + g("builtins", "object") + s("__subclasses__") + b"\x86R)R.",
         "dangerous", [], []),
        ("getattr_to_system.pkl",
         P2 + g("builtins", "getattr") + g("posix", "stat") + s("__self__") + b"\x86R.",
         "dangerous", [], []),
        # Reconstructors given something that is not an allowed class.
        ("reconstructor_function.pkl",
         P2 + g("copy_reg", "_reconstructor") + g("posix", "system") + g("__builtin__", "object") + s("echo pwned") + b"\x87R.",
         "dangerous", ["posix.system"], []),
        ("reconstructor_base_popen.pkl",
         P2 + g("copy_reg", "_reconstructor") + g("torch.nn.modules.linear", "Linear") + g("subprocess", "Popen") + b"]" + s("true") + b"a\x87R.",
         "dangerous", ["subprocess.Popen"], []),
        ("newobj_helper_function.pkl",
         P2 + g("copy_reg", "__newobj__") + g("posix", "system") + s("echo pwned") + b"\x86R.",
         "dangerous", ["posix.system"], []),
        # A gadget inside an allowlisted library stays dangerous.
        ("pandas_read_pickle.pkl",
         P2 + g("pandas.io.pickle", "read_pickle") + s("other.pkl") + b"\x85R.",
         "dangerous", ["pandas.io.pickle.read_pickle"], ["read_pickle('other.pkl')"]),
        # A partial of an allowed reconstructor called with other arguments stays judged by it.
        ("partial_of_allowed.pkl",
         P2 + g("functools", "partial") + g("numpy.core.multiarray", "_reconstruct") + b"\x85R)R.",
         "clean", [], []),
        ("dill_create_array_system.pkl",
         P2 + g("dill._dill", "_create_array") + b"(" + g("posix", "system") + s("echo pwned") + b"\x85" + b"N}tR.",
         "dangerous", ["posix.system"], []),
    ]


def joblib_old_dumps() -> list[tuple[str, bytes]]:
    """Dumps joblib 0.9 wrote (arrays in companion files), as joblib ships them in its tests."""
    import joblib

    data = Path(joblib.__file__).parent / "test" / "data"
    out = []
    for stem in ("joblib_0.9.2_pickle_py35_np19.pkl", "joblib_0.9.4.dev0_compressed_cache_size_pickle_py35_np19.gz"):
        for p in sorted(data.glob(stem + "*")):
            out.append((p.name, p.read_bytes()))
    return out


def joblib_companion_attacks() -> list[tuple[str, bytes, str]]:
    """A joblib 0.9 NDArrayWrapper whose companion name leaves the dump's folder."""
    def wrapper(filename: str) -> bytes:
        return (P2 + g("joblib.numpy_pickle", "NDArrayWrapper") + b")\x81"
                + b"}(" + s("filename") + s(filename) + s("subclass") + g("numpy", "ndarray") + b"u" + b"b.")
    return [
        ("joblib_companion_absolute.pkl", wrapper("/etc/passwd"), "dangerous"),
        ("joblib_companion_parent.pkl", wrapper("../secrets/x.npy"), "dangerous"),
        ("joblib_companion_missing.pkl", wrapper("joblib_companion_missing.pkl_01.npy"), "suspicious"),
    ]


def not_models() -> list[tuple[str, bytes]]:
    return [
        ("repo/README.md", b"# My model\n\nA classifier. Load with `joblib.load`.\n"),
        ("repo/config.json", json.dumps({"architectures": ["BertModel"], "hidden_size": 16}).encode()),
        ("repo/tokenizer_config.json", json.dumps({"model_max_length": 512, "do_lower_case": True}).encode()),
        ("repo/train.py", b"import joblib\nfrom sklearn.linear_model import LinearRegression\n"),
        ("repo/requirements.txt", b"scikit-learn>=1.3\njoblib\n"),
        ("repo/.picklescan.toml", b"fail_on = \"suspicious\"\n"),
        ("repo/LICENSE", b"MIT License\n\nCopyright (c) 2024\n"),
        ("repo/CMakeLists.txt", b"cmake_minimum_required(VERSION 3.20)\nproject(x)\n"),
        ("repo/notes.yaml", b"(a): 1\nb: 2\n"),
        ("repo/logo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde"),
        ("repo/__init__.py", b""),
    ]


def format_of(rel: str, data: bytes) -> str:
    """The format the scanner must report for a file this script wrote."""
    name = rel.rsplit("/", 1)[-1]
    if name.endswith(".pkl"):
        return "pickle"
    if name.endswith(".raw.joblib"):
        # joblib writes numpy arrays as NumpyArrayWrapper + raw bytes; without any, a plain pickle.
        return "joblib" if b"NumpyArrayWrapper" in data else "pickle"
    if name.endswith(".joblib"):
        return "joblib-" + name.rsplit(".", 2)[-2]
    if name.endswith(".pt"):
        return "torchscript" if b"constants.pkl" in data else "torch-zip"
    raise SystemExit(f"no format known for {rel}")


NOT_MODEL_KINDS = {"README.md": "text", "config.json": "json", "tokenizer_config.json": "json", "train.py": "text",
                   "requirements.txt": "text", ".picklescan.toml": "text", "LICENSE": "text",
                   "CMakeLists.txt": "text", "notes.yaml": "text", "logo.png": "png", "__init__.py": "empty"}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", metavar="DIR", help="write the whole benign benchmark set to DIR")
    a = ap.parse_args()
    if a.full:
        out = Path(a.full)
        n = 0
        for lib in ml_objects.LIBRARIES:
            (out / lib).mkdir(parents=True, exist_ok=True)
            for name, obj in ml_objects.objects(lib):
                for fname, data in saves(lib, name, obj):
                    (out / lib / fname).write_bytes(data)
                    n += 1
        print(f"wrote {n} files to {out}")
        return 0
    entries = []
    OUT.mkdir(parents=True, exist_ok=True)

    def put(rel: str, data: bytes, verdict: str, globals_=(), calls=(), technique="", container=None):
        p = OUT / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        entries.append({"path": rel, "verdict": verdict, "globals": list(globals_), "calls": list(calls),
                        "container": container or format_of(rel, data), "technique": technique})

    versions = []
    for lib, names in SAMPLE.items():
        objs = dict(ml_objects.objects(lib))
        if objs:
            versions.append(ml_objects.version(ml_objects.LIBRARIES[lib][0]))
        for name in names:
            if name not in objs:
                continue
            verdict, why = NOT_CLEAN.get(name, ("clean", f"{lib} normal save path"))
            for fname, data in saves(lib, name, objs[name]):
                if len(data) <= MAX_COMMITTED:
                    put(f"benign/{lib}/{fname}", data, verdict, technique=why)
    for fname, data, verdict in torchscript_files():
        put(f"benign/torch/{fname}", data, verdict, technique="torch.jit.save")
    seq = next(d for f, d, _ in torchscript_files() if f == "torchscript_sequential.pt")
    for fname, data, verdict, globals_ in torchscript_attacks(seq):
        put(f"attacks/{fname}", data, verdict, globals_, technique="TorchScript code edited in a real torch.jit.save archive")
    for fname, data, verdict, globals_, calls in allowlist_attacks():
        put(f"attacks/{fname}", data, verdict, globals_, calls, technique="abuse of the ecosystem allowlists")
    for fname, data in joblib_old_dumps():
        fmt = "not-a-model:binary" if ".npy" in fname and not fname.endswith(".z") else None
        if fname.endswith(".npy"):
            fmt = "npy"
        elif fname.endswith(".npy.z"):
            fmt = "joblib-zfile-array"
        elif fname.endswith(".gz"):
            fmt = "joblib-zfile"
        else:
            fmt = "joblib"
        put(f"benign/joblib-0.9/{fname}", data, "clean", technique="joblib 0.9 dump with companion array files, as joblib ships it in its tests",
            container=fmt)
    for fname, data, verdict in joblib_companion_attacks():
        put(f"attacks/{fname}", data, verdict, technique="joblib 0.9 NDArrayWrapper naming a companion file", container="joblib")
    for rel, data in not_models():
        kind = NOT_MODEL_KINDS[rel.rsplit("/", 1)[-1]]
        put(f"not-models/{rel}", data, "clean", technique="a model repository's other files",
            container=f"not-a-model:{kind}")
    manifest = {"version": 1, "made_with": sorted(versions), "files": entries}
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {len(entries)} files to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
