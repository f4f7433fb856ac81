"""flatten_sequences: graphs with sequences and optionals of static structure, compiled natively
(compile_graph runs the pass) and compared with the Graph IR interpreter, including sequence
and optional graph outputs (regrouped into lists / None); dynamic structure gives LoweringError
naming the node."""

import numpy as np
import pytest

from kiln.errors import LoweringError, ShapeMismatchError
from kiln.ir import GraphBuilder, tensor
from kiln.ir.dtypes import DType
from kiln.ir.interpreter import interpret
from kiln.ir.types import OptionalType, SequenceType, TensorType
from kiln.lowering import lower_graph
from kiln.passes.flatten_sequences import flatten_sequences
from kiln.runtime import SpecializingModel, compile_graph

f32, i64 = DType.float32, DType.int64


def _same(got, want):
    if isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want)
        for g, w in zip(got, want):
            _same(g, w)
    elif want is None:
        assert got is None
    else:
        got, want = np.asarray(got), np.asarray(want)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-6)


def _check(model, graph, feeds):
    """Run the model compiled from `graph` on `feeds` (then close it); compare."""
    want = interpret(graph, feeds)
    with model:
        got = model(feeds)
        assert model.output_names == [v.name for v in graph.outputs]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        _same(g, w)


def _i64(b, v, name):
    return b.constant(np.array(v, np.int64), name)


def _feeds(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return {f"x{k}": rng.standard_normal(s).astype(np.float32) for k, s in enumerate(shapes)}


def test_construct_insert_erase_at_length_concat():
    b = GraphBuilder("seq_ops")
    xs = [b.input(f"x{k}", tensor(f32, 2, 3)) for k in range(4)]
    s = b.SequenceConstruct(xs[0], xs[1], xs[2])
    s = b.SequenceInsert(s, xs[3], _i64(b, 1, "one"))          # x0 x3 x1 x2
    s = b.SequenceErase(s, _i64(b, -1, "last"))                 # x0 x3 x1
    b.output(b.Exp(b.SequenceAt(s, _i64(b, -2, "pos"))), b.SequenceLength(s),
             b.ConcatFromSequence(s, axis=1), b.ConcatFromSequence(s, axis=0, new_axis=1),
             s, b.SequenceInsert(b.SequenceEmpty(dtype=f32), xs[2]))
    _check(compile_graph(b.graph), b.graph, _feeds(*[(2, 3)] * 4))


@pytest.mark.parametrize("split,attrs", [
    (None, {}), (None, {"keepdims": 0, "axis": 1}), (2, {}), ([1, 4], {}), (3, {"axis": -1}),
])
def test_split_to_sequence(split, attrs):
    b = GraphBuilder("split")
    x = b.input("x0", tensor(f32, 5, 4))
    s = b.SplitToSequence(x, None if split is None else _i64(b, split, "split"), **attrs)
    b.output(s, b.SequenceLength(s), b.Relu(b.SequenceAt(s, _i64(b, 0, "first"))))
    _check(compile_graph(b.graph), b.graph, _feeds((5, 4)))


def test_split_sizes_fix_a_symbolic_input_size():
    b = GraphBuilder("split_sym")
    x = b.input("x0", tensor(f32, "n"))
    b.output(b.SplitToSequence(x, _i64(b, [2, 1], "split")))
    _check(compile_graph(b.graph), b.graph, _feeds((3,)))
    with compile_graph(b.graph) as model, pytest.raises(ShapeMismatchError):
        model(np.zeros(4, np.float32))          # the sizes add up to 3


def test_optionals():
    b = GraphBuilder("opt")
    x = b.input("x0", tensor(f32, 3))
    full = b.Optional(x)
    empty = b.Optional(type=TensorType(f32, (3,)))
    b.output(b.OptionalHasElement(full), b.OptionalHasElement(empty),
             b.Neg(b.OptionalGetElement(full)), full, empty,
             b.OptionalGetElement(x), b.OptionalHasElement(x))
    _check(compile_graph(b.graph), b.graph, _feeds((3,)))


def test_optional_of_a_sequence():
    b = GraphBuilder("opt_seq")
    x = b.input("x0", tensor(f32, 2))
    opt = b.Optional(b.SequenceConstruct(x, b.Neg(x)))
    b.output(opt, b.SequenceLength(b.OptionalGetElement(opt)))
    _check(compile_graph(b.graph), b.graph, _feeds((2,)))


def test_sequence_map_inlines_its_body_per_element():
    b = GraphBuilder("seq_map")
    xs = [b.input(f"x{k}", tensor(f32, 3)) for k in range(3)]
    bias = b.input("x3", tensor(f32, 3))
    body = GraphBuilder("body", parent=b.graph)
    e = body.input("e", tensor(f32, 3))
    c = body.input("c", tensor(f32, 3))
    body.output(body.Add(body.Mul(e, body.constant(np.array(2.0, np.float32), "two")), c),
                body.ReduceSum(e, keepdims=0))
    doubled, sums = b.SequenceMap(b.SequenceConstruct(*xs), bias, body=body.graph, outputs=2)
    b.output(doubled, b.ConcatFromSequence(sums, axis=0, new_axis=1))
    _check(compile_graph(b.graph), b.graph, _feeds((3,), (3,), (3,), (3,)))


def test_position_fed_at_run_time_is_a_clear_error_naming_the_node():
    b = GraphBuilder("dyn_pos")
    x = b.input("x0", tensor(f32, 2))
    p = b.input("p", tensor(i64))
    at = b.SequenceAt(b.SequenceConstruct(x, x), p)
    b.output(at)
    with pytest.raises(LoweringError) as e:
        compile_graph(b.graph)
    assert e.value.node is at.producer            # the node of the graph compiled
    assert "input 'position'" in str(e.value)


def test_sequence_graph_input_is_a_clear_error():
    b = GraphBuilder("seq_in")
    s = b.input("s", SequenceType(TensorType(f32, (2,))))
    b.output(b.SequenceLength(s))
    with pytest.raises(LoweringError, match="graph input 's'"):
        flatten_sequences(b.graph)


def _loop_over_a_sequence(trips):
    """y += s[i] for i < trips, and a sequence of the partial sums carried and scanned."""
    b = GraphBuilder("seq_loop")
    x = b.input("x0", tensor(f32, 2))
    s = b.SequenceConstruct(x, b.Neg(x), b.Exp(x))
    body = GraphBuilder("body", parent=b.graph)
    i = body.input("i", tensor(i64))
    c = body.input("c", tensor(DType.bool))
    y = body.input("y", tensor(f32, 2))
    acc = body.input("acc", SequenceType(TensorType(f32, (2,))))
    y_next = body.Add(y, body.SequenceAt(s, i))
    body.output(body.Identity(c), y_next, body.SequenceInsert(acc, y_next), body.Relu(y_next))
    count = b.input("n", tensor(i64)) if trips is None else _i64(b, trips, "trips")
    yf, sums, scan = b.Loop(count, None, x, b.SequenceEmpty(dtype=f32), body=body.graph,
                            outputs=3)
    b.output(yf, sums, scan)
    return b.graph


def test_loop_carrying_a_sequence_is_unrolled():
    graph = _loop_over_a_sequence(3)
    _check(compile_graph(graph), graph, _feeds((2,)))


def test_loop_carrying_a_sequence_with_a_fed_trip_count_is_a_clear_error():
    graph = _loop_over_a_sequence(None)
    with pytest.raises(LoweringError, match="trip count") as e:
        flatten_sequences(graph)
    assert e.value.node.op.name == "Loop"


def test_sequence_read_in_an_if_branch_is_a_clear_error():
    b = GraphBuilder("seq_if")
    x = b.input("x0", tensor(f32, 2))
    s = b.SequenceConstruct(x)
    branches = []
    for k in range(2):
        g = GraphBuilder(f"branch{k}", parent=b.graph)
        g.output(g.SequenceAt(s, g.constant(np.array(0), "zero")))
        branches.append(g.graph)
    flag = b.input("flag", tensor(DType.bool))
    b.output(b.If(flag, then_branch=branches[0], else_branch=branches[1]))
    with pytest.raises(LoweringError) as e:
        flatten_sequences(b.graph)
    assert e.value.node.op.name == "If"


def test_lowering_a_sequence_op_without_the_pass_names_the_node():
    b = GraphBuilder("seq_raw")
    x = b.input("x0", tensor(f32, 2))
    b.output(b.SequenceLength(b.SequenceConstruct(x)))
    with pytest.raises(LoweringError):
        lower_graph(b.graph)


def test_sequence_and_optional_inputs_compile_per_fed_structure():
    b = GraphBuilder("structured_inputs")
    s = b.input("s", SequenceType(TensorType(f32, (None,))))
    o = b.input("o", OptionalType(TensorType(f32, (2,))))
    x = b.input("x0", tensor(f32, 2))
    b.output(b.SequenceInsert(s, b.Neg(x), _i64(b, 0, "front")), b.SequenceLength(s),
             b.OptionalHasElement(o), o)
    with pytest.raises(LoweringError, match="graph input 's'") as e:
        compile_graph(b.graph)
    model = SpecializingModel(b.graph, e.value)
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal(2).astype(np.float32)
    for elems, opt in (([3, 1], x0), ([], None), ([3, 1], None), ([2, 2, 5], x0 + 1)):
        feeds = {"s": [rng.standard_normal(n).astype(np.float32) for n in elems],
                 "o": opt, "x0": x0}
        for g, w in zip(model(feeds), interpret(b.graph, feeds)):
            _same(g, w)
    assert len(model._variants) == 4
    model.close()
