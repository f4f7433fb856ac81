"""ResNet-18's convolution shapes one at a time: kiln's compiled Conv (+ bias + Relu, the fused
group a folded Conv/BatchNorm/Relu becomes) against ONNX Runtime, interleaved in one process.

    python -m benchmarks.conv_shapes                    # every shape, 2 threads
    python -m benchmarks.conv_shapes --shapes stem,3x3s1_56 --threads 1 --rounds 10

Each row is one Conv with constant weights and bias followed by Relu, batch 1, float32;
GFLOP/s counts 2 * M * C/group * KH * KW * OH * OW per call.
"""

from __future__ import annotations

import argparse

import numpy as np

from kiln.frontends.onnx import export_model
from kiln.ir import GraphBuilder, tensor
from kiln.ir.dtypes import DType

from .timing import interleave

# name: (C in, M out, kernel, stride, image)
SHAPES = {
    "stem_7x7s2": (3, 64, 7, 2, 224),
    "3x3s1_56": (64, 64, 3, 1, 56),
    "3x3s2_56": (64, 128, 3, 2, 56),
    "1x1s2_56": (64, 128, 1, 2, 56),
    "3x3s1_28": (128, 128, 3, 1, 28),
    "3x3s2_28": (128, 256, 3, 2, 28),
    "1x1s2_28": (128, 256, 1, 2, 28),
    "3x3s1_14": (256, 256, 3, 1, 14),
    "3x3s2_14": (256, 512, 3, 2, 14),
    "1x1s2_14": (256, 512, 1, 2, 14),
    "3x3s1_7": (512, 512, 3, 1, 7),
}


def conv_graph(cin, cout, k, stride, image, seed=0):
    rng = np.random.default_rng(seed)
    b = GraphBuilder("conv")
    x = b.input("x", tensor(DType.float32, 1, cin, image, image))
    w = b.constant((rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k))
                   .astype(np.float32), "w")
    bias = b.constant(rng.uniform(-0.1, 0.1, cout).astype(np.float32), "b")
    y = b.Conv(x, w, bias, kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4)
    b.output(b.Relu(y))
    return b.graph


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shapes", default=",".join(SHAPES))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=10)
    args = p.parse_args(argv)
    import kiln
    import onnxruntime as ort
    from kiln.codegen.threadpool import ensure_thread_pool
    ensure_thread_pool(args.threads)
    print("| shape | C→M | kiln | ORT | kiln / ORT | kiln GFLOP/s | max abs diff |")
    print("|---|---|---|---|---|---|---|")
    for name in args.shapes.split(","):
        cin, cout, k, s, image = SHAPES[name]
        graph = conv_graph(cin, cout, k, s, image)
        onnx_bytes = export_model(graph).SerializeToString()
        model = kiln.compile(onnx_bytes)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        opts.log_severity_level = 3
        sess = ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])
        x = np.random.default_rng(1).standard_normal((1, cin, image, image)).astype(np.float32)
        ours, ref = model.run([x])[0], sess.run(None, {"x": x})[0]
        stats = interleave({"kiln": lambda: model.run([x]),
                            "ort": lambda: sess.run(None, {"x": x})}, rounds=args.rounds)
        oh = (image + 2 * (k // 2) - k) // s + 1
        flops = 2 * cout * cin * k * k * oh * oh
        km, om = stats["kiln"].median, stats["ort"].median
        print(f"| {name} | {cin}→{cout} | {km * 1e3:.3f} ms | {om * 1e3:.3f} ms | "
              f"{km / om:.2f}× | {flops / km * 1e-9:.1f} | {np.abs(ours - ref).max():.1e} |",
              flush=True)
        model.close()


if __name__ == "__main__":
    main()
