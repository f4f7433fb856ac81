"""The text form round-trips: parse(print(g)) is structurally g, on hand-written and random graphs."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from kiln.errors import IRParseError
from kiln.ir import GraphBuilder, tensor
from kiln.ir.compare import graph_difference
from kiln.ir.dtypes import DType
from kiln.ir.parser import parse_graph, parse_type
from kiln.ir.printer import collect_weights, format_type, print_graph
from kiln.ir.types import OptionalType, SequenceType, TensorType
from kiln.ir.verifier import verify
from tests.strategies import graphs

f32 = DType.float32


def roundtrip(g):
    text = print_graph(g)
    back = parse_graph(text, collect_weights(g))
    assert graph_difference(g, back) is None, graph_difference(g, back)
    assert print_graph(back) == text
    return text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_random_graphs_roundtrip(g):
    verify(g)
    roundtrip(g)


@pytest.mark.parametrize("t", [
    TensorType(f32, ()), TensorType(f32, None), TensorType(DType.int64, ("batch", None, 3)),
    TensorType(DType.bfloat16, (0,)), TensorType(DType.string, (2,)),
    SequenceType(TensorType(f32, (None,))), OptionalType(SequenceType(TensorType(DType.bool, ()))),
    TensorType(f32, ("seq len", 4)),
])
def test_types_roundtrip(t):
    assert parse_type(format_type(t)) == t


def test_golden_text():
    b = GraphBuilder("mlp")
    x = b.input("x", tensor(f32, "batch", 4))
    c = b.constant(np.array([0.5, -1.0, np.nan, np.inf], np.float32), "bias")
    w = b.constant(np.zeros((4, 40), np.float32), "w")
    y = b.LeakyRelu(b.Add(x, c, name="fc/add"), alpha=0.25)
    b.output(y, w)
    assert print_graph(b.graph) == (
        "graph @mlp(%x: f32[batch,4]) {\n"
        "  const %bias: f32[4] = [0.5, -1.0, nan, inf]\n"
        "  const %w: f32[4,40] = #w\n"
        "  %fc_add: f32[batch,4] = Add(%x, %bias) loc(\"fc/add\")\n"
        "  %leakyrelu: f32[batch,4] = LeakyRelu(%fc_add) {alpha = 0.25}\n"
        "  return %leakyrelu, %w\n"
        "}\n")
    roundtrip(b.graph)


def test_odd_names_and_dtypes_roundtrip():
    b = GraphBuilder("weird name")
    x = b.input("input:0", tensor(DType.int64, "N", 3))
    s = b.constant(np.array(["a", "b\"c"], dtype=object), "strs")
    h = b.constant(np.array([1, 2, 3], np.int64), "/conv/Constant_output_0")
    b.output(b.Add(x, h, name="add node"), s)
    text = roundtrip(b.graph)
    assert '%"input:0"' in text and '["a", "b\\"c"]' in text


@pytest.mark.parametrize("text,where", [
    ("graph @g(%x: f32[2]) {\n  %y: f32[2] = Relu(%z)\n  return %y\n}\n", "line 2"),
    ("graph @g(%x: f32[2]) {\n  %y: f32[2] = NoSuchOp(%x)\n  return %y\n}\n", "line 2"),
    ("graph @g(%x: q32[2]) {\n  return %x\n}\n", "line 1"),
    ("graph @g(%x: f32[2]) {\n  %y: f32[2] = LeakyRelu(%x) {beta = 1.0}\n  return %y\n}\n", "line 2"),
    ("graph @g(%x: f32[2]) {\n  const %w: f32[3] = #missing\n  return %x\n}\n", "line 2"),
    ("graph @g(%x: f32[2]) {\n  const %w: f32[3] = [1.0, 2.0]\n  return %x\n}\n", "line"),
])
def test_parse_errors_name_the_place(text, where):
    with pytest.raises(IRParseError, match=where):
        parse_graph(text)
