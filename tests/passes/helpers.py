"""Running a pass in tests: verify, compare numerically with the interpreter, check idempotence."""

from __future__ import annotations

import copy

import numpy as np

from kiln.ir.interpreter import interpret
from kiln.ir.parser import parse_graph
from kiln.ir.printer import collect_weights, print_graph
from kiln.ir.verifier import verify
from kiln.options import CompileOptions
from kiln.rewrite.pass_manager import PassContext, PassManager, fingerprint


def clone(graph):
    return parse_graph(print_graph(graph), collect_weights(graph))


def run_passes(graph, passes, options=None):
    ctx = PassContext(options or CompileOptions())
    out = PassManager(passes).run(clone(graph), ctx)
    return out, ctx


def check_pass(graph, passes, feeds, *, options=None, rtol=1e-5, atol=1e-6, idempotent=True):
    """The optimized graph verifies, computes what the original does, and a second run is a no-op."""
    out, ctx = run_passes(graph, passes, options)
    verify(out)
    want = interpret(graph, feeds)
    got = interpret(out, feeds)
    for w, g in zip(want, got):
        np.testing.assert_allclose(np.asarray(g, np.float64), np.asarray(w, np.float64),
                                   rtol=rtol, atol=atol, equal_nan=True)
    if idempotent:
        again, _ = run_passes(out, passes, options)
        assert fingerprint(again) == fingerprint(out), "a second run changed the graph"
    return out, ctx


def flat_ops(graph) -> list[str]:
    """Op names in order, with fused groups opened into their bodies' ops."""
    from kiln.ir import ops
    out = []
    for n in graph.nodes:
        out.extend(flat_ops(n.attrs["body"]) if n.op is ops.Fused else [n.op.name])
    return out
