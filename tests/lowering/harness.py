"""Checking lowered programs against the Graph IR interpreter.

    prog = check_op(backend, "Add", [a, b])                    # one-node graph, all inputs fed
    prog = check_op(backend, "Reshape", [x, shape], consts=[1])  # input 1 becomes a constant
    check_graph(backend, graph, feeds)

`backend` is the fixture from conftest.py: "loops" runs the program with the Loop IR interpreter,
"native" compiles it with kiln.codegen (skipped while that module does not exist). Integer and
bool results must match exactly; floats within rtol/atol (NaNs in the same places).
"""

from __future__ import annotations

import importlib.util
from typing import Sequence

import numpy as np

from kiln.ir import GraphBuilder
from kiln.ir.dtypes import DType
from kiln.ir.interpreter import interpret
from kiln.ir.ops import get_op
from kiln.ir.types import TensorType
from kiln.loops.interpreter import run_program
from kiln.loops.verifier import verify_program
from kiln.lowering import lower_graph

HAVE_CODEGEN = importlib.util.find_spec("kiln.codegen") is not None


def run_backend(backend: str, program, feeds: dict) -> list:
    if backend == "loops":
        return run_program(program, feeds)
    from kiln.codegen import compile_program
    return compile_program(program).run(feeds)


def assert_same(got, want, rtol: float, atol: float, what: str = "output") -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, expected {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    if want.dtype.kind in "biu":
        np.testing.assert_array_equal(got, want, err_msg=what)
    else:
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol,
                                   atol=atol, equal_nan=True, err_msg=what)


def tolerance(dtype) -> tuple[float, float]:
    dtype = np.dtype(dtype)
    if dtype.itemsize <= 2 and dtype.kind == "f" or dtype == DType.bfloat16.np:
        return 1e-2, 1e-2
    if dtype == np.float64:
        return 1e-12, 1e-12
    return 2e-6, 1e-6


def check_graph(backend: str, graph, feeds: dict, rtol: float | None = None,
                atol: float | None = None):
    """Lower `graph`, verify the program, run it on `feeds` and compare with the interpreter;
    returns the Program."""
    want = interpret(graph, feeds)
    program = lower_graph(graph)
    verify_program(program)
    got = run_backend(backend, program, feeds)
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        r, a = tolerance(np.asarray(w).dtype)
        assert_same(g, w, rtol if rtol is not None else r, atol if atol is not None else a,
                    f"output {k} ({graph.outputs[k].name})")
    return program


def one_node_graph(op: str, inputs: Sequence, attrs: dict | None = None, consts=(),
                   outputs: int = 1, dims: dict | None = None):
    """A graph of one node of `op`; returns (graph, feeds). `dims` declares an input's shape
    (with symbolic names) instead of its array's shape."""
    b = GraphBuilder(op.lower())
    vals, feeds = [], {}
    for i, x in enumerate(inputs):
        if x is None:
            vals.append(None)
            continue
        x = np.asarray(x)
        if i in consts:
            vals.append(b.constant(x, f"c{i}"))
            continue
        shape = (dims or {}).get(i, x.shape)
        v = b.input(f"x{i}", TensorType(DType.from_numpy(x.dtype), tuple(shape)))
        feeds[v.name] = x
        vals.append(v)
    outs = b.add(get_op(op), vals, dict(attrs or {}), outputs=outputs)
    b.output(*outs)
    return b.graph, feeds


def check_op(backend: str, op: str, inputs: Sequence, attrs: dict | None = None, *, consts=(),
             outputs: int = 1, dims: dict | None = None, rtol=None, atol=None):
    graph, feeds = one_node_graph(op, inputs, attrs, consts, outputs, dims)
    return check_graph(backend, graph, feeds, rtol, atol)


def rand(shape, dtype=np.float32, seed: int = 0, low=-3.0, high=3.0, nonzero: bool = False):
    """Random test data: normal-ish floats, integers in [low, high], bools."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        lo = max(int(low), np.iinfo(dtype).min)
        x = rng.integers(lo, int(high) + 1, size=shape).astype(dtype)
        if nonzero:
            x[x == 0] = 1
        return x
    x = rng.uniform(low, high, size=shape)
    if nonzero:
        x[np.abs(x) < 0.1] = 0.5
    return x.astype(dtype)
