"""If, Loop and Scan: kiln's interpreter against NumPy and against onnx.reference on the same
model written by hand with onnx.helper."""

import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from kiln.errors import AttributeValueError, ExecutionError, TypeInferenceError
from kiln.ir import DType, GraphBuilder, tensor
from kiln.ir.interpreter import interpret
from kiln.ir.ops.control import join_types
from kiln.ir.types import OptionalType, SequenceType, TensorType
from kiln.ir.verifier import verify
from tests.ir.ops.harness import OPSET, assert_same

rng = np.random.default_rng(0)
f32, i64, boolean = DType.float32, DType.int64, DType.bool
F, I, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


def run_reference(nodes, inputs, outputs, feeds):
    """Run a hand-written ONNX graph with onnx.reference."""
    g = helper.make_graph(nodes, "t", inputs, outputs)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ReferenceEvaluator(model).run(None, feeds)


def vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def run(builder, feeds):
    verify(builder.graph)
    return interpret(builder.graph, feeds)


# --- join_types ------------------------------------------------------------------------------

def test_join_types_keeps_agreement_only():
    assert join_types(tensor(f32, 3, "n"), tensor(f32, 3, "n")) == tensor(f32, 3, "n")
    assert join_types(tensor(f32, 3, 4), tensor(f32, 3, 5)) == tensor(f32, 3, None)
    assert join_types(tensor(f32, 3), tensor(f32, 3, 1)) == TensorType(f32, None)
    assert join_types(tensor(f32, 3), tensor(i64, 3)) is None
    assert join_types(SequenceType(tensor(f32, 2)), SequenceType(tensor(f32, 3))) == \
        SequenceType(tensor(f32, None))
    assert join_types(OptionalType(tensor(f32, 2)), tensor(f32, 3)) == \
        OptionalType(tensor(f32, None))
    assert join_types(tensor(f32), OptionalType(tensor(f32))) == OptionalType(tensor(f32))
    assert join_types(OptionalType(tensor(f32)), SequenceType(tensor(f32))) is None


# --- If --------------------------------------------------------------------------------------

def _if_graph(then_shape=(5,), else_shape=(5,)):
    """y = If(c) then x + x[:n] else -x; both branches read the outer x."""
    b = GraphBuilder("main")
    c = b.input("c", tensor(boolean))
    x = b.input("x", tensor(f32, 5))
    t = GraphBuilder("then", parent=b.graph)
    t.output(t.Add(x, x) if then_shape == (5,) else t.constant(np.ones(then_shape, np.float32)))
    e = GraphBuilder("else", parent=b.graph)
    e.output(e.Neg(x) if else_shape == (5,) else e.constant(np.ones(else_shape, np.float32)))
    y = b.If(c, then_branch=t.graph, else_branch=e.graph)
    b.output(y)
    return b, y


@pytest.mark.parametrize("cond", [True, False])
def test_if_matches_reference(cond):
    b, _ = _if_graph()
    x = rng.standard_normal(5).astype(np.float32)
    (got,) = run(b, {"c": np.array(cond), "x": x})
    then = helper.make_graph([helper.make_node("Add", ["x", "x"], ["t"])], "then", [],
                             [vi("t", F, [5])])
    other = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [],
                              [vi("e", F, [5])])
    node = helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)
    (want,) = run_reference([node], [vi("c", B, []), vi("x", F, [5])], [vi("y", F, [5])],
                            {"c": np.array(cond), "x": x})
    assert_same(got, want)
    np.testing.assert_array_equal(got, x + x if cond else -x)


def test_if_joins_branch_types_and_runs_either():
    b, y = _if_graph(then_shape=(2, 3), else_shape=(2, 7))
    assert y.type == tensor(f32, 2, None)
    assert run(b, {"c": np.array(True), "x": np.zeros(5, np.float32)})[0].shape == (2, 3)
    assert run(b, {"c": np.array(False), "x": np.zeros(5, np.float32)})[0].shape == (2, 7)


def test_if_with_constant_cond_takes_that_branch_type():
    b = GraphBuilder("main")
    c = b.constant(np.array(False))
    t = GraphBuilder("then", parent=b.graph)
    t.output(t.constant(np.ones((3,), np.float32)))
    e = GraphBuilder("else", parent=b.graph)
    e.output(e.constant(np.ones((1, 1), np.float32)))
    y = b.If(c, then_branch=t.graph, else_branch=e.graph)
    assert y.type == tensor(f32, 1, 1)


def test_if_several_outputs_and_sequences():
    b = GraphBuilder("main")
    c = b.input("c", tensor(boolean))
    x = b.input("x", tensor(f32, 3))
    t = GraphBuilder("then", parent=b.graph)
    t.output(t.SequenceConstruct(x, x), x)
    e = GraphBuilder("else", parent=b.graph)
    e.output(e.SequenceConstruct(x), e.Neg(x))
    s, y = b.If(c, then_branch=t.graph, else_branch=e.graph, outputs=2)
    assert s.type == SequenceType(tensor(f32, 3)) and y.type == tensor(f32, 3)
    b.output(s, y)
    xv = np.arange(3, dtype=np.float32)
    got_s, got_y = run(b, {"c": np.array(False), "x": xv})
    assert len(got_s) == 1 and np.array_equal(got_s[0], xv) and np.array_equal(got_y, -xv)
    got_s, _ = run(b, {"c": np.array(True), "x": xv})
    assert len(got_s) == 2


def test_if_bad_inputs_raise():
    b = GraphBuilder("main")
    x = b.input("x", tensor(f32, 3))
    t = GraphBuilder("then", parent=b.graph)
    t.output(x)
    e = GraphBuilder("else", parent=b.graph)
    e.output(e.Cast(x, to=i64))
    two = GraphBuilder("two", parent=b.graph)
    two.output(x, x)
    c = b.input("c", tensor(boolean))
    with pytest.raises(TypeInferenceError, match="bool"):
        b.If(x, then_branch=t.graph, else_branch=t.graph)
    with pytest.raises(TypeInferenceError, match="one element"):
        b.If(b.input("c2", tensor(boolean, 2)), then_branch=t.graph, else_branch=t.graph)
    with pytest.raises(TypeInferenceError, match="no common type"):
        b.If(c, then_branch=t.graph, else_branch=e.graph)
    with pytest.raises(TypeInferenceError, match="returns"):
        b.If(c, then_branch=t.graph, else_branch=two.graph)
    with pytest.raises(AttributeValueError, match="else_branch"):
        b.If(c, then_branch=t.graph)


# --- Loop ------------------------------------------------------------------------------------

def _loop_sum_graph(m_const=None, with_cond=True):
    """y_{i+1} = y_i + x[i]; scans y after each step. The body reads the outer x."""
    b = GraphBuilder("main")
    x = b.input("x", tensor(f32, 7))
    y0 = b.input("y0", tensor(f32, 1))
    m = b.constant(np.array(m_const, np.int64)) if m_const is not None else \
        b.input("m", tensor(i64))
    cond = b.input("cond", tensor(boolean)) if with_cond else None
    body = GraphBuilder("body", parent=b.graph)
    i = body.input("i", tensor(i64))
    c = body.input("c", tensor(boolean))
    y = body.input("y", tensor(f32, 1))
    y_next = body.Add(y, body.Gather(x, body.Unsqueeze(i, body.constant(np.array([0]))), axis=0))
    body.output(c, y_next, y_next)
    yf, ys = b.Loop(m, cond, y0, body=body.graph, outputs=2)
    b.output(yf, ys)
    return b, yf, ys


def test_loop_matches_reference():
    b, yf, ys = _loop_sum_graph()
    assert yf.type == tensor(f32, 1) and ys.type == tensor(f32, None, 1)
    x = rng.standard_normal(7).astype(np.float32)
    feeds = {"x": x, "y0": np.array([2.0], np.float32), "m": np.array(5), "cond": np.array(True)}
    got = run(b, feeds)
    body = helper.make_graph(
        [helper.make_node("Constant", [], ["zero"], value=helper.make_tensor("z", I, [1], [0])),
         helper.make_node("Unsqueeze", ["i", "zero"], ["iu"]),
         helper.make_node("Gather", ["x", "iu"], ["xi"], axis=0),
         helper.make_node("Add", ["y", "xi"], ["y_next"]),
         helper.make_node("Identity", ["c"], ["c_out"]),
         helper.make_node("Identity", ["y_next"], ["scan"])],
        "body", [vi("i", I, []), vi("c", B, []), vi("y", F, [1])],
        [vi("c_out", B, []), vi("y_next", F, [1]), vi("scan", F, [1])])
    node = helper.make_node("Loop", ["m", "cond", "y0"], ["yf", "ys"], body=body)
    want = run_reference([node], [vi("x", F, [7]), vi("y0", F, [1]), vi("m", I, []),
                                  vi("cond", B, [])],
                         [vi("yf", F, [1]), vi("ys", F, [None, 1])], feeds)
    for g, w in zip(got, want):
        assert_same(g, w, rtol=1e-6)
    np.testing.assert_allclose(got[1][:, 0], 2 + np.cumsum(x[:5]), rtol=1e-6)


def test_loop_zero_trips_returns_initial_values_and_empty_scans():
    b, _, _ = _loop_sum_graph()
    yf, ys = run(b, {"x": np.ones(7, np.float32), "y0": np.array([3.0], np.float32),
                     "m": np.array(0), "cond": np.array(True)})
    assert yf.tolist() == [3.0] and ys.shape == (0, 1) and ys.dtype == np.float32
    yf, ys = run(b, {"x": np.ones(7, np.float32), "y0": np.array([3.0], np.float32),
                     "m": np.array(4), "cond": np.array(False)})
    assert yf.tolist() == [3.0] and ys.shape == (0, 1)


def test_loop_without_cond_has_a_static_trip_count():
    b, yf, ys = _loop_sum_graph(m_const=3, with_cond=False)
    assert ys.type == tensor(f32, 3, 1)
    yf_v, ys_v = run(b, {"x": np.arange(7, dtype=np.float32), "y0": np.zeros(1, np.float32)})
    assert ys_v[:, 0].tolist() == [0.0, 1.0, 3.0] and yf_v.tolist() == [3.0]


def test_loop_while_cond_stops_on_the_body_condition():
    """while y < limit: y = y * 2 (no trip count)."""
    b = GraphBuilder("main")
    y0 = b.input("y0", tensor(f32))
    limit = b.input("limit", tensor(f32))
    go = b.Less(y0, limit)
    body = GraphBuilder("body", parent=b.graph)
    body.input("i", tensor(i64))
    body.input("c", tensor(boolean))
    y = body.input("y", tensor(f32))
    y2 = body.Add(y, y)
    body.output(body.Less(y2, limit), y2, body.Cast(y2, to=i64))
    yf, trace = b.Loop(None, go, y0, body=body.graph, outputs=2)
    b.output(yf, trace)
    yv, tv = run(b, {"y0": np.array(1.5, np.float32), "limit": np.array(20, np.float32)})
    assert float(yv) == 24.0 and tv.tolist() == [3, 6, 12, 24]
    yv, tv = run(b, {"y0": np.array(50, np.float32), "limit": np.array(20, np.float32)})
    assert float(yv) == 50.0 and tv.shape == (0,) and tv.dtype == np.int64


def test_loop_iteration_number_and_sequence_state():
    """Carries a sequence: appends x[:i+1] on each trip (as ONNX's loop13_seq case)."""
    b = GraphBuilder("main")
    x = b.input("x", tensor(f32, 5))
    m = b.input("m", tensor(i64))
    empty = b.SequenceEmpty()
    body = GraphBuilder("body", parent=b.graph)
    i = body.input("i", tensor(i64))
    c = body.input("c", tensor(boolean))
    seq = body.input("seq", SequenceType(TensorType(f32, None)))
    end = body.Unsqueeze(body.Add(i, body.constant(np.array(1))), body.constant(np.array([0])))
    part = body.Slice(x, body.constant(np.array([0])), end)
    body.output(c, body.SequenceInsert(seq, part))
    out = b.Loop(m, None, empty, body=body.graph)
    assert isinstance(out.type, SequenceType)
    b.output(out)
    xv = np.arange(1, 6, dtype=np.float32)
    (got,) = run(b, {"x": xv, "m": np.array(4)})
    assert [p.tolist() for p in got] == [xv[:k].tolist() for k in range(1, 5)]


def test_loop_nested_reads_both_enclosing_graphs():
    """An If inside a Loop body reads the Loop body's value and the main graph's input."""
    b = GraphBuilder("main")
    x = b.input("x", tensor(f32, 3))
    trips, zeros = b.constant(np.array(5)), b.constant(np.zeros(3, np.float32))
    body = GraphBuilder("body", parent=b.graph)
    i = body.input("i", tensor(i64))
    c = body.input("c", tensor(boolean))
    acc = body.input("acc", tensor(f32, 3))
    even = body.Equal(body.Mod(i, body.constant(np.array(2))), body.constant(np.array(0)))
    t = GraphBuilder("then", parent=body.graph)
    t.output(t.Add(acc, x))
    e = GraphBuilder("else", parent=body.graph)
    e.output(e.Sub(acc, x))
    body.output(c, body.If(even, then_branch=t.graph, else_branch=e.graph))
    out = b.Loop(trips, None, zeros, body=body.graph)
    b.output(out)
    xv = rng.standard_normal(3).astype(np.float32)
    (got,) = run(b, {"x": xv})
    np.testing.assert_allclose(got, xv, rtol=1e-6)      # + - + - +


def test_loop_bad_inputs_raise():
    b = GraphBuilder("main")
    y0 = b.input("y0", tensor(f32))
    body = GraphBuilder("body", parent=b.graph)
    body.input("i", tensor(i64))
    c = body.input("c", tensor(boolean))
    y = body.input("y", tensor(f32))
    body.output(c, y)
    with pytest.raises(TypeInferenceError, match="i64"):
        b.Loop(b.input("m", tensor(DType.int32)), None, y0, body=body.graph)
    with pytest.raises(TypeInferenceError, match="inputs"):
        b.Loop(b.constant(np.array(2)), None, body=body.graph)       # no carried value
    bad = GraphBuilder("bad", parent=b.graph)
    bad.input("i", tensor(i64))
    bad.input("c", tensor(boolean))
    yy = bad.input("y", tensor(f32))
    bad.output(yy, yy)
    with pytest.raises(TypeInferenceError, match="bool"):
        b.Loop(b.constant(np.array(2)), None, y0, body=bad.graph)
    forever = GraphBuilder("forever")
    y1 = forever.input("y1", tensor(f32))
    body.graph.parent = forever.graph
    forever.output(forever.Loop(None, None, y1, body=body.graph))
    with pytest.raises(ExecutionError, match="never ends"):
        interpret(forever.graph, {"y1": np.array(1, np.float32)})


# --- Scan ------------------------------------------------------------------------------------

def _scan_sum_graph(n="n", **attrs):
    """state += row; scan out the running state (ONNX's scan_sum case)."""
    b = GraphBuilder("main")
    s0 = b.input("s0", tensor(f32, 2))
    xs = b.input("xs", tensor(f32, n, 2))
    body = GraphBuilder("body", parent=b.graph)
    s = body.input("s", tensor(f32, 2))
    row = body.input("row", tensor(f32, 2))
    s_next = body.Add(s, row)
    body.output(s_next, s_next)
    fs, outs = b.Scan(s0, xs, body=body.graph, num_scan_inputs=1, outputs=2, **attrs)
    b.output(fs, outs)
    return b, fs, outs


def test_scan_matches_reference():
    b, fs, outs = _scan_sum_graph()
    assert fs.type == tensor(f32, 2) and outs.type == tensor(f32, "n", 2)
    feeds = {"s0": np.zeros(2, np.float32), "xs": rng.standard_normal((7, 2)).astype(np.float32)}
    got = run(b, feeds)
    body = helper.make_graph(
        [helper.make_node("Add", ["s", "row"], ["s_next"]),
         helper.make_node("Identity", ["s_next"], ["scan"])],
        "body", [vi("s", F, [2]), vi("row", F, [2])], [vi("s_next", F, [2]), vi("scan", F, [2])])
    node = helper.make_node("Scan", ["s0", "xs"], ["fs", "outs"], body=body, num_scan_inputs=1)
    want = run_reference([node], [vi("s0", F, [2]), vi("xs", F, [7, 2])],
                         [vi("fs", F, [2]), vi("outs", F, [7, 2])], feeds)
    for g, w in zip(got, want):
        assert_same(g, w, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("in_axis,in_dir,out_axis,out_dir", [
    (0, 1, 0, 0), (1, 0, 0, 0), (-1, 1, -1, 1), (0, 0, 1, 1)])
def test_scan_axes_and_directions(in_axis, in_dir, out_axis, out_dir):
    b = GraphBuilder("main")
    s0 = b.input("s0", tensor(f32, 3))
    xs = b.input("xs", tensor(f32, 5, 3) if in_axis == 0 else tensor(f32, 3, 5))
    body = GraphBuilder("body", parent=b.graph)
    s = body.input("s", tensor(f32, 3))
    row = body.input("row", tensor(f32, 3))
    s_next = body.Add(s, row)
    body.output(s_next, body.Mul(s_next, body.constant(np.float32(2))))
    fs, outs = b.Scan(s0, xs, body=body.graph, num_scan_inputs=1, outputs=2,
                      scan_input_axes=(in_axis,), scan_input_directions=(in_dir,),
                      scan_output_axes=(out_axis,), scan_output_directions=(out_dir,))
    b.output(fs, outs)
    x = rng.standard_normal((5, 3)).astype(np.float32)
    got_fs, got_outs = run(b, {"s0": np.ones(3, np.float32), "xs": x if in_axis == 0 else x.T})
    rows = x[::-1] if in_dir else x
    running = 1 + np.cumsum(rows, axis=0)
    per_step = 2 * running
    if out_dir:
        per_step = per_step[::-1]
    want = per_step if out_axis == 0 else per_step.T
    assert outs.type.shape == want.shape
    np.testing.assert_allclose(got_fs, running[-1], rtol=1e-5)
    np.testing.assert_allclose(got_outs, want, rtol=1e-5)


def test_scan_two_inputs_no_state_and_empty():
    b = GraphBuilder("main")
    a = b.input("a", tensor(f32, "n", 2))
    c = b.input("c", tensor(f32, 2, "m"))
    body = GraphBuilder("body", parent=b.graph)
    ra = body.input("ra", tensor(f32, 2))
    rc = body.input("rc", tensor(f32, 2))
    body.output(body.Mul(ra, rc))
    out = b.Scan(a, c, body=body.graph, num_scan_inputs=2, scan_input_axes=(0, 1))
    b.output(out)
    assert out.type == tensor(f32, "n", 2)
    av = rng.standard_normal((3, 2)).astype(np.float32)
    cv = rng.standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_allclose(run(b, {"a": av, "c": cv})[0], av * cv.T, rtol=1e-6)
    (empty,) = run(b, {"a": np.zeros((0, 2), np.float32), "c": np.zeros((2, 0), np.float32)})
    assert empty.shape == (0, 2) and empty.dtype == np.float32
    with pytest.raises(ExecutionError, match="different lengths"):
        run(b, {"a": np.zeros((3, 2), np.float32), "c": np.zeros((2, 4), np.float32)})


def test_scan_bad_attributes_raise():
    with pytest.raises(TypeInferenceError, match="different lengths"):
        b = GraphBuilder("main")
        a = b.input("a", tensor(f32, 3, 2))
        c = b.input("c", tensor(f32, 4, 2))
        body = GraphBuilder("body", parent=b.graph)
        body.output(body.Add(body.input("x", tensor(f32, 2)), body.input("y", tensor(f32, 2))))
        b.Scan(a, c, body=body.graph, num_scan_inputs=2)
    with pytest.raises(TypeInferenceError, match="num_scan_inputs"):
        b = GraphBuilder("main")
        b.Scan(b.input("z", tensor(f32, 2)), body=GraphBuilder("b").graph, num_scan_inputs=2)
    with pytest.raises(TypeInferenceError, match="reverse"):
        _scan_sum_graph(scan_input_directions=(2,))
    with pytest.raises(TypeInferenceError, match="entries"):
        _scan_sum_graph(scan_input_axes=(0, 0))
    with pytest.raises(TypeInferenceError, match="out of range"):
        _scan_sum_graph(scan_input_axes=(2,))
    with pytest.raises(AttributeValueError, match="num_scan_inputs"):
        b = GraphBuilder("main")
        b.Scan(b.input("a", tensor(f32, 3)), body=GraphBuilder("b").graph)
