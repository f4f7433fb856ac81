"""Running a small graph three ways: the Graph IR interpreter (ground truth), the Loop IR
interpreter on the lowered program, and native code compiled from that program.

    check(graph, {"x": x}, backend)     # backend: the `backend` fixture, "loops" or "native"

The native half is skipped (with the reason) while kiln.codegen has no `compile_program`.
"""

from __future__ import annotations

import numpy as np
import pytest

from kiln.ir.builder import GraphBuilder
from kiln.ir.dtypes import DType
from kiln.ir.interpreter import interpret
from kiln.ir.types import TensorType
from kiln.loops.interpreter import run_program
from kiln.loops.verifier import verify_program
from kiln.lowering import lower_graph

try:
    from kiln.codegen import compile_program
except ImportError:
    compile_program = None

f16, f32, f64 = DType.float16, DType.float32, DType.float64
i32, i64 = DType.int32, DType.int64


@pytest.fixture(params=["loops", "native"])
def backend(request):
    if request.param == "native" and compile_program is None:
        pytest.skip("kiln.codegen.compile_program does not exist yet")
    return request.param


def run_lowered(graph, feeds: dict, backend: str) -> list:
    program = lower_graph(graph)
    verify_program(program)
    if backend == "loops":
        return run_program(program, feeds)
    return compile_program(program).run(feeds)


def check(graph, feeds: dict, backend: str, rtol: float = 1e-5, atol: float = 1e-6) -> list:
    """Lowered results equal the interpreter's: exactly for integers and bools, within
    tolerance for floats (reductions sum in another order). Returns the lowered results."""
    want = interpret(graph, feeds)
    got = run_lowered(graph, feeds, backend)
    assert len(got) == len(want)
    for g, w, v in zip(got, want, graph.outputs):
        assert g.dtype == w.dtype, (v.name, g.dtype, w.dtype)
        assert g.shape == w.shape, (v.name, g.shape, w.shape)
        if w.dtype.kind in "fV" or w.dtype == DType.bfloat16.np:
            np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=rtol,
                                       atol=atol, err_msg=v.name)
        else:
            np.testing.assert_array_equal(g, w, err_msg=v.name)
    return got


def one_node(op: str, inputs: list, attrs: dict | None = None, *, consts: dict | None = None,
             dims: dict | None = None, outputs: int = 1):
    """A graph of one `op` node. `inputs` are arrays (graph inputs x0, x1...) or None (absent);
    `consts` maps an operand position to a constant operand (axes...); `dims` maps an input
    position to its declared shape with names for symbolic dims. Returns (graph, feeds)."""
    b = GraphBuilder(op.lower())
    consts, dims = consts or {}, dims or {}
    values, feeds = [], {}
    for k in range(max([len(inputs), *[p + 1 for p in consts]])):
        if k in consts:
            values.append(b.constant(np.asarray(consts[k]), f"c{k}"))
            continue
        x = inputs[k] if k < len(inputs) else None
        if x is None:
            values.append(None)
            continue
        shape = dims.get(k, x.shape)
        v = b.input(f"x{k}", TensorType(DType.from_numpy(x.dtype), tuple(shape)))
        feeds[v.name] = x
        values.append(v)
    out = getattr(b, op)(*values, outputs=outputs, **(attrs or {}))
    b.output(*(out if isinstance(out, tuple) else (out,)))
    return b.graph, feeds


def rand(rng, shape, dtype=np.float32, lo=-2.0, hi=2.0):
    if np.dtype(dtype).kind in "iu":
        return rng.integers(int(lo) * 3, int(hi) * 3 + 1, size=shape).astype(dtype)
    if np.dtype(dtype) == np.bool_:
        return rng.random(shape) < 0.5
    return rng.uniform(lo, hi, size=shape).astype(dtype)
