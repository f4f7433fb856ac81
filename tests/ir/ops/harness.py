"""Checking one op of kiln's table against ONNX's reference implementation.

    check_op("Add", [a, b])                      # kiln interpreter vs onnx.reference
    check_op("Softmax", [x], {"axis": -1}, rtol=1e-5)

Attributes are given in plain Python (ints, floats, lists, strings, DType, np.ndarray); the
harness converts them for each side. Inputs may contain None for an absent optional input.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from kiln.ir import GraphBuilder
from kiln.ir.dtypes import DType
from kiln.ir.interpreter import interpret
from kiln.ir.ops import get_op
from kiln.ir.types import TensorType

OPSET = onnx.defs.onnx_opset_version()


def run_kiln(op_name: str, inputs: Sequence[Any], attrs: dict | None = None,
             num_outputs: int = 1, const_inputs: Sequence[int] = ()) -> list:
    """Build a one-node graph and run it with the interpreter.

    Inputs listed in `const_inputs` become graph constants (so inference sees their values, as it
    does for shape-like operands: Reshape's shape, Slice's starts...)."""
    b = GraphBuilder(op_name)
    vals = []
    feeds = {}
    for i, x in enumerate(inputs):
        if x is None:
            vals.append(None)
        elif i in const_inputs:
            vals.append(b.constant(np.asarray(x), f"c{i}"))
        else:
            x = np.asarray(x)
            v = b.input(f"x{i}", TensorType(DType.from_numpy(x.dtype), x.shape))
            feeds[v.name] = x
            vals.append(v)
    outs = b.add(get_op(op_name), vals, dict(attrs or {}), outputs=num_outputs)
    b.output(*outs)
    return interpret(b.graph, feeds)


def _onnx_attr(v):
    if isinstance(v, DType):
        return v.onnx
    if isinstance(v, np.ndarray):
        return numpy_helper.from_array(v)
    return v


def run_onnx(op_name: str, inputs: Sequence[Any], attrs: dict | None = None,
             num_outputs: int = 1, domain: str = "") -> list:
    names = [f"x{i}" if x is not None else "" for i, x in enumerate(inputs)]
    outs = [f"y{i}" for i in range(num_outputs)]
    node = helper.make_node(op_name, names, outs, domain=domain or None,
                            **{k: _onnx_attr(v) for k, v in (attrs or {}).items()})
    feeds = {n: np.asarray(x) for n, x in zip(names, inputs) if x is not None}
    graph_inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(x.dtype)
                                                  if x.dtype != object else onnx.TensorProto.STRING,
                                                  x.shape) for n, x in feeds.items()]
    graph_outputs = [helper.make_value_info(o, onnx.TypeProto()) for o in outs]
    g = helper.make_graph([node], "t", graph_inputs, graph_outputs)
    opsets = [helper.make_opsetid("", OPSET)]
    if domain:
        opsets.append(helper.make_opsetid(domain, 1 if domain != "ai.onnx.ml" else 5))
    model = helper.make_model(g, opset_imports=opsets)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(ReferenceEvaluator(model).run(None, feeds))


def check_op(op_name: str, inputs: Sequence[Any], attrs: dict | None = None, *,
             num_outputs: int = 1, rtol: float = 1e-6, atol: float = 1e-6,
             const_inputs: Sequence[int] = (), domain: str = "") -> list:
    """kiln's interpreter and onnx.reference agree on values, dtypes and shapes."""
    got = run_kiln(op_name, inputs, attrs, num_outputs, const_inputs)
    want = run_onnx(op_name, inputs, attrs, num_outputs, domain or get_op(op_name).domain)
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert_same(g, w, rtol=rtol, atol=atol, what=f"{op_name} output {i}")
    return got


def assert_same(got, want, *, rtol=1e-6, atol=1e-6, what="value"):
    if isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{what}: sequence length"
        for g, w in zip(got, want):
            assert_same(g, w, rtol=rtol, atol=atol, what=what)
        return
    if want is None:
        assert got is None, f"{what}: expected an empty optional"
        return
    want = np.asarray(want)
    got = np.asarray(got)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    if want.dtype == object:
        assert got.tolist() == want.tolist(), f"{what}: {got} != {want}"
    elif want.dtype.kind == "c":
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)
    elif want.dtype.kind == "f" or str(want.dtype) in ("bfloat16",) or "float8" in str(want.dtype):
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol,
                                   atol=atol, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


def infer(op_name: str, *inputs, outputs: int = 1, **attrs):
    """The output type(s) of one node: inputs are TensorTypes (graph inputs), None (absent) or
    arrays (constants, so inference sees their values)."""
    b = GraphBuilder()
    vals = [b.input(f"x{i}", x) if isinstance(x, TensorType) else
            None if x is None else b.constant(np.asarray(x), f"c{i}") for i, x in enumerate(inputs)]
    out = getattr(b, op_name)(*vals, outputs=outputs, **attrs)
    return out.type if not isinstance(out, tuple) else tuple(v.type for v in out)


def strings(*shape) -> np.ndarray:
    """A string tensor of `shape` ("s0", "s1", ...)."""
    return np.array([f"s{i}" for i in range(int(np.prod(shape)))], dtype=object).reshape(shape)
