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


def test_loop_carrying_a_sequence_with_a_fed_trip_count_names_input_m():
    graph = _loop_over_a_sequence(None)
    with pytest.raises(LoweringError, match="input 'M'") as e:
        flatten_sequences(graph)
    assert e.value.node.op.name == "Loop"


def test_loop_with_a_fed_trip_count_unrolls_once_the_count_is_fixed():
    graph = _loop_over_a_sequence(None)
    with pytest.raises(LoweringError) as e:
        compile_graph(graph)
    model = SpecializingModel(graph, e.value)
    assert model.fixed == {"n"}
    x0 = _feeds((2,))["x0"]
    for n in (3, 1, 3):
        feeds = {"x0": x0, "n": np.array(n, np.int64)}
        for g, w in zip(model(feeds), interpret(graph, feeds)):
            _same(g, w)
    assert len(model._variants) == 2
    model.close()


def test_loop_whose_condition_is_computed_at_run_time_is_a_clear_error():
    b = GraphBuilder("seq_loop_cond")
    x = b.input("x0", tensor(f32, 2))
    body = GraphBuilder("body", parent=b.graph)
    body.input("i", tensor(i64))
    body.input("c", tensor(DType.bool))
    acc = body.input("acc", SequenceType(TensorType(f32, (2,))))
    body.output(body.Less(body.ReduceSum(x, keepdims=0), body.constant(
        np.array(1.0, np.float32), "one")), body.SequenceInsert(acc, x))
    b.output(b.Loop(_i64(b, 3, "trips"), None, b.SequenceEmpty(dtype=f32), body=body.graph))
    with pytest.raises(LoweringError, match="body condition") as e:
        compile_graph(b.graph)
    assert e.value.node.op.name == "Loop"


def _branches(b, build_then, build_else):
    out = []
    for k, build in enumerate((build_then, build_else)):
        g = GraphBuilder(f"branch{k}", parent=b.graph)
        g.output(*build(g))
        out.append(g.graph)
    return out


def test_if_with_a_fed_condition_and_branches_of_the_same_structure():
    """Each branch builds a sequence of two tensors (one read from an outer sequence) and an
    optional tensor: the If becomes an If of the three tensors."""
    b = GraphBuilder("seq_if")
    x = b.input("x0", tensor(f32, 3))
    flag = b.input("flag", tensor(DType.bool))
    s = b.SequenceConstruct(b.Exp(x))
    zero = _i64(b, 0, "zero")
    then_g, else_g = _branches(
        b, lambda g: [g.SequenceConstruct(g.Neg(x), g.SequenceAt(s, zero)), g.Optional(x)],
        lambda g: [g.SequenceConstruct(g.Relu(x), g.Abs(x)), g.Optional(g.Sqrt(g.Abs(x)))])
    seq, opt = b.If(flag, then_branch=then_g, else_branch=else_g, outputs=2)
    b.output(seq, b.ConcatFromSequence(seq, axis=0), b.Neg(b.OptionalGetElement(opt)))
    x0 = _feeds((3,))["x0"]
    for f in (True, False):
        _check(compile_graph(b.graph), b.graph, {"x0": x0, "flag": np.array(f)})


def _if_of_different_structures(b, flag):
    x = b.input("x0", tensor(f32, 3))
    then_g, else_g = _branches(
        b, lambda g: [g.Optional(type=SequenceType(TensorType(f32, (3,))))],
        lambda g: [g.Optional(g.SequenceConstruct(x, g.Neg(x)))])
    opt = b.If(flag, then_branch=then_g, else_branch=else_g)
    b.output(opt, b.OptionalHasElement(opt))
    return b.graph


def test_if_of_different_structures_with_a_constant_condition_takes_one_branch():
    for f in (True, False):
        b = GraphBuilder("opt_if_const")
        graph = _if_of_different_structures(b, b.constant(np.array(f), "flag"))
        _check(compile_graph(graph), graph, _feeds((3,)))


def test_if_of_different_structures_with_a_fed_condition_names_cond():
    b = GraphBuilder("opt_if")
    graph = _if_of_different_structures(b, b.input("flag", tensor(DType.bool)))
    with pytest.raises(LoweringError, match="input 'cond' must be known") as e:
        compile_graph(graph)
    assert e.value.node is graph.nodes[-2] and e.value.node.op.name == "If"
    model = SpecializingModel(graph, e.value)       # the ONNX backend's policy: fix 'flag'
    assert model.fixed == {"flag"}
    x0 = _feeds((3,))["x0"]
    for f in (True, False):
        feeds = {"x0": x0, "flag": np.array(f)}
        for g, w in zip(model(feeds), interpret(graph, feeds)):
            _same(g, w)
    model.close()


def test_if_of_different_structures_on_a_computed_condition_is_a_clear_error():
    b = GraphBuilder("opt_if_data")
    x = b.input("x", tensor(f32, 3))
    graph = _if_of_different_structures(
        b, b.Less(b.ReduceSum(x, keepdims=0), b.constant(np.array(0, np.float32), "zero")))
    with pytest.raises(LoweringError, match="different structure") as e:
        compile_graph(graph)
    assert e.value.node.op.name == "If"


def test_loop_body_with_an_if_on_the_carried_optional():
    """ONNX's loop16_seq_none form: each iteration's If starts the sequence when the carried
    optional is empty, so its condition is known once the iteration is laid out."""
    b = GraphBuilder("loop_if_opt")
    x = b.input("x0", tensor(f32, 4))
    body = GraphBuilder("body", parent=b.graph)
    i = body.input("i", tensor(i64))
    c = body.input("c", tensor(DType.bool))
    o = body.input("o", OptionalType(SequenceType(TensorType(f32, (None,)))))
    then_g, else_g = _branches(
        body, lambda g: [g.SequenceConstruct(g.Neg(x))], lambda g: [g.OptionalGetElement(o)])
    seq = body.If(body.Not(body.OptionalHasElement(o)), then_branch=then_g, else_branch=else_g)
    end = body.Unsqueeze(body.Add(i, body.constant(np.array(1, np.int64), "one")),
                         body.constant(np.array([0], np.int64), "axes"))
    part = body.Slice(x, body.constant(np.array([0], np.int64), "start"), end)
    body.output(body.Identity(c), body.SequenceInsert(seq, part), body.ReduceSum(part,
                                                                                keepdims=0))
    empty = b.Optional(type=SequenceType(TensorType(f32, (None,))))
    res, sums = b.Loop(_i64(b, 3, "trips"), None, empty, body=body.graph, outputs=2)
    b.output(res, sums, b.SequenceLength(b.OptionalGetElement(res)))
    _check(compile_graph(b.graph), b.graph, _feeds((4,)))


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


def test_if_in_an_unrolled_loop_body_on_a_fed_condition_is_fixed_by_name():
    """The If that fails is a copy made by unrolling, in a copy of the graph: the specializing
    model still finds the graph input its condition comes from."""
    b = GraphBuilder("loop_if_flag")
    x = b.input("x0", tensor(f32, 3))
    flag = b.input("flag", tensor(DType.bool))
    body = GraphBuilder("body", parent=b.graph)
    body.input("i", tensor(i64))
    c = body.input("c", tensor(DType.bool))
    acc = body.input("acc", SequenceType(TensorType(f32, (3,))))
    then_g, else_g = _branches(body, lambda g: [g.SequenceConstruct(x)],
                               lambda g: [g.SequenceConstruct(x, g.Neg(x))])
    grown = body.SequenceInsert(acc, body.ConcatFromSequence(
        body.If(flag, then_branch=then_g, else_branch=else_g), axis=0))
    body.output(body.Identity(c), grown)
    b.output(b.Loop(b.input("n", tensor(i64)), None, b.SequenceEmpty(dtype=f32),
                    body=body.graph))
    with pytest.raises(LoweringError) as e:
        compile_graph(b.graph)
    model = SpecializingModel(b.graph, e.value)
    x0 = _feeds((3,))["x0"]
    for n, f in ((2, True), (2, False), (1, False)):
        feeds = {"x0": x0, "flag": np.array(f), "n": np.array(n, np.int64)}
        for g, w in zip(model(feeds), interpret(b.graph, feeds)):
            _same(g, w)
    assert model.fixed == {"n", "flag"}
    model.close()


def _while_loop(stop_after):
    """A Loop without a trip count carrying a sequence: its body stops it after iteration
    `stop_after` (None: never)."""
    b = GraphBuilder("seq_while")
    x = b.input("x0", tensor(f32, 2))
    body = GraphBuilder("body", parent=b.graph)
    i = body.input("i", tensor(i64))
    c = body.input("c", tensor(DType.bool))
    acc = body.input("acc", SequenceType(TensorType(f32, (2,))))
    again = body.Identity(c) if stop_after is None else \
        body.Less(i, body.constant(np.array(stop_after, np.int64), "last"))
    y = body.Mul(x, body.Cast(i, to=f32))
    body.output(again, body.SequenceInsert(acc, y), body.Neg(y))
    seq, scan = b.Loop(None, b.constant(np.array(True), "go"), b.SequenceEmpty(dtype=f32),
                       body=body.graph, outputs=2)
    b.output(seq, scan)
    return b.graph


def test_while_loop_stopped_by_its_iteration_number_is_unrolled():
    graph = _while_loop(2)
    _check(compile_graph(graph), graph, _feeds((2,)))


def test_while_loop_that_never_stops_is_a_clear_error():
    graph = _while_loop(None)
    with pytest.raises(LoweringError, match="more than 1024") as e:
        compile_graph(graph)
    assert e.value.node is graph.nodes[-1]


def test_sequence_in_a_scan_body_is_a_clear_error():
    b = GraphBuilder("seq_scan")
    x = b.input("x", tensor(f32, 5, 3))
    body = GraphBuilder("body", parent=b.graph)
    xt = body.input("xt", tensor(f32, 3))
    body.output(body.ConcatFromSequence(body.SequenceConstruct(xt, body.Neg(xt)), axis=0))
    b.output(b.Scan(x, body=body.graph, num_scan_inputs=1))
    with pytest.raises(LoweringError, match="inside the body of Scan") as e:
        compile_graph(b.graph)
    assert e.value.node is b.graph.nodes[-1]


def test_sequences_used_only_inside_bodies():
    """No sequence at the top level: a Loop whose body concatenates a sequence it builds is
    unrolled, and an If on a fed condition whose branches do gets flattened branches."""
    b = GraphBuilder("seq_inside")
    x = b.input("x0", tensor(f32, 2))
    flag = b.input("flag", tensor(DType.bool))
    body = GraphBuilder("body", parent=b.graph)
    body.input("i", tensor(i64))
    c = body.input("c", tensor(DType.bool))
    y = body.input("y", tensor(f32, 2))
    pair = body.ConcatFromSequence(body.SequenceConstruct(y, x), axis=0)
    body.output(body.Identity(c), body.Add(y, body.ReduceSum(pair, keepdims=0)))
    looped = b.Loop(_i64(b, 3, "trips"), None, x, body=body.graph)
    then_g, else_g = _branches(
        b, lambda g: [g.ConcatFromSequence(g.SequenceConstruct(x, looped), axis=0)],
        lambda g: [g.ConcatFromSequence(g.SplitToSequence(g.Concat(looped, x, axis=0),
                                                          _i64(g, 2, "two")), axis=0)])
    b.output(looped, b.If(flag, then_branch=then_g, else_branch=else_g))
    x0 = _feeds((2,))["x0"]
    for f in (True, False):
        _check(compile_graph(b.graph), b.graph, {"x0": x0, "flag": np.array(f)})
