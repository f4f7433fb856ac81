"""Sequence and optional ops: small pipelines run by kiln's interpreter and by onnx.reference."""

import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from kiln.errors import AttributeValueError, ExecutionError, TypeInferenceError
from kiln.ir import DType, GraphBuilder, tensor
from kiln.ir.interpreter import interpret
from kiln.ir.ops import get_op
from kiln.ir.types import OptionalType, SequenceType, TensorType
from kiln.ir.verifier import verify
from tests.ir.ops.harness import OPSET, assert_same

rng = np.random.default_rng(0)
f32, i64, i32 = DType.float32, DType.int64, DType.int32


def randn(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def pipeline(steps, feeds, outputs, consts=(), compare=True):
    """Run the same node list with kiln and onnx.reference; returns (kiln, onnx) outputs.

    steps: (op, input names ("" = absent), output names, attrs). Feeds in `consts` become
    constants on the kiln side (so inference sees them) and initializers on the ONNX side."""
    b = GraphBuilder("t")
    env = {}
    for name, x in feeds.items():
        env[name] = b.constant(x, name) if name in consts else \
            b.input(name, TensorType(DType.from_numpy(x.dtype), x.shape))
    nodes = []
    for op, ins, outs, attrs in steps:
        vals = b.add(get_op(op), [env[n] if n else None for n in ins], dict(attrs), outputs=outs)
        env.update(zip(outs, vals))
        onnx_attrs = {k: v.onnx if isinstance(v, DType) else v for k, v in attrs.items()}
        nodes.append(helper.make_node(op, list(ins), list(outs), **onnx_attrs))
    b.output(*(env[o] for o in outputs))
    verify(b.graph)
    got = interpret(b.graph, {k: v for k, v in feeds.items() if k not in consts})
    g = helper.make_graph(
        nodes, "t",
        [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
         for k, v in feeds.items() if k not in consts],
        [helper.make_value_info(o, onnx.TypeProto()) for o in outputs],
        initializer=[onnx.numpy_helper.from_array(feeds[k], k) for k in consts])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = ReferenceEvaluator(model).run(None, {k: v for k, v in feeds.items()
                                                    if k not in consts})
    if compare:
        for gv, wv in zip(got, want):
            assert_same(gv, wv)
    return got, want


def types_of(steps, input_types, consts=None):
    """Output types of the last step of a pipeline over inputs of the given types."""
    b = GraphBuilder("t")
    env = {n: b.input(n, t) for n, t in input_types.items()}
    for n, x in (consts or {}).items():
        env[n] = b.constant(x, n)
    vals = []
    for op, ins, outs, attrs in steps:
        vals = b.add(get_op(op), [env[n] if n else None for n in ins], dict(attrs), outputs=outs)
        env.update(zip(outs, vals))
    return [v.type for v in vals]


# --- construct, at, length, insert, erase ------------------------------------------------------

@pytest.mark.parametrize("pos", [0, 2, -1, -3])
@pytest.mark.parametrize("pos_dtype", [np.int64, np.int32])
def test_construct_at_length(pos, pos_dtype):
    feeds = {"a": randn(2, 3), "b": randn(5, 3), "c": randn(1, 3), "p": np.array(pos, pos_dtype)}
    got, _ = pipeline([("SequenceConstruct", ["a", "b", "c"], ["s"], {}),
                       ("SequenceAt", ["s", "p"], ["y"], {}),
                       ("SequenceLength", ["s"], ["n"], {})], feeds, ["y", "n"])
    assert np.array_equal(got[0], [feeds["a"], feeds["b"], feeds["c"]][pos])
    assert got[1] == 3 and got[1].dtype == np.int64


def test_construct_joins_element_types():
    (t,) = types_of([("SequenceConstruct", ["a", "b"], ["s"], {})],
                    {"a": tensor(f32, 2, 3), "b": tensor(f32, 5, 3)})
    assert t == SequenceType(tensor(f32, None, 3))
    (t,) = types_of([("SequenceConstruct", ["a"], ["s"], {}),
                     ("SequenceAt", ["s", "p"], ["y"], {})],
                    {"a": tensor(f32, "n", 3), "p": tensor(i64)})
    assert t == tensor(f32, "n", 3)
    with pytest.raises(TypeInferenceError, match="one element type"):
        types_of([("SequenceConstruct", ["a", "b"], ["s"], {})],
                 {"a": tensor(f32, 2), "b": tensor(i64, 2)})


@pytest.mark.parametrize("pos", [None, 0, 1, 3, -1, -3])
def test_insert(pos):
    feeds = {"a": randn(4), "b": randn(4), "c": randn(4), "x": randn(7)}
    ins = ["s", "x"]
    if pos is not None:
        feeds["p"] = np.array(pos, np.int64)
        ins.append("p")
    # onnx.reference wraps position == len(sequence) around to the front; ONNX (and kiln)
    # append there
    got, _ = pipeline([("SequenceConstruct", ["a", "b", "c"], ["s"], {}),
                       ("SequenceInsert", ins, ["t"], {})], feeds, ["t", "s"], compare=pos != 3)
    where = 3 if pos is None else pos % 4 if pos >= 0 else pos + 3
    assert [len(e) for e in got[0]] == [4] * where + [7] + [4] * (3 - where)
    assert len(got[1]) == 3      # the input sequence is not modified


@pytest.mark.parametrize("pos", [None, 0, 2, -2])
def test_erase(pos):
    feeds = {"a": randn(1), "b": randn(2), "c": randn(3)}
    ins = ["s"] if pos is None else ["s", "p"]
    if pos is not None:
        feeds["p"] = np.array(pos, np.int64)
    got, _ = pipeline([("SequenceConstruct", ["a", "b", "c"], ["s"], {}),
                       ("SequenceErase", ins, ["t"], {})], feeds, ["t"])
    gone = 2 if pos is None else pos % 3
    assert [len(e) for e in got[0]] == [n for n in (1, 2, 3) if n != gone + 1]


def test_empty_then_insert_and_string_elements():
    words = np.array(["x", "yz"], dtype=object)
    b = GraphBuilder("t")
    w = b.input("w", tensor(DType.string, 2))
    s = b.SequenceInsert(b.SequenceEmpty(dtype=DType.string), w)
    assert s.type == SequenceType(TensorType(DType.string, None))
    b.output(b.SequenceLength(s), b.SequenceAt(s, b.constant(np.array(0))))
    n, first = interpret(b.graph, {"w": words})
    assert n == 1 and first.tolist() == ["x", "yz"]


def test_position_errors():
    b = GraphBuilder("t")
    s = b.SequenceConstruct(b.input("a", tensor(f32, 2)))
    with pytest.raises(TypeInferenceError, match="i32 or i64"):
        b.SequenceAt(s, b.input("p", tensor(f32)))
    with pytest.raises(TypeInferenceError, match="scalar"):
        b.SequenceAt(s, b.input("q", tensor(i64, 2)))
    with pytest.raises(TypeInferenceError, match="sequence"):
        b.SequenceAt(b.input("x", tensor(f32, 2)), b.input("r", tensor(i64)))
    g = GraphBuilder("g")
    g.output(g.SequenceAt(g.SequenceConstruct(g.input("a", tensor(f32, 2))),
                          g.input("k", tensor(i64))))
    with pytest.raises(ExecutionError, match="out of range"):
        interpret(g.graph, {"a": randn(2), "k": np.array(1)})
    with pytest.raises(ExecutionError, match="out of range"):
        interpret(g.graph, {"a": randn(2), "k": np.array(-2)})


# --- SplitToSequence / ConcatFromSequence ------------------------------------------------------

@pytest.mark.parametrize("shape,axis,split,keepdims", [
    ((6, 5), 0, None, 1), ((6, 5), 1, None, 0), ((6, 5), -1, None, 1), ((7, 3), 0, 2, 1),
    ((7, 3), 0, 7, 1), ((6, 5), 1, [1, 4], 1), ((2, 3, 5), -2, [2, 0, 1], 1), ((1,), 0, None, 0),
])
def test_split_to_sequence(shape, axis, split, keepdims):
    feeds = {"x": randn(*shape)}
    ins = ["x"]
    if split is not None:
        feeds["split"] = np.array(split, np.int64)
        ins.append("split")
    got, _ = pipeline([("SplitToSequence", ins, ["s"], {"axis": axis, "keepdims": keepdims})],
                      feeds, ["s"])
    rebuilt = np.concatenate(got[0] if keepdims or split is not None else
                             [np.expand_dims(p, axis) for p in got[0]], axis=axis)
    assert np.array_equal(rebuilt, feeds["x"])


def test_split_to_sequence_integers_and_empty():
    got, _ = pipeline([("SplitToSequence", ["x"], ["s"], {"axis": 1})],
                      {"x": np.arange(6, dtype=np.int32).reshape(2, 3)}, ["s"])
    assert len(got[0]) == 3 and got[0][0].dtype == np.int32
    b = GraphBuilder("t")
    b.output(b.SplitToSequence(b.input("x", tensor(f32, 0, 2))))
    assert interpret(b.graph, {"x": np.zeros((0, 2), np.float32)}) == [[]]


def test_split_to_sequence_types():
    st = lambda t, **kw: types_of([("SplitToSequence", ["x"] + (["s"] if "s" in kw else []),
                                    ["y"], {k: v for k, v in kw.items() if k != "s"})],
                                  {"x": t}, {"s": kw["s"]} if "s" in kw else None)[0]
    assert st(tensor(f32, 6, "n")) == SequenceType(tensor(f32, 1, "n"))
    assert st(tensor(f32, 6, "n"), keepdims=0) == SequenceType(tensor(f32, "n"))
    assert st(tensor(f32, 6, 4), s=np.array(3)) == SequenceType(tensor(f32, 3, 4))
    assert st(tensor(f32, 7, 4), s=np.array(3)) == SequenceType(tensor(f32, None, 4))
    assert st(tensor(f32, 6, 4), s=np.array([2, 2, 2]), axis=0) == SequenceType(tensor(f32, 2, 4))
    assert st(tensor(f32, 6, 4), s=np.array([1, 3]), axis=-1) == SequenceType(tensor(f32, 6, None))
    with pytest.raises(TypeInferenceError, match="sum to"):
        st(tensor(f32, 6, 4), s=np.array([1, 2]))
    with pytest.raises(TypeInferenceError, match="out of range"):
        st(tensor(f32, 6, 4), axis=2)
    b = GraphBuilder("t")
    b.output(b.SplitToSequence(b.input("x", tensor(f32, "n")), b.input("s", tensor(i64, 2))))
    with pytest.raises(ExecutionError, match="sum to"):
        interpret(b.graph, {"x": randn(5), "s": np.array([1, 1])})


@pytest.mark.parametrize("axis,new_axis", [(0, 0), (1, 0), (-1, 0), (0, 1), (2, 1), (-1, 1)])
def test_concat_from_sequence(axis, new_axis):
    feeds = {"a": randn(3, 4), "b": randn(3, 4), "c": randn(3, 4)}
    got, _ = pipeline([("SequenceConstruct", ["a", "b", "c"], ["s"], {}),
                       ("ConcatFromSequence", ["s"], ["y"], {"axis": axis, "new_axis": new_axis})],
                      feeds, ["y"])
    parts = list(feeds.values())
    want = np.stack(parts, axis) if new_axis else np.concatenate(parts, axis)
    assert np.array_equal(got[0], want)


def test_concat_from_sequence_types_and_errors():
    seq = {"s": SequenceType(tensor(f32, 3, "n"))}
    assert types_of([("ConcatFromSequence", ["s"], ["y"], {"axis": 1})], seq) == \
        [tensor(f32, 3, None)]
    assert types_of([("ConcatFromSequence", ["s"], ["y"], {"axis": -1, "new_axis": 1})], seq) == \
        [tensor(f32, 3, "n", None)]
    with pytest.raises(TypeInferenceError, match="out of range"):
        types_of([("ConcatFromSequence", ["s"], ["y"], {"axis": 2})], seq)
    with pytest.raises(AttributeValueError, match="axis"):
        types_of([("ConcatFromSequence", ["s"], ["y"], {})], seq)
    b = GraphBuilder("t")
    b.output(b.ConcatFromSequence(b.SequenceEmpty(), axis=0))
    with pytest.raises(ExecutionError, match="empty sequence"):
        interpret(b.graph, {})


# --- SequenceMap ---------------------------------------------------------------------------------

def test_sequence_map_matches_reference():
    """y_i = x_i + bias for each element, and the shape of each element."""
    xs = [randn(3), randn(5), randn(1)]
    bias = randn(1)
    b = GraphBuilder("t")
    vals = [b.input(f"x{i}", tensor(f32, len(x))) for i, x in enumerate(xs)]
    bv = b.input("bias", tensor(f32, 1))
    s = b.SequenceConstruct(*vals)
    body = GraphBuilder("body", parent=b.graph)
    e = body.input("e", tensor(f32, None))
    bb = body.input("bb", tensor(f32, 1))
    body.output(body.Add(e, bb), body.Shape(e))
    ys, shapes = b.SequenceMap(s, bv, body=body.graph, outputs=2)
    assert ys.type == SequenceType(tensor(f32, None))
    assert shapes.type == SequenceType(tensor(i64, 1))
    b.output(ys, shapes)
    feeds = {**{f"x{i}": x for i, x in enumerate(xs)}, "bias": bias}
    got = interpret(b.graph, feeds)

    obody = helper.make_graph(
        [helper.make_node("Add", ["e", "bb"], ["y"]), helper.make_node("Shape", ["e"], ["sh"])],
        "body", [helper.make_tensor_value_info("e", TensorProto.FLOAT, [None]),
                 helper.make_tensor_value_info("bb", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None]),
         helper.make_tensor_value_info("sh", TensorProto.INT64, [1])])
    nodes = [helper.make_node("SequenceConstruct", list(feeds)[:3], ["s"]),
             helper.make_node("SequenceMap", ["s", "bias"], ["ys", "shapes"], body=obody)]
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info(k, TensorProto.FLOAT, v.shape)
                                       for k, v in feeds.items()],
                          [helper.make_value_info(o, onnx.TypeProto()) for o in ("ys", "shapes")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
    want = ReferenceEvaluator(model).run(None, feeds)
    for gv, wv in zip(got, want):
        assert_same(gv, wv)


def test_sequence_map_walks_two_sequences_and_checks_lengths():
    b = GraphBuilder("t")
    a = b.SequenceConstruct(b.input("a0", tensor(f32, 2)), b.input("a1", tensor(f32, 2)))
    c = b.input("c_seq", SequenceType(tensor(f32, 2)))
    body = GraphBuilder("body", parent=b.graph)
    body.output(body.Mul(body.input("p", tensor(f32, 2)), body.input("q", tensor(f32, 2))))
    b.output(b.SequenceMap(a, c, body=body.graph))
    a0, a1, c0, c1 = randn(2), randn(2), randn(2), randn(2)
    (got,) = interpret(b.graph, {"a0": a0, "a1": a1, "c_seq": [c0, c1]})
    np.testing.assert_array_equal(got[0], a0 * c0)
    np.testing.assert_array_equal(got[1], a1 * c1)
    with pytest.raises(ExecutionError, match="equally long"):
        interpret(b.graph, {"a0": a0, "a1": a1, "c_seq": [c0]})


def test_sequence_map_body_arity_is_checked():
    b = GraphBuilder("t")
    s = b.SequenceConstruct(b.input("a", tensor(f32, 2)))
    body = GraphBuilder("body", parent=b.graph)
    x = body.input("x", tensor(f32, 2))
    body.input("extra", tensor(f32, 2))
    body.output(x)
    with pytest.raises(TypeInferenceError, match="body takes 2 inputs"):
        b.SequenceMap(s, body=body.graph)


# --- Optional ------------------------------------------------------------------------------------

def test_optional_holding_a_value_and_empty():
    b = GraphBuilder("t")
    x = b.input("x", tensor(f32, 3))
    full = b.Optional(x)
    empty = b.Optional(type=tensor(f32, 3))
    seq_opt = b.Optional(b.SequenceConstruct(x))
    assert full.type == empty.type == OptionalType(tensor(f32, 3))
    assert seq_opt.type == OptionalType(SequenceType(tensor(f32, 3)))
    b.output(b.OptionalHasElement(full), b.OptionalHasElement(empty), b.OptionalHasElement(),
             b.OptionalHasElement(x), b.OptionalGetElement(full), b.OptionalGetElement(x),
             b.OptionalGetElement(seq_opt), empty)
    xv = randn(3)
    has_full, has_empty, has_absent, has_plain, got, plain, seq, e = interpret(b.graph, {"x": xv})
    assert [bool(has_full), bool(has_empty), bool(has_absent), bool(has_plain)] == \
        [True, False, False, True]
    assert has_full.dtype == np.bool_ and has_full.shape == ()
    assert np.array_equal(got, xv) and np.array_equal(plain, xv) and np.array_equal(seq[0], xv)
    assert e is None


def test_optional_as_graph_input_matches_reference():
    opt_t = helper.make_optional_type_proto(helper.make_tensor_type_proto(TensorProto.FLOAT, [2]))
    nodes = [helper.make_node("OptionalHasElement", ["o"], ["h"])]
    g = helper.make_graph(nodes, "t", [helper.make_value_info("o", opt_t)],
                          [helper.make_tensor_value_info("h", TensorProto.BOOL, [])])
    ref = ReferenceEvaluator(helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)]))
    b = GraphBuilder("t")
    o = b.input("o", OptionalType(tensor(f32, 2)))
    b.output(b.OptionalHasElement(o))
    for value in (None, randn(2)):
        assert_same(interpret(b.graph, {"o": value})[0], ref.run(None, {"o": value})[0])


def test_optional_errors():
    b = GraphBuilder("t")
    with pytest.raises(AttributeValueError, match="type"):
        b.Optional()
    empty = b.Optional(type=tensor(f32, 3))
    b.output(b.OptionalGetElement(empty))
    with pytest.raises(ExecutionError, match="empty optional"):
        interpret(b.graph, {})
    with pytest.raises(AttributeValueError, match="kind type"):
        GraphBuilder("u").Optional(type="f32[3]")
