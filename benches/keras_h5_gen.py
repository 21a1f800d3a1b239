#!/usr/bin/env python3
"""Benign HDF5 and Keras files in the hundreds, by the libraries' normal save paths, for the
precision benchmark (benches/precision.py, benches/PRECISION.md):

* Keras models of every common layer family (dense, convolutional, recurrent, attention,
  embedding, preprocessing with inline vocabularies, merges, wrappers, built-in applications
  without weights), each saved three ways: `model.save("*.keras")`, `model.save("*.h5")` (the
  legacy HDF5 format with `model_config`) and `model.save_weights("*.weights.h5")`;
* h5py data files with randomised structure: every `libver`, `track_order`, chunking,
  compression, dtypes, string kinds, attributes, soft and hard links, groups large enough for
  dense storage.

    KERAS_BACKEND=torch python benches/keras_h5_gen.py OUT_DIR [--seed N] [--h5py N]
"""

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import h5py  # noqa: E402
import numpy as np  # noqa: E402


def keras_models():
    import keras
    from keras import layers as L
    from keras import ops

    def seq(*ls, shape):
        return keras.Sequential([keras.Input(shape)] + list(ls))

    def functional(build, shape):
        inp = keras.Input(shape)
        return keras.Model(inp, build(inp))

    yield "dense", seq(L.Dense(16, activation="relu"), L.Dense(4, activation="softmax"), shape=(8,))
    yield "dense_reg", seq(L.Dense(16, kernel_regularizer="l2", bias_initializer="ones"),
                           L.Dropout(0.2), L.Dense(1), shape=(8,))
    for act in ["gelu", "selu", "swish", "tanh", "sigmoid", "softplus", "elu", "leaky_relu",
                "relu6", "hard_sigmoid", "mish", "linear", "exponential", "log_softmax"]:
        yield f"activation_{act}", seq(L.Dense(8, activation=act), L.Activation(act), shape=(4,))
    for act in [keras.activations.relu, keras.activations.tanh, keras.activations.gelu]:
        yield f"lambda_{act.__name__}", seq(L.Dense(4), L.Lambda(act), shape=(4,))
    yield "conv1d", seq(L.Conv1D(8, 3), L.MaxPooling1D(), L.GlobalAveragePooling1D(), L.Dense(2), shape=(32, 4))
    yield "conv2d_bn", seq(L.Conv2D(8, 3, padding="same"), L.BatchNormalization(), L.ReLU(),
                           L.MaxPooling2D(), L.Flatten(), L.Dense(3), shape=(16, 16, 3))
    yield "conv3d", seq(L.Conv3D(4, 3), L.GlobalMaxPooling3D(), L.Dense(2), shape=(8, 8, 8, 1))
    yield "separable", seq(L.SeparableConv2D(8, 3), L.DepthwiseConv2D(3), L.GlobalAveragePooling2D(), shape=(16, 16, 3))
    yield "transpose", seq(L.Conv2DTranspose(4, 3, strides=2), L.UpSampling2D(), L.Cropping2D(1),
                           L.ZeroPadding2D(1), shape=(8, 8, 3))
    yield "lstm", seq(L.LSTM(8, return_sequences=True), L.LSTM(4), L.Dense(1), shape=(10, 3))
    yield "gru_bidir", seq(L.Bidirectional(L.GRU(6)), L.Dense(2), shape=(10, 3))
    yield "simple_rnn", seq(L.SimpleRNN(5), shape=(7, 2))
    yield "conv_lstm", seq(L.ConvLSTM2D(4, 3), L.Flatten(), shape=(3, 8, 8, 1))
    yield "embedding", seq(L.Embedding(100, 8), L.GlobalAveragePooling1D(), L.Dense(2), shape=(12,))
    yield "time_distributed", seq(L.TimeDistributed(L.Dense(4)), L.Flatten(), shape=(5, 3))
    yield "layernorm", seq(L.LayerNormalization(), L.Dense(4), L.UnitNormalization(), shape=(6,))
    yield "groupnorm", seq(L.Conv2D(8, 1), L.GroupNormalization(4), shape=(4, 4, 2))
    yield "reshape", seq(L.Reshape((4, 4)), L.Permute((2, 1)), L.Flatten(), L.RepeatVector(2), shape=(16,))
    yield "noise", seq(L.GaussianNoise(0.1), L.GaussianDropout(0.1), L.AlphaDropout(0.1),
                       L.SpatialDropout1D(0.1), shape=(4, 4))
    yield "rescaling", seq(L.Rescaling(1 / 255.0), L.CenterCrop(8, 8), L.Resizing(4, 4), shape=(10, 10, 3))

    # Lambda layers as models use them (bytecode in the config).
    lambdas = {
        "scale": lambda x: x / 255.0,
        "l2norm": lambda x: x / ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True) + 1e-6),
        "first_column": lambda x: x[:, 0:1],
        "expand": lambda x: ops.expand_dims(x, -1),
        "mean_keep": lambda x: ops.mean(x, axis=1, keepdims=True),
        "clip": lambda x: ops.clip(x, 0.0, 6.0),
        "softmax_t": lambda x, t=2.0: ops.softmax(x / t),
        "split_sum": lambda x: sum(ops.split(x, 2, axis=-1)),
        "stack_max": lambda x: ops.max(ops.stack([x, -x], axis=0), axis=0),
        "where_pos": lambda x: ops.where(x > 0, x, ops.zeros_like(x)),
        "cast_round": lambda x: ops.cast(ops.round(x), "float32"),
        "reshape_back": lambda x: ops.reshape(ops.transpose(ops.reshape(x, (-1, 2, 2)), (0, 2, 1)), (-1, 4)),
        "concat_list": lambda x: ops.concatenate([x[:, i:i + 1] * (i + 1) for i in range(4)], axis=-1),
        "shape_based": lambda x: x * ops.cast(ops.shape(x)[-1], "float32"),
        "tanh_sigmoid": lambda x: ops.tanh(x) * ops.sigmoid(x),
    }
    for name, fn in lambdas.items():
        yield f"lambda_code_{name}", seq(L.Dense(4), L.Lambda(fn), shape=(4,))

    def attention(x):
        a = L.MultiHeadAttention(num_heads=2, key_dim=4)(x, x)
        x = L.Add()([x, a])
        x = L.LayerNormalization()(x)
        return L.Dense(2)(L.GlobalAveragePooling1D()(x))

    yield "mha", functional(attention, (6, 8))

    def merges(x):
        a, b = L.Dense(4)(x), L.Dense(4)(x)
        m = [L.Concatenate()([a, b]), L.Add()([a, b]), L.Multiply()([a, b]), L.Average()([a, b]),
             L.Maximum()([a, b]), L.Minimum()([a, b]), L.Subtract()([a, b])]
        return L.Dense(1)(L.Concatenate()(m))

    yield "merges", functional(merges, (4,))

    def dot_attention(x):
        q = L.Dense(4)(x)
        return L.Flatten()(L.Attention()([q, x]))

    yield "dot_attention", functional(dot_attention, (5, 4))

    def two_inputs():
        a, b = keras.Input((3,), name="a"), keras.Input((5,), name="b")
        return keras.Model([a, b], [L.Dense(1, name="x")(L.Concatenate()([a, b])), L.Dense(2, name="y")(b)])

    yield "two_inputs", two_inputs()

    norm = L.Normalization()
    norm.adapt(np.random.default_rng(0).normal(size=(32, 4)).astype("f4"))
    yield "normalization_adapted", seq(norm, L.Dense(2), shape=(4,))
    # Preprocessing layers: some need TensorFlow installed (skipped, reported, without it).
    for name, make in [
        ("string_lookup_inline", lambda: L.StringLookup(vocabulary=["a", "b", "c"])),
        ("integer_lookup_inline", lambda: L.IntegerLookup(vocabulary=[3, 5, 7])),
        ("category_encoding", lambda: L.CategoryEncoding(8, output_mode="one_hot")),
        ("hashing", lambda: L.Hashing(16)),
        ("discretization", lambda: L.Discretization(bin_boundaries=[0.0, 1.0])),
    ]:
        try:
            yield name, seq(make(), shape=(1,))
        except ImportError as e:
            print(f"skipped {name}: {e}"[:200], file=sys.stderr)

    for opt in ["adam", "sgd", "rmsprop", "adamw", "adagrad", "nadam"]:
        for loss in ["mse", "sparse_categorical_crossentropy", "binary_crossentropy", "huber"]:
            m = seq(L.Dense(8, activation="relu"), L.Dense(3), shape=(5,))
            m.compile(optimizer=opt, loss=loss, metrics=["mae"] if loss in ("mse", "huber") else ["accuracy"])
            yield f"compiled_{opt}_{loss}", m

    small = dict(weights=None, input_shape=(64, 64, 3), classes=10)
    apps = keras.applications
    yield "app_mobilenet_v2", apps.MobileNetV2(alpha=0.35, **small)
    yield "app_mobilenet_v3_small", apps.MobileNetV3Small(alpha=0.75, **small)
    yield "app_mobilenet", apps.MobileNet(alpha=0.25, **small)
    yield "app_efficientnet_b0", apps.EfficientNetB0(**small)
    yield "app_densenet121", apps.DenseNet121(**small)


def keras_files(out: Path):
    n = 0
    for name, model in keras_models():
        for suffix, save in [(".keras", model.save), (".h5", model.save),
                             (".weights.h5", model.save_weights)]:
            try:
                save(str(out / f"{name}{suffix}"))
                n += 1
            except Exception as e:  # a layer the legacy format cannot write: skipped, reported
                print(f"skipped {name}{suffix}: {type(e).__name__}: {e}"[:200], file=sys.stderr)
    return n


def h5py_files(out: Path, count: int, rng):
    dtypes = ["f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "?", "c8"]
    for i in range(count):
        libver = ["earliest", "v108", "v110", "v112", "v114", "latest"][i % 6]
        kw = dict(libver=libver) if libver != "earliest" else {}
        if i % 5 == 0:
            kw["track_order"] = True
        with h5py.File(out / f"h5py_{i:03d}.h5", "w", **kw) as f:
            groups = [f]
            for j in range(rng.integers(1, 30)):
                parent = groups[rng.integers(len(groups))]
                if rng.random() < 0.3:
                    groups.append(parent.create_group(f"g{j}"))
                    continue
                dt = dtypes[rng.integers(len(dtypes))]
                shape = tuple(int(x) for x in rng.integers(1, 20, size=rng.integers(0, 4)))
                data = (rng.standard_normal(shape) * 50).astype(dt)
                opts = {}
                r = rng.random()
                if r < 0.3 and shape:
                    opts = dict(chunks=True, compression="gzip", compression_opts=int(rng.integers(1, 9)))
                elif r < 0.4 and shape:
                    opts = dict(chunks=True, shuffle=True, fletcher32=True)
                elif r < 0.5 and shape:
                    opts = dict(chunks=True, compression="lzf")
                elif r < 0.55:
                    opts = dict(fillvalue=np.zeros((), dt)[()])
                ds = parent.create_dataset(f"d{j}", data=data, **opts)
                if rng.random() < 0.4:
                    ds.attrs["units"] = ["m", "s", "kg"][j % 3]
                    ds.attrs["scale"] = rng.random()
            f.attrs["created_by"] = "h5py benchmark"
            f.attrs["ids"] = rng.integers(0, 100, size=5)
            if rng.random() < 0.3:
                f.attrs["labels"] = [f"label {k}" for k in range(rng.integers(1, 50))]
            if rng.random() < 0.2:
                f["alias"] = h5py.SoftLink("/")
            if rng.random() < 0.2:
                big = f.create_group("many")
                for k in range(int(rng.integers(10, 200))):
                    big.create_dataset(f"w{k}", data=np.arange(3, dtype="f4"))
            if rng.random() < 0.2:
                f.create_dataset("text", data=["alpha", "béta"], dtype=h5py.string_dtype())
    return count


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--h5py", type=int, default=150)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    n = keras_files(a.out) + h5py_files(a.out, a.h5py, rng)
    print(n, "files in", a.out)


if __name__ == "__main__":
    main()
