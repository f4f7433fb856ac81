"""Node counts of the model suite through the -O2 pipeline, pass by pass, as Markdown.

    python -m benchmarks.pass_report            # prints the table in docs/passes.md

Each model is built in code, exported to ONNX, imported back (what a user's file goes through),
optimized with -O2, and checked against the unoptimized graph on the same inputs. Counts are
live nodes (with a path to an output) after each stage; the CSE ⇄ simplify ⇄ fold loop is one
column, with what each of its passes removed in total.
"""

from __future__ import annotations

import numpy as np

from kiln.frontends.onnx import export_model, import_model
from kiln.ir.interpreter import interpret
from kiln.pipeline import pipeline
from kiln.rewrite.pass_manager import PassContext, PassManager

from .models import SUITE, example_inputs

SHORT = {"eliminate_common_subexpressions": "cse", "simplify": "simplify", "fold_constants": "fold"}


def model_row(name: str, build, level: int) -> str:
    graph = import_model(export_model(build()))
    reference = import_model(export_model(build()))
    ctx = PassContext()
    out = PassManager(pipeline(level)).run(graph, ctx)
    cells, loop, removed = [], None, {}
    for r in ctx.records:           # records are in completion order: inner passes first
        if r.name == "fixed-point":
            parts = ", ".join(f"{SHORT[k]} −{v}" for k, v in removed.items() if v)
            cells.append(f"{r.nodes_after} ({r.counters.get('rounds', '?')} rounds: {parts or 'no change'})")
            loop = None
            continue
        if loop is None and cells and r.name in SHORT and not r.name == "fold_batchnorm" and \
                any(x.name == "fixed-point" for x in ctx.records[ctx.records.index(r):]):
            loop = True
        if loop:
            removed[SHORT[r.name]] = removed.get(SHORT[r.name], 0) + r.nodes_before - r.nodes_after
        else:
            cells.append(str(r.nodes_after))
    feeds = example_inputs(reference, batch=1, seq=8)
    err = max(float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
              for a, b in zip(interpret(reference, feeds), interpret(out, feeds)))
    first = ctx.records[0].nodes_before
    return f"| {name} | {first} | " + " | ".join(cells) + f" | {err:.1e} |"


def report(level: int = 2) -> str:
    head = ("| model | imported | fold_constants | cse ⇄ simplify ⇄ fold_constants | fold_batchnorm "
            "| fuse_horizontal | eliminate_dead_code | fuse (groups count as one) "
            "| max abs diff vs. unoptimized |")
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    lines += [model_row(name, build, level) for name, build in SUITE.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())
