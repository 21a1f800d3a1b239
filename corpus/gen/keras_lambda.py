"""Keras Lambda fixtures: models with Lambda layers saved by Keras 3 (`.keras`, its config.json
alone, legacy `.h5`) and by tf_keras (Keras 2: `function_type: "lambda"` in an `.h5`), benign
shapes (arithmetic, keras.ops calls, slicing, closures, defaults, comprehensions), and attacks
made by editing real saves: the Lambda's marshal code replaced by the code of a malicious
function, marshalled by this Python the way Keras does (never called here).

Run from the repository root with a venv holding the pinned libraries (Python 3.11):
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install tensorflow-cpu==2.21.0 tf_keras h5py
    KERAS_BACKEND=tensorflow /tmp/venv/bin/python corpus/gen/keras_lambda.py
It rewrites corpus/formats/keras-lambda/ and corpus/formats/manifest-keras-lambda.json.
"""

import base64
import json
import marshal
import os
import shutil
import zipfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import h5py  # noqa: E402

import manifest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "formats")
OUT = os.path.join(ROOT, "keras-lambda")
MANIFEST = []


def path(name):
    os.makedirs(OUT, exist_ok=True)
    return os.path.join(OUT, name)


def expect(name, container, verdict, rules=()):
    MANIFEST.append({"path": "keras-lambda/" + name, "container": container, "verdict": verdict,
                     "rules": sorted(rules), "note": ""})


def code_of(fn):
    """What Keras writes for a function's code: base64 of marshal.dumps(fn.__code__)."""
    return base64.encodebytes(marshal.dumps(fn.__code__)).decode("ascii")


def attacks():
    """Malicious functions, marshalled, never called."""
    import os as _os  # noqa: F401  (a global the comprehension attack names)
    return {
        "import_os_system": lambda x: __import__("os").system("id") or x,
        "eval": lambda x: eval("1") * x,
        "open_passwd": lambda x: open("/etc/passwd").read() and x,
        "getattr_built_name": lambda x: getattr(__builtins__, "ex" + "ec")("0") or x,
        "subclasses_walk": lambda x: ().__class__.__base__.__subclasses__() and x,
        "nested_lambda_import": lambda x: (lambda: __import__("subprocess"))() and x,
        "comprehension_os": lambda x: [os.system(c) for c in ["id"]] and x,
        "numpy_load_pickle": lambda x: np.load("/tmp/x.npy", allow_pickle=True) and x,  # noqa: F821
    }


def keras3():
    import keras
    from keras import ops

    def save(model, name):
        model.save(path(name + ".keras"))
        with zipfile.ZipFile(path(name + ".keras")) as z:
            cfg = json.loads(z.read("config.json"))
        with open(path(name + ".config.json"), "w") as f:
            json.dump(cfg, f)
        return cfg

    scale = 3.0
    benign = {
        "times_two": lambda t: t * 2,
        "ops_mean": lambda x: ops.mean(x, axis=1, keepdims=True),
        "slice_columns": lambda x: x[:, :2],
        "closure_scale": lambda x: x * scale,
        "default_power": lambda x, k=2: x ** k,
        "comprehension_concat": lambda x: ops.concatenate([x[:, i:i + 1] for i in range(2)], axis=1),
        "ops_clip_tanh": lambda x: ops.tanh(ops.clip(x, -1.0, 1.0)),
    }
    for name, fn in benign.items():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4), keras.layers.Lambda(fn)])
        save(model, "k3_" + name)
        expect(f"k3_{name}.keras", "zip", "clean")
        expect(f"k3_{name}.config.json", "keras-config", "clean")
        try:
            model.save(path(f"k3_{name}.h5"))
        except TypeError as e:  # Keras 3's legacy HDF5 writer cannot deep-copy some closures
            print(f"k3_{name}.h5 not written: {e}")
            if os.path.exists(path(f"k3_{name}.h5")):
                os.remove(path(f"k3_{name}.h5"))
            continue
        expect(f"k3_{name}.h5", "keras-h5", "clean")

    base = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda t: t * 2)])
    cfg = save(base, "k3_base")
    expect("k3_base.keras", "zip", "clean")
    expect("k3_base.config.json", "keras-config", "clean")

    def lambda_layer(c):
        return next(l for l in c["config"]["layers"] if l["class_name"] == "Lambda")

    def with_code(c, code):
        c = json.loads(json.dumps(c))
        lambda_layer(c)["config"]["function"]["config"]["code"] = code
        return c

    def write_keras(name, c):
        with zipfile.ZipFile(path("k3_base.keras")) as zin, \
                zipfile.ZipFile(path(name + ".keras"), "w") as zout:
            for item in zin.infolist():
                data = zin.read(item.filename)
                if item.filename == "config.json":
                    data = json.dumps(c).encode()
                zout.writestr(item, data)
        with open(path(name + ".config.json"), "w") as f:
            json.dump(c, f)

    for name, fn in attacks().items():
        write_keras("k3_attack_" + name, with_code(cfg, code_of(fn)))
        expect(f"k3_attack_{name}.keras", "zip", "dangerous", ["PS984"])
        expect(f"k3_attack_{name}.config.json", "keras-config", "dangerous", ["PS984"])

    # A closure holding a module: Keras imports it by name when loading.
    with open(path("k3_ops_mean.config.json")) as f:
        closure_cfg = json.load(f)
    for name, module, verdict, rules in [("closure_module_os", "os", "dangerous", ["PS981"]),
                                         ("closure_module_unknown", "my_package.helpers", "suspicious",
                                          ["PS982"])]:
        c = json.loads(json.dumps(closure_cfg))
        lambda_layer(c)["config"]["function"]["config"]["closure"][0]["config"] = module
        with open(path(f"k3_{name}.config.json"), "w") as f:
            json.dump(c, f)
        expect(f"k3_{name}.config.json", "keras-config", verdict, rules)

    # Names the scan does not know: suspicious, never clean.
    write_keras("k3_unknown_helper", with_code(cfg, code_of(lambda x: my_helper(x))))  # noqa: F821
    expect("k3_unknown_helper.keras", "zip", "suspicious", ["PS980"])
    expect("k3_unknown_helper.config.json", "keras-config", "suspicious", ["PS980"])
    # Code that is not marshal data.
    write_keras("k3_not_marshal", with_code(cfg, base64.b64encode(b"\x00garbage").decode()))
    expect("k3_not_marshal.config.json", "keras-config", "suspicious", ["PS980"])
    expect("k3_not_marshal.keras", "zip", "suspicious", ["PS980"])


def tf_keras_h5():
    import tf_keras

    model = tf_keras.Sequential([tf_keras.layers.Dense(4, input_shape=(3,)),
                                 tf_keras.layers.Lambda(lambda t: t * 2.0)])
    model.save(path("k2_times_two.h5"))
    expect("k2_times_two.h5", "keras-h5", "clean")
    for name, fn in attacks().items():
        dst = path(f"k2_attack_{name}.h5")
        shutil.copyfile(path("k2_times_two.h5"), dst)
        with h5py.File(dst, "r+") as f:
            cfg = json.loads(f.attrs["model_config"])
            layer = next(l for l in cfg["config"]["layers"] if l["class_name"] == "Lambda")
            assert layer["config"]["function_type"] == "lambda"
            layer["config"]["function"][0] = code_of(fn)
            f.attrs["model_config"] = json.dumps(cfg).encode()
        expect(f"k2_attack_{name}.h5", "keras-h5", "dangerous", ["PS984"])

    # The other places tf_keras takes code from: `output_shape` and `mask` (with a `*_type` of
    # "lambda"), the code alone instead of `[code, defaults, closure]`, code that is not base64
    # (marshal bytes as a string, which `func_load` reads as raw_unicode_escape), and the
    # `module` whose globals the function runs with.
    evil = attacks()["import_os_system"]

    def spawn_alone(x):
        # os.posix_spawn once the module is `os`: a name harmless on its own.
        return posix_spawn("/bin/sh", ["sh", "-c", "id"], {}) and x  # noqa: F821

    def relu_alone(x):
        return nn.relu(x)  # noqa: F821  (tf.nn.relu once the module is `tensorflow`)

    edits = {
        "k2_attack_output_shape": ({"output_shape": [code_of(evil), None, None],
                                    "output_shape_type": "lambda"}, "dangerous", ["PS984"]),
        "k2_attack_mask": ({"mask": [code_of(evil), None, None], "mask_type": "lambda"},
                           "dangerous", ["PS984"]),
        "k2_attack_code_alone": ({"function": code_of(evil)}, "dangerous", ["PS984"]),
        "k2_attack_raw_marshal": ({"function": [marshal.dumps(evil.__code__).decode("latin-1"),
                                                None, None]}, "dangerous", ["PS984"]),
        "k2_attack_base64_noise": ({"function": ["*" + code_of(evil).replace("\n", "!\n") + "*",
                                                 None, None]}, "dangerous", ["PS984"]),
        "k2_attack_module_os": ({"function": [code_of(spawn_alone), None, None], "module": "os"},
                                "dangerous", ["PS984"]),
        "k2_module_unknown": ({"function": [code_of(relu_alone), None, None],
                               "module": "my_package.layers"}, "suspicious", ["PS980"]),
        "k2_module_tensorflow": ({"function": [code_of(relu_alone), None, None],
                                  "module": "tensorflow"}, "clean", []),
    }
    from tf_keras.src.utils.generic_utils import func_load
    for name, (change, verdict, rules) in edits.items():
        for key in ("function", "output_shape", "mask"):
            if key in change:  # what tf_keras would build (never called here)
                code = change[key][0] if isinstance(change[key], list) else change[key]
                assert func_load(code, globs={}).__code__.co_names, name
        dst = path(name + ".h5")
        shutil.copyfile(path("k2_times_two.h5"), dst)
        with h5py.File(dst, "r+") as f:
            cfg = json.loads(f.attrs["model_config"])
            layer = next(l for l in cfg["config"]["layers"] if l["class_name"] == "Lambda")
            layer["config"].update(change)
            f.attrs["model_config"] = json.dumps(cfg).encode()
        expect(name + ".h5", "keras-h5", verdict, rules)


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    keras3()
    tf_keras_h5()
    manifest.write(ROOT, "manifest-keras-lambda.json", __file__, MANIFEST)


if __name__ == "__main__":
    main()
