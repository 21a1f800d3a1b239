"""Real objects of the ML ecosystem, made the way people make them (fitted estimators, frames,
modules, optimizer state), for the allowlist generator and the benign corpus.

Each factory returns a list of (name, object). A library that is not installed, or an object
whose construction fails with the installed version, is skipped with a note on stderr: the
generator records the versions it really used.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from typing import Callable

warnings.filterwarnings("ignore")

Factory = Callable[[], list]


def _note(msg: str) -> None:
    print(f"  skip: {msg}", file=sys.stderr)


def stdlib() -> list:
    import array
    import collections
    import datetime as dt
    import decimal
    import enum
    import fractions
    import http
    import ipaddress
    import pathlib
    import re
    import urllib.parse
    import uuid
    import zoneinfo

    Point = collections.namedtuple("Point", "x y")  # noqa: F841 (a user class: not listed)
    out = [
        ("datetime", dt.datetime(2024, 5, 1, 12, 30, 15, 123)),
        ("datetime_tz", dt.datetime(2024, 5, 1, tzinfo=dt.timezone(dt.timedelta(hours=2)))),
        ("datetime_utc", dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)),
        ("date", dt.date(2024, 5, 1)),
        ("time", dt.time(12, 1)),
        ("timedelta", dt.timedelta(days=3, seconds=5)),
        ("zoneinfo", zoneinfo.ZoneInfo("UTC")),
        ("datetime_zoneinfo", dt.datetime(2024, 5, 1, tzinfo=zoneinfo.ZoneInfo("UTC"))),
        ("decimal", decimal.Decimal("3.14159")),
        ("fraction", fractions.Fraction(3, 7)),
        ("uuid", uuid.UUID(int=12345678901234567890)),
        ("purepath", pathlib.PurePosixPath("/data/model.bin")),
        ("path", pathlib.Path("/data/model.bin")),
        ("purewindowspath", pathlib.PureWindowsPath("C:/data/model.bin")),
        ("ordereddict", collections.OrderedDict(a=1, b=2)),
        ("defaultdict", collections.defaultdict(list, a=[1])),
        ("defaultdict_int", collections.defaultdict(int, a=1)),
        ("counter", collections.Counter("abracadabra")),
        ("deque", collections.deque([1, 2, 3], maxlen=5)),
        ("http_status", http.HTTPStatus.OK),
        ("parse_result", urllib.parse.urlparse("https://example.org/a?b=c")),
        ("split_result", urllib.parse.urlsplit("https://example.org/a?b=c")),
        ("ipv4", ipaddress.IPv4Address("10.0.0.1")),
        ("ipv4_network", ipaddress.ip_network("10.0.0.0/8")),
        ("regex", re.compile(r"\w+", re.I)),
        ("array", array.array("f", [1.0, 2.0])),
        ("complex", complex(1, 2)),
        ("range", range(3, 10, 2)),
        ("slice", slice(1, 5, 2)),
        ("frozenset", frozenset({1, 2})),
        ("set", {1, 2, 3}),
        ("bytearray", bytearray(b"abc")),
        ("ellipsis", ...),
        ("notimplemented", NotImplemented),
        ("types", [int, float, str, bytes, bool, list, dict, tuple, set, complex, type(None)]),
    ]

    class Colour(enum.Enum):  # user enums are user classes; stdlib ones are listed
        RED = 1

    out.append(("enum_flag", re.IGNORECASE))
    out.append(("object", object()))
    return out


def numpy_objects() -> list:
    import numpy as np

    rng = np.random.default_rng(0)
    out = [
        ("array_f32", np.arange(12, dtype=np.float32).reshape(3, 4)),
        ("array_f16", np.ones(4, dtype=np.float16)),
        ("array_c64", np.ones(3, dtype=np.complex64)),
        ("array_bool", np.zeros(5, dtype=bool)),
        ("array_u8", np.arange(5, dtype=np.uint8)),
        ("array_str", np.array(["a", "bc"])),
        ("array_bytes", np.array([b"a", b"bc"])),
        ("array_datetime", np.array(["2024-01-01", "2024-02-01"], dtype="datetime64[D]")),
        ("array_timedelta", np.array([1, 2], dtype="timedelta64[s]")),
        ("array_object", np.array([1, "a", None], dtype=object)),
        ("array_fortran", np.asfortranarray(np.ones((3, 2)))),
        ("array_bigendian", np.arange(3, dtype=">f8")),
        ("structured", np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8", (2,))])),
        ("recarray", np.rec.fromrecords([(1, 2.0), (3, 4.0)], names="a,b")),
        ("matrix", np.matrix([[1, 2], [3, 4]])),
        ("masked", np.ma.masked_array([1, 2, 3], mask=[0, 1, 0])),
        ("masked_f", np.ma.masked_invalid([1.0, np.nan])),
        ("scalars", [np.float32(1), np.float64(2), np.int64(3), np.int8(4), np.bool_(True), np.uint16(5),
                     np.complex128(1j), np.str_("s"), np.bytes_(b"b"), np.datetime64("2024-01-01"),
                     np.timedelta64(3, "h"), np.float16(1)]),
        ("dtypes", [np.dtype("f4"), np.dtype(">i8"), np.dtype([("x", "f4")]), np.dtype("U5"), np.dtype("M8[ns]")]),
        ("dtype_classes", [type(np.dtype("f4")), type(np.dtype("i8")), type(np.dtype("f8"))]),
        ("generator", rng),
        ("random_state", np.random.RandomState(0)),
    ]
    for bg in ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"):
        out.append((f"bitgen_{bg}", np.random.Generator(getattr(np.random, bg)(1))))
    out.append(("seed_sequence", np.random.SeedSequence(5)))
    out.append(("ufuncs", [np.log, np.exp, np.sqrt, np.add]))
    return out


def scipy_objects() -> list:
    import numpy as np
    import scipy.sparse as sp
    from scipy import stats

    m = np.eye(4)
    out = []
    for fmt in ("csr", "csc", "coo", "bsr", "dia", "lil", "dok"):
        out.append((f"{fmt}_matrix", getattr(sp, f"{fmt}_matrix")(m)))
        if hasattr(sp, f"{fmt}_array"):
            out.append((f"{fmt}_array", getattr(sp, f"{fmt}_array")(m)))
    out.append(("frozen_norm", stats.norm(0, 1)))
    out.append(("frozen_gamma", stats.gamma(2.0)))
    out.append(("frozen_poisson", stats.poisson(3.0)))
    return out


def pandas_objects() -> list:
    import numpy as np
    import pandas as pd

    df = pd.DataFrame({
        "i": [1, 2, 3], "f": [0.5, 1.5, np.nan], "s": ["a", "b", "c"], "b": [True, False, True],
        "cat": pd.Categorical(["x", "y", "x"]),
        "dt": pd.date_range("2024-01-01", periods=3),
        "dttz": pd.date_range("2024-01-01", periods=3, tz="Europe/Paris"),
        "td": pd.to_timedelta([1, 2, 3], unit="s"),
        "per": pd.period_range("2024-01", periods=3, freq="M"),
        "iv": pd.interval_range(0, 3),
        "ni": pd.array([1, None, 3], dtype="Int64"),
        "nb": pd.array([True, None, False], dtype="boolean"),
        "ns": pd.array(["a", None, "c"], dtype="string"),
    })
    out = [
        ("frame", df),
        ("series", pd.Series([1.0, 2.0], index=["a", "b"], name="s")),
        ("multiindex", pd.DataFrame({"v": [1, 2]}, index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)]))),
        ("range_index", pd.RangeIndex(5)),
        ("index", pd.Index(["a", "b"])),
        ("timestamp_tz", pd.Timestamp("2024-01-01", tz="US/Eastern")),
        ("timestamp", pd.Timestamp("2024-01-01")),
        ("timedelta", pd.Timedelta("1 day")),
        ("period", pd.Period("2024-01", freq="M")),
        ("interval", pd.Interval(0, 1)),
        ("categorical", pd.Categorical(["a", "b", "a"], ordered=True)),
        ("sparse", pd.Series(pd.arrays.SparseArray([0, 0, 1]))),
        ("offsets", [pd.offsets.Day(2), pd.offsets.MonthEnd(), pd.offsets.BDay()]),
        ("nat", pd.NaT),
        ("na", pd.NA),
    ]
    return out


def sklearn_objects() -> list:
    import numpy as np
    from sklearn.datasets import make_classification, make_regression
    from sklearn.utils import all_estimators

    Xc, yc = make_classification(n_samples=60, n_features=6, n_informative=3, random_state=0)
    Xr, yr = make_regression(n_samples=60, n_features=6, random_state=0)
    Xp = np.abs(Xc)
    out = []
    for name, cls in all_estimators():
        try:
            est = cls()
        except Exception as e:  # needs a required argument (meta-estimators)
            est = _meta(cls, name, e)
            if est is None:
                continue
        for X, y in ((Xc, yc), (Xp, yc), (Xr, yr)):
            try:
                est.fit(X, y)
                break
            except Exception:
                try:
                    est.fit(X)
                    break
                except Exception:
                    continue
        out.append((f"sklearn_{name}", est))
    # Estimators people build around user functions and categorical features.
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    hgb = HistGradientBoostingClassifier(categorical_features=[0], max_iter=5)
    Xcat = Xc.copy()
    Xcat[:, 0] = (Xcat[:, 0] > 0).astype(float)
    hgb.fit(Xcat, yc)
    out.append(("sklearn_hgb_categorical", hgb))
    out.append(("sklearn_pipeline_log", make_pipeline(FunctionTransformer(np.log1p), StandardScaler()).fit(Xp)))
    return out


def _meta(cls, name, err):
    from sklearn.linear_model import LinearRegression, LogisticRegression

    base = LogisticRegression() if "Classif" in name else LinearRegression()
    for kw in ("estimator", "base_estimator", "estimators", "transformers", "steps"):
        try:
            if kw == "estimators":
                return cls(**{kw: [("a", base), ("b", base)]})
            if kw == "transformers":
                from sklearn.preprocessing import StandardScaler

                return cls(**{kw: [("s", StandardScaler(), [0, 1])]})
            if kw == "steps":
                return cls(**{kw: [("m", base)]})
            return cls(**{kw: base})
        except Exception:
            continue
    _note(f"{name}: {err}")
    return None


def torch_objects() -> list:
    import torch
    from torch import nn

    torch.manual_seed(0)
    lin = nn.Linear(4, 3)
    seq = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Dropout(0.1), nn.LazyLinear(2) if False else nn.Linear(2, 2))
    models = [
        ("linear", lin),
        ("sequential", seq),
        ("lstm", nn.LSTM(4, 8, num_layers=2, batch_first=True)),
        ("gru", nn.GRU(4, 8)),
        ("transformer", nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 1)),
        ("embedding", nn.Embedding(10, 4)),
        ("layernorm", nn.LayerNorm(4)),
        ("mha", nn.MultiheadAttention(8, 2)),
        ("modules", nn.ModuleDict({"a": nn.Conv1d(1, 1, 1), "b": nn.GELU(), "c": nn.SiLU(), "d": nn.Tanh(),
                                    "e": nn.Sigmoid(), "f": nn.Softmax(-1), "g": nn.Identity(),
                                    "h": nn.AvgPool2d(2), "i": nn.AdaptiveAvgPool2d(1), "j": nn.ConvTranspose2d(1, 1, 2),
                                    "k": nn.GroupNorm(1, 2), "l": nn.Upsample(scale_factor=2), "m": nn.LeakyReLU(),
                                    "n": nn.ModuleList([nn.ELU()]), "o": nn.ParameterList([nn.Parameter(torch.ones(1))]),
                                    "p": nn.CrossEntropyLoss(), "q": nn.MSELoss(), "r": nn.Conv3d(1, 1, 1),
                                    "s": nn.InstanceNorm2d(2), "t": nn.PReLU(), "u": nn.Hardswish()})),
    ]
    out = []
    for name, m in models:
        out.append((f"torch_module_{name}", m))
        out.append((f"torch_state_{name}", m.state_dict()))
    opt = torch.optim.Adam(lin.parameters(), lr=1e-3)
    lin(torch.ones(2, 4)).sum().backward()
    opt.step()
    sgd = torch.optim.SGD(lin.parameters(), lr=0.1, momentum=0.9)
    sgd.step()
    sched = torch.optim.lr_scheduler.StepLR(sgd, 5)
    cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 10)
    out += [
        ("torch_optimizer_adam", opt.state_dict()),
        ("torch_optimizer_adamw", torch.optim.AdamW(lin.parameters()).state_dict()),
        ("torch_optimizer_sgd", sgd.state_dict()),
        ("torch_scheduler_step", sched.state_dict()),
        ("torch_scheduler_cos", cos.state_dict()),
        ("torch_scaler", torch.amp.GradScaler("cpu").state_dict()),
        ("torch_size", torch.Size([2, 3])),
        ("torch_dtypes", [torch.float32, torch.bfloat16, torch.int64, torch.bool, torch.float16, torch.uint8]),
        ("torch_device", torch.device("cpu")),
        ("torch_tensors", {"f": torch.ones(3), "h": torch.ones(2, dtype=torch.half), "bf": torch.ones(2, dtype=torch.bfloat16),
                           "i": torch.arange(4), "b": torch.ones(2, dtype=torch.bool), "p": nn.Parameter(torch.ones(2))}),
        ("torch_checkpoint", {"epoch": 3, "model": lin.state_dict(), "optimizer": opt.state_dict(),
                              "scheduler": cos.state_dict(), "rng": torch.get_rng_state()}),
    ]
    return out


def torchvision_objects() -> list:
    import torchvision

    out = []
    # Small members of each family (the classes are what matters, not the weights).
    for name in ("resnet18", "mobilenet_v2", "mobilenet_v3_small", "squeezenet1_0", "densenet121",
                 "efficientnet_b0", "regnet_y_400mf", "shufflenet_v2_x0_5", "mnasnet0_5", "googlenet"):
        try:
            m = getattr(torchvision.models, name)(weights=None)
        except Exception as e:
            _note(f"torchvision {name}: {e}")
            continue
        out.append((f"torchvision_{name}", m))
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt
    from torchvision.models.vision_transformer import VisionTransformer

    out.append(("torchvision_vit_small", VisionTransformer(image_size=32, patch_size=16, num_layers=1, num_heads=2,
                                                           hidden_dim=8, mlp_dim=16)))
    out.append(("torchvision_convnext_small", ConvNeXt([CNBlockConfig(8, 16, 1), CNBlockConfig(16, None, 1)])))
    return out


def transformers_objects() -> list:
    import transformers as tf

    out = []
    try:
        out.append(("training_args", tf.TrainingArguments(output_dir="/tmp/out", report_to=[])))
    except Exception as e:
        _note(f"TrainingArguments: {e}")
    for cfg in ("BertConfig", "GPT2Config", "LlamaConfig", "T5Config", "Qwen2Config", "MistralConfig"):
        if hasattr(tf, cfg):
            out.append((f"config_{cfg}", getattr(tf, cfg)()))
    out.append(("generation_config", tf.GenerationConfig(max_new_tokens=5)))
    try:
        m = tf.BertModel(tf.BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                       intermediate_size=32, vocab_size=50))
        out.append(("bert_state", m.state_dict()))
    except Exception as e:
        _note(f"BertModel: {e}")
    return out


def xgboost_objects() -> list:
    import xgboost as xgb
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=60, n_features=5, random_state=0)
    c = xgb.XGBClassifier(n_estimators=3).fit(X, y)
    r = xgb.XGBRegressor(n_estimators=3).fit(X, y)
    return [("xgb_classifier", c), ("xgb_regressor", r), ("xgb_booster", c.get_booster())]


def lightgbm_objects() -> list:
    import lightgbm as lgb
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=60, n_features=5, random_state=0)
    c = lgb.LGBMClassifier(n_estimators=3, verbose=-1).fit(X, y)
    r = lgb.LGBMRegressor(n_estimators=3, verbose=-1).fit(X, y)
    return [("lgbm_classifier", c), ("lgbm_regressor", r), ("lgbm_booster", c.booster_)]


def catboost_objects() -> list:
    import catboost as cb
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=60, n_features=5, random_state=0)
    c = cb.CatBoostClassifier(iterations=3, verbose=False, allow_writing_files=False).fit(X, y)
    r = cb.CatBoostRegressor(iterations=3, verbose=False, allow_writing_files=False).fit(X, y)
    return [("catboost_classifier", c), ("catboost_regressor", r)]


def statsmodels_objects() -> list:
    import numpy as np
    import statsmodels.api as sm

    rng = np.random.default_rng(0)
    X = sm.add_constant(rng.normal(size=(40, 2)))
    y = X @ [1.0, 2.0, -1.0] + rng.normal(size=40)
    ols = sm.OLS(y, X).fit()
    glm = sm.GLM((y > 0).astype(float), X, family=sm.families.Binomial()).fit()
    return [("ols_results", ols), ("glm_results", glm), ("ols_model", sm.OLS(y, X))]


def gensim_objects() -> list:
    from gensim.models import Word2Vec

    sentences = [["cat", "sat", "mat"], ["dog", "sat", "log"]] * 5
    w2v = Word2Vec(sentences, vector_size=8, min_count=1, epochs=1, workers=1, seed=0)
    return [("word2vec", w2v), ("keyedvectors", w2v.wv)]


LIBRARIES: dict[str, tuple[str, Factory]] = {
    "stdlib": ("", stdlib),
    "numpy": ("numpy", numpy_objects),
    "scipy": ("scipy", scipy_objects),
    "pandas": ("pandas", pandas_objects),
    "sklearn": ("scikit-learn", sklearn_objects),
    "torch": ("torch", torch_objects),
    "torchvision": ("torchvision", torchvision_objects),
    "transformers": ("transformers", transformers_objects),
    "xgboost": ("xgboost", xgboost_objects),
    "lightgbm": ("lightgbm", lightgbm_objects),
    "catboost": ("catboost", catboost_objects),
    "statsmodels": ("statsmodels", statsmodels_objects),
    "gensim": ("gensim", gensim_objects),
}


def version(dist: str) -> str:
    if not dist:
        return "python " + sys.version.split()[0]
    from importlib.metadata import version as v

    try:
        return f"{dist} {v(dist)}"
    except Exception:
        return f"{dist} (not installed)"


def objects(lib: str) -> list:
    _, factory = LIBRARIES[lib]
    try:
        return factory()
    except ImportError as e:
        _note(f"{lib}: {e}")
        return []


if __name__ == "__main__":
    for lib in LIBRARIES:
        objs = objects(lib)
        print(lib, len(objs))
    importlib.invalidate_caches()
