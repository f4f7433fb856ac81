"""kiln's compiled matrix products against NumPy (OpenBLAS) and ONNX Runtime, side by side.

    python -m benchmarks.gemm_bench                 # every shape of the model suite
    python -m benchmarks.gemm_bench --filter bert   # shapes whose name holds "bert"

Each case is one MatMul (plus the epilogue the suite's models put after it) with a constant
weight, the way the suite's dense layers are written, or a batched MatMul of two inputs (the
attention products). Rounds interleave the runtimes (benchmarks/timing.py); the table shows
medians, GFLOP/s and kiln's time over each peer's.
"""

from __future__ import annotations

import argparse

import numpy as np

import kiln
from kiln.frontends.onnx import export_model
from kiln.ir import GraphBuilder, tensor
from kiln.ir.dtypes import DType

from .timing import interleave

f32 = DType.float32

# name: (A shape, B shape, B constant?, epilogue)
CASES = {
    "mlp.fc0 64x784x512 +bias,relu": ((64, 784), (784, 512), True, "bias_relu"),
    "mlp.fc1 64x512x256 +bias,relu": ((64, 512), (512, 256), True, "bias_relu"),
    "mlp.fc2 64x256x10 +bias": ((64, 256), (256, 10), True, "bias"),
    "bert.qkv 128x128x128 +bias": ((1, 128, 128), (128, 128), True, "bias"),
    "bert.ff1 128x128x512 +bias": ((1, 128, 128), (128, 512), True, "bias"),
    "bert.ff2 128x512x128 +bias": ((1, 128, 512), (512, 128), True, "bias"),
    "bert.scores 4x128x32x128": ((1, 4, 128, 32), (1, 4, 32, 128), False, ""),
    "bert.context 4x128x128x32": ((1, 4, 128, 128), (1, 4, 128, 32), False, ""),
    "base 128x768x768": ((128, 768), (768, 768), True, ""),
    "base 128x768x3072": ((128, 768), (768, 3072), True, ""),
    "square 512": ((512, 512), (512, 512), False, ""),
}


def build(a_shape, b_shape, b_const, epilogue, seed=0):
    rng = np.random.default_rng(seed)
    b = GraphBuilder("mm")
    x = b.input("a", tensor(f32, *a_shape))
    w_data = rng.standard_normal(b_shape).astype(np.float32)
    w = b.constant(w_data, "w") if b_const else b.input("b", tensor(f32, *b_shape))
    y = b.MatMul(x, w)
    if "bias" in epilogue:
        y = b.Add(y, b.constant(rng.standard_normal(b_shape[-1:]).astype(np.float32), "bias"))
    if "relu" in epilogue:
        y = b.Relu(y)
    b.output(y)
    feeds = {"a": rng.standard_normal(a_shape).astype(np.float32)}
    if not b_const:
        feeds["b"] = w_data
    return b.graph, feeds, w_data


def numpy_call(feeds, w, epilogue, bias):
    a = feeds["a"]
    b = feeds.get("b", w)

    def run():
        y = a @ b
        if bias is not None:
            y += bias
        if "relu" in epilogue:
            np.maximum(y, 0, out=y)
        return y
    return run


def main(argv=None):
    import onnxruntime as ort
    p = argparse.ArgumentParser()
    p.add_argument("--filter", default="")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    print("| case | kiln | kiln GFLOP/s | numpy | ORT | kiln/numpy | kiln/ORT | max diff |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (sa, sb, const, epi) in CASES.items():
        if args.filter not in name:
            continue
        graph, feeds, w = build(sa, sb, const, epi)
        bias = graph.constants[-1].data if "bias" in epi else None
        onnx_bytes = export_model(graph).SerializeToString()
        model = kiln.compile(onnx_bytes)
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        sess = ort.InferenceSession(onnx_bytes, so, providers=["CPUExecutionProvider"])
        ref = numpy_call(feeds, w, epi, bias)()
        got = model(feeds)[0]
        diff = float(np.max(np.abs(got - ref))) if got.size else 0.0
        calls = {"kiln": lambda: model(feeds), "numpy": numpy_call(feeds, w, epi, bias),
                 "ort": lambda: sess.run(None, feeds)}
        st = interleave(calls, rounds=args.rounds)
        flops = 2 * np.prod(np.broadcast_shapes(sa[:-2], sb[:-2])) * sa[-2] * sa[-1] * sb[-1]
        k, n, o = st["kiln"].median, st["numpy"].median, st["ort"].median
        print(f"| {name} | {k * 1e6:.0f} µs | {flops / k * 1e-9:.1f} | {n * 1e6:.0f} µs | "
              f"{o * 1e6:.0f} µs | {k / n:.2f} | {k / o:.2f} | {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
