"""Large files for benches/format_speed.sh, written by the real libraries into a folder:
big.h5 (h5py: 64 float32 datasets of 8 MiB, 512 MiB) and onnx/model.onnx with 1 GiB of
initializers in onnx/weights.bin (onnx.save_model with external data).

    python benches/format_speed_gen.py DIR
"""

import os
import sys

import h5py
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main(out):
    os.makedirs(os.path.join(out, "onnx"), exist_ok=True)
    rng = np.random.default_rng(0)
    block = rng.standard_normal(2 << 20, dtype=np.float32)  # 8 MiB
    with h5py.File(os.path.join(out, "big.h5"), "w") as f:
        for i in range(64):
            f.create_dataset(f"layer_{i // 8}/w{i % 8}", data=block)
    # 32 initializers of 32 MiB chained by Add: 1 GiB of external data.
    inits, nodes, prev = [], [], "x"
    for i in range(32):
        inits.append(numpy_helper.from_array(np.tile(block, 4).reshape(8192, 1024), f"w{i}"))
        nodes.append(helper.make_node("Add", [prev, f"w{i}"], [f"y{i}"]))
        prev = f"y{i}"
    graph = helper.make_graph(
        nodes, "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8192, 1024])],
        [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [8192, 1024])],
        inits)
    model = helper.make_model(graph)
    onnx.save_model(model, os.path.join(out, "onnx", "model.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.bin")


if __name__ == "__main__":
    main(sys.argv[1])
