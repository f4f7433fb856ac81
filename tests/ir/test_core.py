"""Types, builder, interpreter input checks and the verifier's rules."""

import numpy as np
import pytest

from kiln import errors
from kiln.ir import Graph, GraphBuilder, Node, ops, tensor
from kiln.ir.dtypes import DType
from kiln.ir.interpreter import interpret, interpret_named
from kiln.ir.shapes import broadcast_shapes
from kiln.ir.types import TensorType
from kiln.ir.verifier import verify

f32, i64 = DType.float32, DType.int64


def small_graph():
    b = GraphBuilder("g")
    x = b.input("x", tensor(f32, "batch", 3))
    y = b.input("y", tensor(f32, 1, 3))
    b.output(b.Relu(b.Add(x, y)))
    return b.graph


@pytest.mark.parametrize("a,b,want", [
    ((3, 1), (4,), (3, 4)), ((), (2, 3), (2, 3)), (("batch", 1), (1, 5), ("batch", 5)),
    (("batch", 3), ("batch", 3), ("batch", 3)), ((None, 3), (4, 1), (4, 3)), ((0, 1), (1, 7), (0, 7)),
])
def test_broadcast_shapes(a, b, want):
    assert broadcast_shapes(a, b) == want


def test_broadcast_mismatch_is_a_type_error():
    with pytest.raises(errors.TypeInferenceError, match="cannot broadcast"):
        broadcast_shapes((3,), (4,))


def test_builder_infers_symbolic_types():
    g = small_graph()
    assert g.outputs[0].type == TensorType(f32, ("batch", 3))
    verify(g)


def test_builder_rejects_unknown_attribute_and_bad_kind():
    b = GraphBuilder()
    x = b.input("x", tensor(f32, 2))
    with pytest.raises(errors.AttributeValueError, match="unknown attribute 'beta'"):
        b.LeakyRelu(x, beta=1.0)
    with pytest.raises(errors.AttributeValueError, match="must be of kind float"):
        b.LeakyRelu(x, alpha="big")


def test_builder_rejects_mismatched_dtypes():
    b = GraphBuilder()
    x = b.input("x", tensor(f32, 2))
    y = b.input("y", tensor(i64, 2))
    with pytest.raises(errors.TypeInferenceError):
        b.Add(x, y)


def test_interpreter_runs_any_batch():
    g = small_graph()
    for n in (1, 4):
        x = np.random.default_rng(n).standard_normal((n, 3)).astype(np.float32)
        y = np.ones((1, 3), np.float32)
        (out,) = interpret(g, {"x": x, "y": y})
        np.testing.assert_array_equal(out, np.maximum(x + y, 0))
    assert list(interpret_named(g, [x, y])) == [g.outputs[0].name]


@pytest.mark.parametrize("feeds,error,match", [
    ({"x": np.ones((2, 3), np.float32)}, errors.InputNameError, "missing input"),
    ({"x": np.ones((2, 3), np.float32), "y": np.ones((1, 3), np.float32), "z": 1},
     errors.InputNameError, "unknown input"),
    ({"x": np.ones((2, 3), np.float64), "y": np.ones((1, 3), np.float32)},
     errors.DTypeMismatchError, "float64"),
    ({"x": np.ones((2, 4), np.float32), "y": np.ones((1, 3), np.float32)},
     errors.ShapeMismatchError, "dimension 1 must be 3"),
    ({"x": np.ones((2,), np.float32), "y": np.ones((1, 3), np.float32)},
     errors.ShapeMismatchError, "rank"),
    ({"x": "hello", "y": np.ones((1, 3), np.float32)}, errors.DTypeMismatchError, "NumPy array"),
])
def test_interpreter_checks_inputs(feeds, error, match):
    with pytest.raises(error, match=match):
        interpret(small_graph(), feeds)


def test_symbolic_dims_must_bind_consistently():
    b = GraphBuilder()
    x = b.input("x", tensor(f32, "n"))
    y = b.input("y", tensor(f32, "n"))
    b.output(b.Add(x, y))
    with pytest.raises(errors.ShapeMismatchError, match="symbolic dimension 'n'"):
        interpret(b.graph, {"x": np.ones(2, np.float32), "y": np.ones(3, np.float32)})


# --- verifier rules ------------------------------------------------------------------------

def test_verifier_ssa():
    g = small_graph()
    g.nodes.append(Node(ops.Relu, [g.inputs[0]], {}, [g.nodes[0].outputs[0]]))
    with pytest.raises(errors.VerificationError, match=r"\[ssa\]"):
        verify(g)


def test_verifier_order():
    g = small_graph()
    g.nodes.reverse()
    with pytest.raises(errors.VerificationError, match=r"Relu node: \[order\] input #0"):
        verify(g)


def test_verifier_types():
    g = small_graph()
    g.nodes[1].outputs[0].type = TensorType(f32, ("batch", 4))
    with pytest.raises(errors.VerificationError, match=r"\[type\] output %\w+ is declared"):
        verify(g)


def test_verifier_arity_and_attributes():
    g = small_graph()
    g.nodes[1].inputs.append(g.inputs[1])
    with pytest.raises(errors.VerificationError, match=r"\[arity\]"):
        verify(g)
    g = small_graph()
    g.nodes[1].attrs["alpha"] = 1.0
    with pytest.raises(errors.VerificationError, match=r"\[attribute\]"):
        verify(g)


def test_verifier_constant_and_output():
    g = small_graph()
    c = g.add_constant(np.ones(3, np.float32), "c")
    c.type = TensorType(f32, (4,))
    with pytest.raises(errors.VerificationError, match=r"\[constant\]"):
        verify(g)
    g = small_graph()
    g.outputs.append(Graph("other").add_input("z", tensor(f32)))
    with pytest.raises(errors.VerificationError, match=r"\[output\]"):
        verify(g)


def test_verifier_names():
    g = small_graph()
    g.nodes[0].outputs[0].name = "x"
    with pytest.raises(errors.VerificationError, match=r"\[names\]"):
        verify(g)


def test_errors_share_one_base():
    for cls in (errors.ModelLoadError, errors.UnsupportedOpError, errors.AttributeValueError,
                errors.TypeInferenceError, errors.VerificationError, errors.IRParseError,
                errors.ShapeMismatchError, errors.DTypeMismatchError, errors.ExecutionError):
        assert issubclass(cls, errors.KilnError)


def test_outputs_never_alias_constants_or_inputs():
    b = GraphBuilder()
    x = b.input("x", tensor(f32, 2, 3))
    c = b.constant(np.arange(6, dtype=np.float32), "c")
    shape = b.constant(np.array([2, 3], np.int64), "shape")
    b.output(b.Reshape(c, shape), b.Identity(x))
    feed = np.zeros((2, 3), np.float32)
    r, i = interpret(b.graph, {"x": feed})
    r[...] = -1
    i[...] = -1
    assert b.graph.constants[0].data[0] == 0 and feed[0, 0] == 0
