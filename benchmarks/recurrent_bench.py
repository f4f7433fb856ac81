"""kiln's native RNN/GRU/LSTM against ONNX Runtime, side by side in one process.

    python -m benchmarks.recurrent_bench [--threads N] [--wall]

Each case is one ONNX node (constant W, R, B) run on random input; both runtimes use N threads
(default 1). The median of 20 runs is reported as CPU time of the process (default: steadier on
a shared machine) or wall time (--wall), with kiln/ORT and the largest difference of the
outputs.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

CASES = [("LSTM", 64, 8, 128, 256), ("LSTM", 64, 1, 256, 512), ("GRU", 64, 1, 64, 128),
         ("GRU", 32, 16, 128, 128), ("RNN", 128, 16, 64, 64)]


def model(op: str, seq: int, batch: int, size: int, hidden: int, rng):
    from onnx import TensorProto, helper, numpy_helper
    g = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    weights = [numpy_helper.from_array((rng.standard_normal(s) * 0.1).astype(np.float32), n)
               for n, s in (("W", (1, g * hidden, size)), ("R", (1, g * hidden, hidden)),
                            ("B", (1, 2 * g * hidden)))]
    node = helper.make_node(op, ["x", "W", "R", "B"], ["y", "y_h"], hidden_size=hidden)
    graph = helper.make_graph(
        [node], op.lower(), [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                           [seq, batch, size])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "y_h")],
        weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)])


def median_time(fn, clock, runs: int = 20) -> float:
    fn()
    times = []
    for _ in range(runs):
        t = clock()
        fn()
        times.append(clock() - t)
    return float(np.median(times))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--wall", action="store_true", help="wall time instead of CPU time")
    args = p.parse_args(argv)
    import onnxruntime as ort

    from kiln.codegen.threadpool import ensure_thread_pool
    from kiln.frontends.onnx.importer import import_model
    from kiln.runtime.compiled_model import compile_graph
    ensure_thread_pool(args.threads)
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = args.threads
    clock = time.perf_counter if args.wall else time.process_time
    rng = np.random.default_rng(0)
    what = "wall" if args.wall else "CPU"
    for op, seq, batch, size, hidden in CASES:
        m = model(op, seq, batch, size, hidden, rng)
        x = rng.standard_normal((seq, batch, size)).astype(np.float32)
        sess = ort.InferenceSession(m.SerializeToString(), sess_options=so,
                                    providers=["CPUExecutionProvider"])
        native = compile_graph(import_model(m))
        diff = max(float(np.max(np.abs(a - b)))
                   for a, b in zip(native.run({"x": x}), sess.run(None, {"x": x})))
        tk = median_time(lambda: native.run({"x": x}), clock)
        to = median_time(lambda: sess.run(None, {"x": x}), clock)
        print(f"{op} T={seq} B={batch} I={size} H={hidden}: kiln {tk * 1e3:.2f} ms, ORT "
              f"{to * 1e3:.2f} ms ({what}, {args.threads} thread(s)), kiln/ORT {tk / to:.2f}, "
              f"max |diff| {diff:.1e}")
        native.close()


if __name__ == "__main__":
    main()
