"""lower_graph: buffers by kind, symbolic sizes, outputs, dead kernels, the default loop nest,
narrow-float compute, compile-time shape values and the errors it raises."""

import numpy as np
import pytest

from kiln.errors import LoweringError, UnsupportedOpError
from kiln.ir import GraphBuilder, tensor
from kiln.ir.dtypes import DType
from kiln.ir.graph import Node
from kiln.ir.opdef import OpDef
from kiln.ir.types import TensorType
from kiln.loops.buffer import BufferKind
from kiln.loops.expr import Binary, Cast, Const, Load, Var
from kiln.loops.printer import print_program
from kiln.loops.stmt import LoopKind, Store, walk
from kiln.lowering import lower_graph

from .harness import check_graph, rand

f16, f32, i64 = DType.float16, DType.float32, DType.int64


def ints(*v):
    return np.array(v, np.int64)


def test_buffers_by_kind_and_symbolic_sizes(backend):
    b = GraphBuilder("g")
    x = b.input("x", tensor(f32, "n", 4))
    s = b.input("s", tensor(f32, "n", 1))
    w_data = np.arange(4, dtype=np.float32)
    w = b.constant(w_data, "w")
    y = b.Relu(b.Add(b.Mul(x, w), b.constant(np.float32(1), "one")))
    b.output(b.Exp(b.Sub(y, s)))
    prog = check_graph(backend, b.graph, {"x": rand((3, 4)), "s": rand((3, 1), seed=1)})
    kinds = {buf.name: buf.kind for buf in prog.buffers}
    assert [buf.name for buf in prog.inputs] == ["x", "s"]
    assert kinds["x"] is BufferKind.INPUT and kinds["w"] is BufferKind.CONSTANT
    assert "one" not in kinds                        # a splat constant is a Const
    (const,) = [buf for buf in prog.buffers if buf.kind is BufferKind.CONSTANT]
    assert const.data is w_data                      # by reference
    assert [buf.kind for buf in prog.outputs] == [BufferKind.OUTPUT]
    assert {buf.name for buf in prog.temps()} == {"mul", "add", "relu", "sub"}
    assert prog.sizes == {"n": (prog.inputs[0], 0)}
    assert prog.inputs[0].shape[0] == Var("n") and prog.outputs[0].shape[0] == Var("n")
    assert "kernel exp" in print_program(prog)


def test_outputs_that_are_inputs_constants_or_repeated(backend):
    b = GraphBuilder("g")
    x = b.input("x", tensor(f32, 2, 3))
    c = b.constant(rand((2, 3), seed=3), "c")
    y = b.Neg(x)
    b.output(x, y, y, c, x)
    prog = check_graph(backend, b.graph, {"x": rand((2, 3))})
    names = [buf.name for buf in prog.outputs]
    assert len(set(names)) == 5 and all(buf.kind is BufferKind.OUTPUT for buf in prog.outputs)
    assert prog.outputs[1].name == "neg"             # written in place by its kernel
    assert sum(k.name.startswith("copy") for k in prog.kernels) == 4


def test_kernels_nobody_reads_are_dropped(backend):
    b = GraphBuilder("g")
    x = b.input("x", tensor(f32, 5))
    b.Exp(b.Sin(x))                                  # dead
    b.output(b.Cos(x))
    prog = check_graph(backend, b.graph, {"x": rand((5,))})
    assert [k.name for k in prog.kernels] == ["cos"]
    assert not prog.temps()


def test_a_chain_with_views_broadcasting_and_a_symbolic_batch(backend):
    b = GraphBuilder("g")
    x = b.input("x", tensor(f32, "batch", 6))
    bias = b.constant(rand((3,), seed=4), "bias")
    h = b.Reshape(x, b.constant(ints(0, 2, 3)))                  # [batch, 2, 3]
    h = b.Add(b.Transpose(h, perm=[0, 2, 1]), b.Unsqueeze(bias, b.constant(ints(1))))
    h = b.Where(b.Greater(h, b.constant(np.float32(0))), h, b.Mul(h, b.constant(np.float32(0.1))))
    top, rest = b.Split(h, b.constant(ints(1, 2)), axis=1, outputs=2)
    out = b.Concat(b.Slice(rest, b.constant(ints(-1)), b.constant(ints(-4)), b.constant(ints(1)),
                           b.constant(ints(-1))), top, axis=1)
    b.output(b.Flatten(out, axis=1), top)
    for n in (1, 3):
        check_graph(backend, b.graph, {"x": rand((n, 6), seed=n)})


def test_shapes_computed_by_written_nodes_are_known_when_compiling(backend):
    b = GraphBuilder("g")
    x = b.input("x", tensor(f32, "n", 6))
    half = b.Div(b.Shape(x), b.constant(ints(1, 2)))             # an elementwise node: written
    target = b.Concat(half, b.constant(ints(2)), axis=0)          # [n, 3, 2]
    b.output(b.Exp(b.Reshape(x, target)))
    prog = check_graph(backend, b.graph, {"x": rand((2, 6))})
    assert [k.name for k in prog.kernels] == ["exp"]
    assert prog.outputs[0].shape == (Var("n"), Const(3), Const(2))


# --- the default loop nest -----------------------------------------------------------------------

def _loops(prog):
    (k,) = prog.kernels
    return [(s.kind, s.width) for s in walk(k.body) if hasattr(s, "kind")]


def _lower_unary(shape, dtype=f32):
    b = GraphBuilder("g")
    x = b.input("x", TensorType(dtype, shape))
    b.output(b.Abs(x))
    return lower_graph(b.graph)


def test_loop_kinds():
    P, V, S = LoopKind.PARALLEL, LoopKind.VECTORIZED, LoopKind.SERIAL
    assert _loops(_lower_unary((256, 256))) == [(P, 0), (V, 16)]
    assert _loops(_lower_unary((1, 256, 256))) == [(S, 0), (P, 0), (V, 16)]
    assert _loops(_lower_unary((3, 5))) == [(S, 0), (V, 16)]
    assert _loops(_lower_unary((2, 3))) == [(S, 0), (S, 0)]
    assert _loops(_lower_unary(("n", 8))) == [(P, 0), (V, 16)]
    assert _loops(_lower_unary((64, 1024), DType.float64)) == [(P, 0), (V, 8)]
    assert _loops(_lower_unary((9,), DType.int8)) == [(V, 16)]
    assert _loops(_lower_unary(())) == []


def test_float16_is_computed_in_float32_and_rounded_once(backend):
    b = GraphBuilder("g")
    x = b.input("x", tensor(f16, 4))
    y = b.input("y", tensor(f16, 4))
    b.output(b.Mul(b.Add(x, y), x))
    prog = check_graph(backend, b.graph, {"x": rand((4,), np.float16), "y": rand((4,), np.float16,
                                                                             seed=1)})
    store = next(s for s in walk(prog.kernels[0].body) if isinstance(s, Store))
    value = store.value
    assert isinstance(value, Cast) and value.dtype is f16
    assert isinstance(value.a, Binary) and value.a.dtype is f32
    assert all(isinstance(op, Cast) and isinstance(op.a, Load) for op in (value.a.a, value.a.b))


# --- errors --------------------------------------------------------------------------------------

def _fake_op(name):
    return OpDef(name=name, inputs=(), outputs=(), infer=None, reference=None)


def test_every_op_without_a_lowering_is_named_at_once():
    b = GraphBuilder("g")
    x = b.input("x", tensor(f32, 3))
    g = b.graph
    values = []
    for name in ("FakeOpA", "FakeOpB", "FakeOpA"):
        v = g.new_value("t", tensor(f32, 3))
        g.append(Node(_fake_op(name), [x], {}, [v], name=f"{name.lower()}_node"))
        values.append(v)
    b.output(*values)
    with pytest.raises(LoweringError) as e:
        lower_graph(g)
    assert e.value.ops == ("FakeOpA", "FakeOpB")
    assert "FakeOpA (2 nodes)" in str(e.value) and "FakeOpB (1 node)" in str(e.value)
    assert isinstance(e.value, UnsupportedOpError)


def test_dtypes_the_back_end_lacks_are_reported():
    b = GraphBuilder("g")
    x = b.input("x", tensor(DType.string, 2))
    b.output(b.Identity(x))
    with pytest.raises(LoweringError, match="str"):
        lower_graph(b.graph)


def test_a_shape_operand_unknown_when_compiling_names_the_node():
    b = GraphBuilder("g")
    x = b.input("x", tensor(f32, 6))
    shape = b.input("shape", tensor(i64, 2))
    b.output(b.Reshape(x, shape, name="my_reshape"))
    with pytest.raises(LoweringError, match="my_reshape.*'shape' must be known") as e:
        lower_graph(b.graph)
    assert "constant" in e.value.hint


def test_an_input_dim_must_be_a_size_or_a_name():
    b = GraphBuilder("g")
    x = b.input("x", tensor(f32, None, 3))
    b.output(b.Relu(x))
    with pytest.raises(LoweringError, match="unknown dim 0"):
        lower_graph(b.graph)


def test_an_output_reshaping_a_temp_is_written_in_place(backend):
    b = GraphBuilder("g")
    x = b.input("x", tensor(f32, "n", 2, 3))
    e = b.Exp(x)
    b.output(b.Flatten(e, axis=1), b.Squeeze(b.Unsqueeze(e, b.constant(ints(0))),
                                           b.constant(ints(0))))
    prog = check_graph(backend, b.graph, {"x": rand((3, 2, 3))})
    assert [k.name for k in prog.kernels] == ["exp", "copy"]     # the second output is copied
    (exp,) = [buf for buf in prog.buffers if buf.name == "exp"]
    assert exp.base is prog.outputs[0] and prog.outputs[0].base is None
    assert prog.outputs[0].shape == (Var("n"), Const(6))
