"""What each fusion group costs against its parts, and the fused model against the unfused one.

    python -m benchmarks.fusion_cost --models bert,gpt2

Every node of the fused, optimized graph is compiled alone (a one-node graph whose inputs are
the values it reads, with the model's symbolic dims), and each Fused node's body ops are
compiled alone too; each is timed on one thread in CPU time of the calling thread (a shared,
busy machine descheduling us does not count), minimum over rounds, minus the cost of calling a
model that does one tiny Add. A group whose time exceeds its parts' sum by more than 15% is
marked `<<<`: a fusion that does not pay. Then the whole model, fused and unfused, the same way.
Nothing here asserts on speed.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import kiln
from kiln.codegen.threadpool import ensure_thread_pool
from kiln.frontends.onnx import export_model, import_model
from kiln.api import optimize_graph
from kiln.errors import KilnError
from kiln.ir import ops
from kiln.ir.graph import Graph, Node, Value
from kiln.ir.interpreter import interpret
from kiln.ir.types import TensorType
from kiln.runtime.benchmark import tiny_add_graph
from kiln.runtime.compiled_model import compile_graph
from kiln.runtime.specialize import copy_graph

from .bench import CONFIGS
from .models import example_inputs


def cpu_seconds(run, calls: int = 15, batch: int = 4) -> float:
    """Median CPU time of the calling thread per call of `run`."""
    for _ in range(3):
        run()
    samples = []
    for _ in range(calls):
        t0 = time.thread_time_ns()
        for _ in range(batch):
            run()
        samples.append((time.thread_time_ns() - t0) / batch)
    return statistics.median(samples) * 1e-9


def all_values(graph: Graph, feeds: dict) -> dict:
    """Every value of `graph` on `feeds`, by name (the interpreter)."""
    g = copy_graph(graph)
    outs = [v for n in g.nodes for v in n.outputs if v is not None]
    g.outputs = outs
    values = {v.name: x for v, x in zip(outs, interpret(g, feeds))}
    values.update(feeds)
    return values


def one_node(node: Node, values: dict, symbols: dict) -> tuple:
    """(a compiled graph of `node` alone, its arguments); None when it cannot compile alone
    (a shape-deciding input). Dims whose size is in `symbols` are named (batch, seq)."""
    g = Graph("one")
    mapping = {}
    for v in node.inputs:
        if v is None or id(v) in mapping:
            continue
        if v.is_constant:
            mapping[id(v)] = g.add_constant(v.data, v.name, type=v.type)
            continue
        x = values[v.name]
        known = v.type.shape if getattr(v.type, "shape", None) is not None and \
            len(v.type.shape) == x.ndim else (None,) * x.ndim
        dims = tuple(k if isinstance(k, (int, str)) else symbols.get((i, x.ndim, d), d)
                     for i, (k, d) in enumerate(zip(known, x.shape)))
        mapping[id(v)] = g.add_input(v.name, TensorType(v.type.dtype, dims))
    outs = [None if v is None else Value(g.claim(g.fresh_name(v.name)), v.type)
            for v in node.outputs]
    g.append(Node(node.op, [None if v is None else mapping[id(v)] for v in node.inputs],
                  dict(node.attrs), outs, node.name))
    g.outputs = [o for o in outs if o is not None]
    try:
        model = compile_graph(g)
    except KilnError:
        return None
    return model, [values[v.name] for v in g.inputs]


def describe(node: Node) -> str:
    if node.op is ops.Fused:
        return "Fused[" + ",".join(m.op.name for m in node.attrs["body"].nodes) + "]"
    return node.op.name


def profile(name: str, rounds: int, log=print) -> None:
    config = CONFIGS[name]
    graph = config.build()
    feeds = example_inputs(graph, batch=config.batch, seq=config.seq)
    onnx_model = export_model(graph)
    # a dim the graph leaves unknown is named as the model declares it: the leading dim of the
    # batch's size is `batch`, one of the sequence's size `seq` (but the last dim of a
    # [batch, seq, width] tensor is the width, even when it equals the sequence length)
    symbols = {}
    for rank in range(1, 6):
        for axis in range(rank):
            if axis == 0:
                symbols[(axis, rank, config.batch)] = "batch"
            elif not (rank == 3 and axis == 2):
                symbols[(axis, rank, config.seq)] = "seq"
    fused = optimize_graph(import_model(onnx_model), kiln.CompileOptions())
    values = all_values(fused, feeds)
    items = []
    for node in fused.nodes:
        whole = one_node(node, values, symbols)
        if whole is None:
            continue
        parts = []
        if node.op is ops.Fused:
            body = copy_graph(node.attrs["body"])
            inner = [values[v.name] for v in node.inputs]
            outs = [v for m in body.nodes for v in m.outputs if v is not None]
            body.outputs = outs
            bvalues = dict(zip([v.name for v in body.inputs], inner))
            bvalues.update({v.name: x for v, x in zip(outs, interpret(body, inner))})
            parts = [p for p in (one_node(m, bvalues, symbols) for m in body.nodes) if p]
        items.append((node, whole, parts))
    tiny = compile_graph(tiny_add_graph())
    tiny_args = [np.ones(1, np.float32)] * 2
    best: dict = {}

    def time_it(key, model, args):
        best[key] = min(best.get(key, 1.0), cpu_seconds(lambda: model.run(args)))
    for _ in range(rounds):
        time_it("tiny", tiny, tiny_args)
        for i, (node, whole, parts) in enumerate(items):
            time_it((i,), *whole)
            for j, part in enumerate(parts):
                time_it((i, j), *part)
    call = best["tiny"]
    log(f"{name}: per group, µs of one thread (a call costs {call * 1e6:.1f} µs, subtracted)")
    log("| group | fused | parts |   |")
    log("|---|---:|---:|---|")
    for i, (node, whole, parts) in enumerate(items):
        if node.op is not ops.Fused:
            continue
        t = best[(i,)] - call
        p = sum(best[(i, j)] - call for j in range(len(parts)))
        flag = "<<<" if t > 1.15 * max(p, 0.0) + 1e-6 else ""
        log(f"| {describe(node)[:70]} | {t * 1e6:.1f} | {p * 1e6:.1f} | {flag} |")
    args = [feeds[v.name] for v in graph.inputs]
    models = {f: kiln.compile(onnx_model.SerializeToString(), kiln.CompileOptions(fuse=f))
              for f in (True, False)}
    whole_best = {f: min(cpu_seconds(lambda m=m: m.run(args), batch=1) for _ in range(rounds))
                  for f, m in models.items()}
    log(f"{name}: whole model, one thread, CPU ms: fused {whole_best[True] * 1e3:.3f}, "
        f"unfused {whole_best[False] * 1e3:.3f}, ratio {whole_best[True] / whole_best[False]:.3f}")


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
