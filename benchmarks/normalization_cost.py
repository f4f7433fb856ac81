"""What the row normalizations (Softmax, LogSoftmax, LayerNormalization, RMSNormalization, alone or
in a fused group) of a model cost on one thread, against onnxruntime running the same node.

    python -m benchmarks.normalization_cost --models bert,gpt2

Each such node of the fused, optimized graph is compiled alone (as benchmarks/fusion_cost.py
does) and timed in CPU time of the calling thread, minimum over rounds, minus the cost of
calling a model that does one tiny Add. onnxruntime (one intra-op thread, so it runs on the
calling thread) runs the node's ops as a one-node (or, for a group, its body's) ONNX model, with
its own tiny-Add call cost subtracted. Nothing here asserts on speed.
"""

from __future__ import annotations

import argparse

import numpy as np

import kiln
from kiln.api import optimize_graph
from kiln.codegen.threadpool import ensure_thread_pool
from kiln.frontends.onnx import export_model, import_model
from kiln.ir import ops
from kiln.runtime.benchmark import tiny_add_graph
from kiln.runtime.compiled_model import compile_graph
from kiln.runtime.specialize import copy_graph

from .bench import CONFIGS
from .fusion_cost import all_values, cpu_seconds, describe, one_node
from .models import example_inputs

ROW_OPS = (ops.Softmax, ops.LogSoftmax, ops.LayerNormalization, ops.RMSNormalization)


def _is_row_norm(node) -> bool:
    if node.op is ops.Fused:
        return any(m.op in ROW_OPS for m in node.attrs["body"].nodes)
    return node.op in ROW_OPS


def _ort_session(graph):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(export_model(graph).SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])


def _ort_runner(model_graph, args):
    """A callable running the graph under onnxruntime, or None when it cannot (a Fused group is
    run as its body)."""
    g = model_graph
    if len(g.nodes) == 1 and g.nodes[0].op is ops.Fused:
        body = copy_graph(g.nodes[0].attrs["body"])
        g = body
    try:
        sess = _ort_session(g)
    except Exception:           # noqa: BLE001 -- an op ORT lacks: no comparison
        return None
    feeds = {i.name: a for i, a in zip(sess.get_inputs(), args)}
    return lambda: sess.run(None, feeds)


def profile(name: str, rounds: int, log=print) -> None:
    config = CONFIGS[name]
    graph = config.build()
    feeds = example_inputs(graph, batch=config.batch, seq=config.seq)
    fused = optimize_graph(import_model(export_model(graph)), kiln.CompileOptions())
    values = all_values(fused, feeds)
    symbols = {}
    for rank in range(1, 6):
        for axis in range(rank):
            if axis == 0:
                symbols[(axis, rank, config.batch)] = "batch"
            elif not (rank == 3 and axis == 2):
                symbols[(axis, rank, config.seq)] = "seq"
    items = []
    for node in fused.nodes:
        if not _is_row_norm(node):
            continue
        found = one_node(node, values, symbols)
        if found is None:
            continue
        model, args = found
        items.append((node, model, args, _ort_runner(model.graph, args)))
    tiny_graph = tiny_add_graph()
    tiny = compile_graph(tiny_graph)
    tiny_ort = _ort_runner(tiny_graph, [np.ones(1, np.float32)] * 2)
    tiny_args = [np.ones(1, np.float32)] * 2
    best: dict = {}

    def time_it(key, run):
        best[key] = min(best.get(key, 1.0), cpu_seconds(run))
    for _ in range(rounds):
        time_it("tiny", lambda: tiny.run(tiny_args))
        time_it("tiny_ort", tiny_ort)
        for i, (node, model, args, ort_run) in enumerate(items):
            time_it(("kiln", i), lambda m=model, a=args: m.run(a))
            if ort_run is not None:
                time_it(("ort", i), ort_run)
    log(f"{name}: row normalizations, µs of one thread (call costs subtracted)")
    log("| node | input | kiln | onnxruntime |")
    log("|---|---|---:|---:|")
    for i, (node, model, args, ort_run) in enumerate(items):
        k = (best[("kiln", i)] - best["tiny"]) * 1e6
        o = "" if ort_run is None else f"{(best[('ort', i)] - best['tiny_ort']) * 1e6:.1f}"
        shape = "x".join(str(d) for d in args[0].shape)
        log(f"| {describe(node)[:60]} | {shape} | {k:.1f} | {o} |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="bert,gpt2")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    ensure_thread_pool(1)
    for name in args.models.split(","):
        profile(name, args.rounds)


if __name__ == "__main__":
    main()
