"""Kernels after fusion and the memory plan, per model of the suite, as Markdown.

    python -m benchmarks.fusion_report             # the table in docs/performance.md

Each model is built in code, exported to ONNX and compiled the way `kiln.compile` does at -O2
(graph passes ending in fuse, then lowering). "ops" counts the graph's ops after the optimizer,
before fusion groups them; "kernels" are the loop nests the lowered program runs. The memory
plan is for batch 1 (and sequence 128 for the transformers); the lower bound is the most bytes
live at any one kernel.
"""

from __future__ import annotations

from kiln.api import load_graph, optimize_graph
from kiln.frontends.onnx import export_model
from kiln.ir import ops
from kiln.lowering import lower_graph
from kiln.options import CompileOptions
from kiln.passes.plan_memory import memory_stats

from .models import SUITE

SIZES = {"batch": 1, "seq": 128}


def model_row(name: str, build) -> str:
    graph = optimize_graph(load_graph(export_model(build()).SerializeToString()), CompileOptions())
    n_ops = sum(len(n.attrs["body"].nodes) if n.op is ops.Fused else 1 for n in graph.nodes)
    program = lower_graph(graph)
    s = memory_stats(program, {k: v for k, v in SIZES.items() if k in program.sizes})
    kernels = len(program.kernels)
    return (f"| {name} | {n_ops} | {kernels} | {100 * kernels / n_ops:.0f}% | "
            f"{s['arena_bytes']:,} | {s['lower_bound_bytes']:,} | "
            f"{s['arena_bytes'] / max(s['lower_bound_bytes'], 1):.3f} | {s['naive_bytes']:,} |")


def report() -> str:
    lines = ["| model | ops after the optimizer | kernels after fusion | kernels / ops "
             "| arena (B) | lower bound (B) | arena / bound | naive sum (B) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [model_row(name, build) for name, build in SUITE.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())
