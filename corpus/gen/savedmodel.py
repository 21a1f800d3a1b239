"""TensorFlow SavedModel fixtures: folders written by TensorFlow's own save paths
(`tf.saved_model.save` of tf.Modules, Keras 3 `model.export`, tf_keras `model.save` with
`keras_metadata.pb`), and attacks saved the same way: tf.functions that read, list or write files
(`tf.io.read_file`, `tf.io.matching_files`, `tf.io.write_file`), print to a file
(`tf.print(output_stream="file://…")`) or run Python (`tf.py_function`).

Run from the repository root with a venv holding the pinned libraries:
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install tensorflow-cpu==2.21.0 tf_keras
    /tmp/venv/bin/python corpus/gen/savedmodel.py
It rewrites corpus/formats/savedmodel/ and corpus/formats/manifest-savedmodel.json. Nothing
saved here is loaded or called after saving.
"""

import os
import shutil

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import manifest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "formats")
OUT = os.path.join(ROOT, "savedmodel")
MANIFEST = []


def expect_folder(name, pb_verdict, rules=(), metadata=None):
    """Every file of a saved folder: saved_model.pb judged, the rest data."""
    folder = os.path.join(OUT, name)
    for dirpath, _, files in os.walk(folder):
        for f in sorted(files):
            rel = os.path.relpath(os.path.join(dirpath, f), ROOT).replace(os.sep, "/")
            if f == "saved_model.pb":
                entry = ("tf-savedmodel", pb_verdict, sorted(rules))
            elif f == "keras_metadata.pb":
                entry = ("tf-keras-metadata",) + (metadata or ("clean", []))
            elif f == "fingerprint.pb":
                entry = ("not-a-model:tf-fingerprint", "clean", [])
            elif "assets" in rel.split("/"):
                entry = ("not-a-model:text", "clean", [])
            else:  # the variables checkpoint: index and data shards
                entry = ("not-a-model:binary", "clean", [])
            MANIFEST.append({"path": rel, "container": entry[0], "verdict": entry[1],
                             "rules": list(entry[2]), "note": name})


class Dense(tf.Module):
    def __init__(self):
        self.w = tf.Variable(tf.random.normal([4, 2]), name="w")
        self.b = tf.Variable(tf.zeros([2]), name="b")

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    def __call__(self, x):
        return tf.nn.relu(tf.matmul(x, self.w) + self.b)


def module_with(fn, signature=(tf.TensorSpec([None, 4], tf.float32),)):
    m = Dense()
    m.serve = tf.function(lambda x: fn(m, x), input_signature=list(signature))
    return m


def benign():
    tf.saved_model.save(Dense(), os.path.join(OUT, "module_dense"))
    expect_folder("module_dense", "clean")

    def control_flow(m, x):
        y = m(x)
        return tf.cond(tf.reduce_sum(y) > 0, lambda: y * 2.0, lambda: y)

    tf.saved_model.save(module_with(control_flow), os.path.join(OUT, "module_cond_while"))
    expect_folder("module_cond_while", "clean")

    import keras
    inp = keras.Input((8,))
    x = keras.layers.Dense(16, activation="relu")(inp)
    x = keras.layers.BatchNormalization()(x)
    out = keras.layers.Dense(3, activation="softmax")(x)
    keras.Model(inp, out).export(os.path.join(OUT, "keras3_export"))
    expect_folder("keras3_export", "clean")

    # A lookup table initialised from the model's own asset file.
    vocab = os.path.join(OUT, "vocab.txt")
    with open(vocab, "w") as f:
        f.write("alpha\nbeta\ngamma\n")

    class Lookup(tf.Module):
        def __init__(self):
            init = tf.lookup.TextFileInitializer(
                vocab, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
                tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER)
            self.table = tf.lookup.StaticHashTable(init, -1)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, words):
            return self.table.lookup(words)

    tf.saved_model.save(Lookup(), os.path.join(OUT, "lookup_table_asset"))
    os.remove(vocab)
    expect_folder("lookup_table_asset", "clean")

    import tf_keras
    m = tf_keras.Sequential([tf_keras.layers.Dense(4, input_shape=(3,)),
                             tf_keras.layers.Dropout(0.1), tf_keras.layers.Dense(1)])
    m.compile(optimizer="adam", loss="mse")
    m.save(os.path.join(OUT, "tf_keras_sequential"), save_format="tf")
    expect_folder("tf_keras_sequential", "clean")

    m = tf_keras.Sequential([tf_keras.layers.Dense(4, input_shape=(3,)),
                             tf_keras.layers.Lambda(lambda t: t * 2.0)])
    m.save(os.path.join(OUT, "tf_keras_lambda"), save_format="tf")
    # The Lambda's bytecode is in keras_metadata.pb; the graph holds only its traced ops.
    expect_folder("tf_keras_lambda", "clean", metadata=("suspicious", ["PS980"]))


def attacks():
    cases = [
        ("read_file", lambda m, x: (m(x), tf.io.read_file("/etc/passwd"))[0], ["PS990"]),
        ("matching_files", lambda m, x: (m(x), tf.io.matching_files("/home/*/.ssh/*"))[0], ["PS990"]),
        ("write_file", lambda m, x: (m(x), tf.io.write_file("/tmp/pwned", "x"))[0], ["PS990"]),
        ("print_to_file", lambda m, x: (tf.print(x, output_stream="file:///tmp/leak"), m(x))[1], ["PS990"]),
        ("py_function", lambda m, x: tf.py_function(lambda t: t, [m(x)], tf.float32), ["PS990"]),
    ]
    for name, fn, rules in cases:
        try:
            tf.saved_model.save(module_with(fn), os.path.join(OUT, "attack_" + name))
        except Exception as e:  # noqa: BLE001 - a case TensorFlow refuses to save is reported
            print(f"attack_{name}: not saved: {e}"[:300])
            shutil.rmtree(os.path.join(OUT, "attack_" + name), ignore_errors=True)
            continue
        expect_folder("attack_" + name, "dangerous", rules)

    # Damaged: the same benign graph cut in half.
    src = os.path.join(OUT, "module_dense", "saved_model.pb")
    dst_dir = os.path.join(OUT, "damaged_truncated")
    shutil.copytree(os.path.join(OUT, "module_dense"), dst_dir)
    data = open(src, "rb").read()
    with open(os.path.join(dst_dir, "saved_model.pb"), "wb") as f:
        f.write(data[: len(data) // 2])
    expect_folder("damaged_truncated", "suspicious", ["PS991"])


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    benign()
    attacks()
    manifest.write(ROOT, "manifest-savedmodel.json", __file__, MANIFEST)


if __name__ == "__main__":
    main()
