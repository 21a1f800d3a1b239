#!/usr/bin/env python3
"""Generate rules/allow/gen/*.toml: allow rules for what the ML ecosystem's own objects pickle as.

Run by hand, with the libraries installed (see scripts/requirements-allowlists.txt) and the
binary built (`cargo build --release`):

    python scripts/gen_allowlists.py [--bin target/release/picklescan-rs] [--lib sklearn ...]

How it works:
1. scripts/ml_objects.py makes real objects of each library (fitted estimators, frames, modules,
   optimizer state, …).
2. Each object is pickled with protocols 0 to 5 (and torch objects with `torch.save` too).
3. The scanner itself observes the pickles (`--show-allowed --format json`): every global and
   *how* it is used (imported, instantiated, state_set, called, method_on_object), after the
   scanner's own resolution of getattr/partial/reconstructors. Learning by observation means an
   allow rule allows exactly the usages real saves show: `torch.nn.modules.linear.Linear`
   instantiated and given state is clean, `Linear(100000, 100000)` called is not.
4. Each observed global is checked before it is allowed: a class whose `__reduce__`,
   `__reduce_ex__`, `__setstate__`, `__new__` or (when called) `__init__` is defined by the
   library is refused unless it is reviewed below (REVIEWED), and the review is written into the
   rule's rationale. A global a deny rule matches is never allowed (deny wins anyway). Functions
   are allowed only because the library's own pickles call them (reconstructors), never because
   they belong to the library.
5. One file per library under rules/allow/gen/, with the versions it was made from; rules are
   grouped by usage set, ids PS600-PS799 in blocks of ten per library.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import io
import json
import pickle
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ml_objects  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "rules" / "allow" / "gen"
USAGE_ORDER = ["imported", "instantiated", "state_set", "called", "method_on_object"]

# Methods defined by library classes that were read and found to do no more than rebuild the
# object's own data (set attributes, allocate arrays from the given state, check versions).
# Key: the class that defines the method, `module.Class`; value: what was checked.
REVIEWED = {
    "sklearn.base.BaseEstimator": "`__setstate__` checks the pickled sklearn version, then updates `__dict__`; `__reduce__`-free; `__getstate__` only on save",
    "sklearn.tree._tree.Tree": "Cython `__reduce__` returns `(Tree, (n_features, n_classes, n_outputs))` and `__setstate__` copies the node and value arrays after checking their dtype and shape",
    "sklearn._loss._loss.CyLossFunction": "Cython loss objects reduce to their class and parameters (no callables)",
    "sklearn._loss.link.BaseLink": "link objects hold only interval parameters",
    "sklearn.neighbors._kd_tree.KDTree": "BinaryTree `__reduce__`/`__setstate__` restore data, index and node arrays from the state tuple",
    "sklearn.neighbors._ball_tree.BallTree": "BinaryTree `__reduce__`/`__setstate__` restore data, index and node arrays from the state tuple",
    "sklearn.neighbors._binary_tree.BinaryTree": "`__reduce__`/`__setstate__` restore data, index and node arrays from the state tuple",
    "sklearn.metrics._dist_metrics.DistanceMetric": "`__reduce__`/`__setstate__` restore the metric's parameter arrays",
    "sklearn.metrics._dist_metrics.DistanceMetric64": "`__reduce__`/`__setstate__` restore the metric's parameter arrays",
    "sklearn.metrics._dist_metrics.DistanceMetric32": "`__reduce__`/`__setstate__` restore the metric's parameter arrays",
    "sklearn.utils._bunch.Bunch": "dict subclass; `__setstate__` is a no-op kept for old pickles",
    "numpy.ma.core.MaskedArray": "`__reduce__` → `_mareconstruct(cls, baseclass, shape, dtype)` and `__setstate__` sets data, mask and fill value from the state",
    "numpy.ndarray": "`__reduce__` → `_reconstruct(cls, (0,), b'b')` + `__setstate__((version, shape, dtype, fortran, bytes))`: raw data only",
    "numpy.generic": "scalars reduce to `scalar(dtype, bytes)`",
    "numpy.ma.MaskedArray": "`__reduce__` → `_mareconstruct(cls, baseclass, shape, dtype)` and `__setstate__` sets data, mask and fill value from the state",
    "numpy.matrix": "ndarray subclass; reduces like ndarray",
    "numpy.rec.recarray": "ndarray subclass; reduces like ndarray",
    "numpy.random._generator.Generator": "`__reduce__` → `__generator_ctor(bit_generator)`; `__setstate__` ignores its state",
    "numpy.random.mtrand.RandomState": "`__reduce__` → `__randomstate_ctor(bit_generator)` and `__setstate__` sets the bit generator's state dict",
    "numpy.random.bit_generator.BitGenerator": "`__reduce__` → `__bit_generator_ctor(name)` + the state dict, set through the `state` property (integers only)",
    "numpy.random.bit_generator.SeedSequence": "plain attributes",
    "numpy.random._mt19937.MT19937": "BitGenerator: state dict of integers",
    "numpy.random._pcg64.PCG64": "BitGenerator: state dict of integers",
    "numpy.random._pcg64.PCG64DXSM": "BitGenerator: state dict of integers",
    "numpy.random._philox.Philox": "BitGenerator: state dict of integers",
    "numpy.random._sfc64.SFC64": "BitGenerator: state dict of integers",
    "scipy.sparse._base._spbase": "plain attributes (`__dict__` update)",
    "scipy.stats._distn_infrastructure.rv_generic": "`__setstate__` re-attaches the distribution's own methods (`_attach_methods`), nothing from the state is called",
    "scipy.stats._distn_infrastructure.rv_frozen": "plain attributes",
    "pandas.core.generic.NDFrame": "`__setstate__` rebuilds the block manager from the pickled state (arrays, axes, attrs)",
    "pandas.core.internals.managers.BaseBlockManager": "`__setstate__` builds blocks from the arrays and placements in the state",
    "pandas.core.internals.managers.BlockManager": "`__setstate__` builds blocks from the arrays and placements in the state",
    "pandas.core.internals.managers.SingleBlockManager": "`__setstate__` builds blocks from the arrays and placements in the state",
    "pandas.core.indexes.base.Index": "`__reduce__` → `_new_Index(cls, dict)`, which constructs the index from its data",
    "pandas.core.indexes.multi.MultiIndex": "`__reduce__` → `_new_Index(cls, dict)` with levels and codes",
    "pandas.core.indexes.range.RangeIndex": "`__reduce__` → `_new_Index(cls, start/stop/step)`",
    "pandas.core.indexes.period.PeriodIndex": "`__reduce__` → `_new_PeriodIndex(cls, data, freq)`",
    "pandas.core.arrays.categorical.Categorical": "`__setstate__` sets codes and dtype from the state",
    "pandas.core.arrays.datetimelike.DatetimeLikeArrayMixin": "`__reduce__`/`__setstate__` restore the ndarray and dtype",
    "pandas.core.arrays.sparse.array.SparseArray": "`__setstate__` restores the sparse values and index",
    "pandas.core.arrays.masked.BaseMaskedArray": "`__setstate__` restores data and mask arrays",
    "pandas.core.arrays.string_.StringArray": "`__setstate__` restores the object ndarray",
    "pandas.core.arrays.numpy_.NumpyExtensionArray": "`__setstate__` restores the ndarray",
    "pandas.core.arrays._mixins.NDArrayBackedExtensionArray": "`__setstate__` restores the ndarray and dtype",
    "pandas.core.arrays.interval.IntervalArray": "`__setstate__` restores left/right arrays",
    "pandas.core.dtypes.dtypes.CategoricalDtype": "plain attributes",
    "pandas.core.dtypes.dtypes.PandasExtensionDtype": "`__setstate__`/`__reduce__` of dtype metadata (unit, tz, freq)",
    "pandas.core.dtypes.dtypes.DatetimeTZDtype": "`__setstate__` sets unit and tz",
    "pandas.core.dtypes.dtypes.PeriodDtype": "reduces to `PeriodDtype(freq)`",
    "pandas.core.dtypes.dtypes.IntervalDtype": "`__setstate__` sets subtype and closed",
    "pandas.core.dtypes.dtypes.SparseDtype": "`__setstate__` sets dtype and fill value",
    "pandas.core.arrays.integer.IntegerDtype": "masked dtypes reduce to their class",
    "pandas.core.arrays.boolean.BooleanDtype": "masked dtypes reduce to their class",
    "pandas.core.arrays.string_.StringDtype": "reduces to `StringDtype(storage, na_value)`",
    "pandas._libs.tslibs.timestamps._Timestamp": "Cython `__reduce__` → `_unpickle_timestamp(value, freq, tz, unit)`",
    "pandas._libs.tslibs.timedeltas._Timedelta": "Cython `__reduce__` → `_timedelta_unpickle(value, unit)`",
    "pandas._libs.tslibs.period._Period": "Cython `__reduce__` → `Period(ordinal=…, freq=…)`",
    "pandas._libs.tslibs.offsets.BaseOffset": "Cython `__reduce__`/`__setstate__` restore n, normalize and offset keywords",
    "pandas._libs.interval.Interval": "Cython `__reduce__` → `Interval(left, right, closed)`",
    "pandas._libs.tslibs.nattype.NaTType": "reduces to the NaT singleton",
    "pandas._libs.missing.NAType": "reduces to the NA singleton",
    "torch.nn.modules.module.Module": "`__setstate__` updates `__dict__` and fills in attributes added in newer torch versions; no call from the state",
    "torch.nn.modules.rnn.RNNBase": "`__setstate__` updates `__dict__` and rebuilds the flat weight name lists",
    "torch.nn.modules.conv._ConvNd": "`__setstate__` updates `__dict__`, sets a default padding_mode",
    "torch.nn.modules.activation.MultiheadAttention": "`__setstate__` updates `__dict__`, sets a default `_qkv_same_embed_dim`",
    "torch.nn.modules.container.ModuleList": "Module",
    "torch.nn.parameter.Parameter": "`__reduce_ex__` → `torch._utils._rebuild_parameter(data, requires_grad, hooks)`",
    "torch.Size": "tuple subclass reducing to `Size(tuple)`",
    "torch.amp.grad_scaler.GradScaler": "plain attributes",
    "transformers.training_args.TrainingArguments": "dataclass; `__setstate__`-free, plain fields",
    "transformers.configuration_utils.PretrainedConfig": "plain attributes",
    "transformers.generation.configuration_utils.GenerationConfig": "plain attributes",
    "xgboost.core.Booster": "`__setstate__` loads the model from the raw bytes in the state with XGBoost's own binary/JSON model loader (no pickle, no code)",
    "xgboost.sklearn.XGBModel": "`__setstate__` updates `__dict__`; the booster is rebuilt by Booster.__setstate__",
    "lightgbm.basic.Booster": "`__setstate__` loads the model from the model string in the state (LightGBM's text format)",
    "catboost.core._CatBoostBase": "`__setstate__` loads the model from the serialized CatBoost model bytes in the state",
    "statsmodels.base.wrapper.ResultsWrapper": "`__setstate__` updates `__dict__` and re-attaches wrapped result methods by name from the class",
    "statsmodels.base.model.Results": "plain attributes",
    "statsmodels.base.model.Model": "plain attributes",
    # Not reviewed on purpose: statsmodels.base.data.ModelData.__setstate__ re-evaluates the
    # model's formula (`restore_model_spec`), and a formula is Python code.
    "gensim.utils.SaveLoad": "plain attributes; gensim's own `load` is not involved in a plain unpickle",
    "gensim.models.word2vec.Word2Vec": "plain attributes",
    "gensim.models.keyedvectors.KeyedVectors": "`__setstate__`-free; plain attributes",
    "pandas._libs.arrays.NDArrayBacked": "Cython `__reduce__`/`__setstate__` restore the backing ndarray and dtype",
    "pandas.Index": "`__reduce__` → `_new_Index(cls, dict)`, which constructs the index from its data",
    "pandas.MultiIndex": "`__reduce__` → `_new_Index(cls, dict)` with levels and codes",
    "pandas.RangeIndex": "`__reduce__` → `_new_Index(cls, start/stop/step)`",
    "pandas.Interval": "Cython `__reduce__` → `Interval(left, right, closed)`",
    "pandas._libs.tslibs.dtypes.PeriodDtypeBase": "`__setstate__` sets the period code and n",
    "pandas.StringDtype": "reduces to `StringDtype(storage, na_value)`",
    "pandas._libs.sparse.IntIndex": "reduces to `IntIndex(length, indices)`",
    "pandas._libs.interval.IntervalMixin": "reduces to the class and its bounds",
    "pandas.arrays.SparseArray": "`__setstate__` restores the sparse values and index (ndarray state)",
    "pandas._libs.internals.BlockManager": "Cython `__reduce__`/`__setstate__` rebuild blocks from the arrays and placements in the state",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor": "`__setstate__` updates `__dict__` and casts the node array's dtype",
    "sklearn.neighbors._kd_tree.BinaryTree64": "`__reduce__`/`__setstate__` restore data, index and node arrays from the state tuple",
    "sklearn.neighbors._ball_tree.BinaryTree64": "`__reduce__`/`__setstate__` restore data, index and node arrays from the state tuple",
    "collections.OrderedDict": "built-in container",
    "collections.deque": "built-in container",
    "collections.defaultdict": "built-in container; the default factory is a separate global judged on its own",
    "collections.Counter": "dict subclass",
    "datetime.datetime": "C type reducing to `datetime(bytes, tz)`",
    "datetime.date": "C type",
    "datetime.time": "C type",
    "datetime.timedelta": "C type",
    "datetime.timezone": "C type",
    "decimal.Decimal": "reduces to `Decimal(str)`",
    "fractions.Fraction": "reduces to `Fraction(str)`",
    "uuid.UUID": "`__setstate__` sets the int (and is_safe)",
    "pathlib.PurePath": "reduces to the class and its path parts (no file access)",
    "zoneinfo.ZoneInfo": "`__reduce__` → `ZoneInfo._unpickle(key, from_cache)`, which reads the system's time zone database entry named by the key",
    "enum.Enum": "`__reduce_ex__` → `(cls, (value,))`: looks the member up",
    "ipaddress._BaseAddress": "reduces to `cls(int)`",
    "ipaddress._IPAddressBase": "`__reduce__` → `(cls, (str(self),))`: parses the address text",
    "ipaddress._BaseNetwork": "plain attributes",
    "re.Pattern": "reduces to `re._compile(pattern, flags)`",
    "array.array": "reduces to `array._array_reconstructor(...)`",
    "urllib.parse.ParseResult": "named tuple",
    "urllib.parse.SplitResult": "named tuple",
}


def find_object(qualified: str):
    """Import `qualified` as the unpickler would: the longest importable module prefix, then
    attributes. Returns (module, name, object) or None."""
    parts = qualified.split(".")
    for i in range(len(parts) - 1, 0, -1):
        mod_name = ".".join(parts[:i])
        try:
            mod = importlib.import_module(mod_name)
        except Exception:
            continue
        obj = mod
        try:
            for p in parts[i:]:
                obj = getattr(obj, p)
        except AttributeError:
            continue
        return mod_name, ".".join(parts[i:]), obj
    return None


def defining_class(cls, method: str):
    for base in inspect.getmro(cls):
        if method in base.__dict__:
            return base
    return None


def review(obj, usages: set[str]) -> tuple[bool, list[str]]:
    """(allowed, reasons): whether a class's reconstruction runs only reviewed code."""
    if not inspect.isclass(obj):
        return True, []
    # What a load runs of the class itself: nothing when it is only referenced (handed to a
    # reconstructor, which is judged on its own); its constructor when instantiated or called
    # (and the `__reduce__` that made the pickle say so); `__setstate__` when given state.
    methods = []
    if usages & {"instantiated", "called"}:
        methods += ["__reduce__", "__reduce_ex__", "__new__"]
    if "called" in usages:
        methods.append("__init__")
    if "state_set" in usages:
        methods.append("__setstate__")
    reasons = []
    for m in methods:
        base = defining_class(obj, m)
        if base is None or base.__module__ == "builtins":
            continue
        key = f"{base.__module__}.{base.__qualname__}"
        # A reviewed class covers the methods of its own definition only.
        why = REVIEWED.get(key)
        if why is None:
            why = next((w for k, w in REVIEWED.items() if _is_subclass_of(base, k)), None)
        if why is None:
            return False, [f"{key}.{m} is not reviewed"]
        reasons.append(f"{key}: {why}")
    return True, reasons


def _is_subclass_of(cls, qualified: str) -> bool:
    for base in inspect.getmro(cls):
        if f"{base.__module__}.{base.__qualname__}" == qualified:
            return True
    return False


def dump_all(lib: str, objs: list, folder: Path) -> int:
    n = 0
    for name, obj in objs:
        for proto in range(0, pickle.HIGHEST_PROTOCOL + 1):
            try:
                data = pickle.dumps(obj, protocol=proto)
            except Exception:
                continue
            (folder / f"{name}.p{proto}.pkl").write_bytes(data)
            n += 1
        if lib in ("torch", "torchvision", "transformers"):
            import torch

            for proto in (2, 4):
                buf = io.BytesIO()
                try:
                    torch.save(obj, buf, pickle_protocol=proto)
                except Exception:
                    continue
                (folder / f"{name}.p{proto}.pt").write_bytes(buf.getvalue())
                n += 1
    return n


def observe(binary: str, folder: Path) -> list[dict]:
    res = subprocess.run([binary, "--show-allowed", "--no-config", "--no-progress", "--format", "json", str(folder)],
                         capture_output=True, text=True)
    report = json.loads(res.stdout)
    return report["files"]


def rule_origins() -> dict[str, str]:
    import tomllib

    out = {}
    for p in (ROOT / "rules").rglob("*.toml"):
        for r in tomllib.loads(p.read_text()).get("rule", []):
            out[r["id"]] = str(p.relative_to(ROOT))
    return out


def owner(qualified: str, lib: str) -> str:
    """Which library file a global belongs to (by its top-level package)."""
    top = qualified.split(".")[0]
    known = {"sklearn": "sklearn", "numpy": "numpy", "scipy": "scipy", "pandas": "pandas", "torch": "torch",
             "torchvision": "torchvision", "transformers": "transformers", "xgboost": "xgboost",
             "lightgbm": "lightgbm", "catboost": "catboost", "statsmodels": "statsmodels", "gensim": "gensim",
             "joblib": "joblib"}
    return known.get(top, "stdlib" if top in sys.stdlib_module_names or top in ("builtins", "copyreg") else top)


def toml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def write_file(lib: str, block: int, entries: dict[str, dict], versions: list[str], refused: list[str]) -> None:
    # group by usage set
    groups: dict[tuple, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    reasons: dict[tuple, set[str]] = defaultdict(set)
    for q, e in sorted(entries.items()):
        key = tuple(u for u in USAGE_ORDER if u in e["usages"])
        groups[key][e["module"]].append(e["name"])
        reasons[key].update(e["reasons"])
    lines = [
        f"# Generated by scripts/gen_allowlists.py from real objects of: {', '.join(versions)}.",
        "# Do not edit by hand: change the generator (objects, reviews) and run it again.",
        "# Each rule allows exactly the usages observed in the pickles of those objects.",
    ]
    for r in refused:
        lines.append(f"# refused: {r}")
    lines.append("")
    for i, (key, mods) in enumerate(sorted(groups.items(), key=lambda kv: kv[0])):
        if i >= 10:
            raise SystemExit(f"{lib}: more than 10 usage sets")
        rid = f"PS{600 + block * 10 + i:03d}"
        uname = "-".join(u.replace("_", "-") for u in key)
        examples = [f"{m}:{n}" for m, ns in sorted(mods.items()) for n in ns][:3]
        rationale = (f"What {lib} objects pickle as, observed in real pickles (protocols 0-5), used only as: "
                     f"{', '.join(key)}.")
        if reasons[key]:
            rationale += " Reviewed reconstruction code:\n" + "\n".join(f"- {r}" for r in sorted(reasons[key]))
        lines += [
            "[[rule]]",
            f'id = "{rid}"',
            f'name = "gen-{lib}-{uname}"',
            'action = "allow"',
            'severity = "info"',
            f"rationale = {toml_str(rationale)}",
            'references = ["scripts/gen_allowlists.py"]',
            f"examples = [{', '.join(toml_str(e) for e in examples)}]",
            f"usage = [{', '.join(toml_str(u) for u in key)}]",
            "",
            "[rule.globals]",
        ]
        for m, ns in sorted(mods.items()):
            lines.append(f"{toml_str(m)} = [{', '.join(toml_str(n) for n in sorted(set(ns)))}]")
        lines.append("")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{lib}.toml").write_text("\n".join(lines))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(ROOT / "target" / "release" / "picklescan-rs"))
    ap.add_argument("--lib", action="append", help="only these libraries (default: all)")
    a = ap.parse_args()
    origins = rule_origins()
    libs = a.lib or list(ml_objects.LIBRARIES)
    # global -> {"usages": set, "module", "name", "libs": set}
    seen: dict[str, dict] = {}
    used_versions: set[str] = set()
    denied: set[str] = set()
    with tempfile.TemporaryDirectory() as tmp:
        for lib in libs:
            objs = ml_objects.objects(lib)
            if not objs:
                continue
            used_versions.add(ml_objects.version(ml_objects.LIBRARIES[lib][0]))
            folder = Path(tmp) / lib
            folder.mkdir()
            n = dump_all(lib, objs, folder)
            print(f"{lib}: {len(objs)} objects, {n} files", file=sys.stderr)
            for f in observe(a.bin, folder):
                for fd in f.get("findings", []):
                    g, usage, rule = fd.get("global"), fd.get("usage"), fd["rule"]
                    if not g or usage not in USAGE_ORDER:
                        continue
                    origin = origins.get(rule, "")
                    if fd["severity"] in ("high", "critical"):
                        denied.add(f"{g} ({rule}, {usage})")
                        continue
                    if origin and not origin.startswith("rules/allow/gen/") and rule != "PS001":
                        continue  # allowed by a hand-written rule, or an anomaly
                    if rule not in ("PS001",) and not origin.startswith("rules/allow/gen/"):
                        continue
                    seen.setdefault(g, {"usages": set(), "libs": set()})
                    seen[g]["usages"].add(usage)
                    seen[g]["libs"].add(lib)
    per_lib: dict[str, dict[str, dict]] = defaultdict(dict)
    refused: dict[str, list[str]] = defaultdict(list)
    for g, e in sorted(seen.items()):
        lib = owner(g, "")
        found = find_object(g)
        if found is None:
            refused[lib].append(f"{g}: cannot be imported here")
            continue
        module, name, obj = found
        ok, reasons = review(obj, e["usages"])
        if not ok:
            refused[lib].append(f"{g} ({', '.join(sorted(e['usages']))}): {'; '.join(reasons)}")
            continue
        # A function's result may be given state (BUILD after a reconstructor call); a
        # function is never "instantiated".
        if not inspect.isclass(obj) and e["usages"] - {"called", "imported", "state_set", "method_on_object"}:
            refused[lib].append(f"{g}: a non-class used as {sorted(e['usages'])}")
            continue
        per_lib[lib][g] = {"module": module, "name": name, "usages": e["usages"], "reasons": reasons}
    order = sorted(set(per_lib) | set(refused))
    if len(order) > 20:
        raise SystemExit("more than 20 libraries: the PS600-PS799 range is full")
    for block, lib in enumerate(order):
        dist = ml_objects.LIBRARIES.get(lib, ("", None))[0] if lib in ml_objects.LIBRARIES else lib
        versions = [ml_objects.version(dist if lib != "stdlib" else "")]
        if lib in per_lib:
            write_file(lib, block, per_lib[lib], versions, refused.get(lib, []))
        for r in refused.get(lib, []):
            print(f"refused [{lib}]: {r}", file=sys.stderr)
    for d in sorted(denied):
        print(f"denied: {d}", file=sys.stderr)
    print(f"allowed {sum(len(v) for v in per_lib.values())} globals in {len(per_lib)} files", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
