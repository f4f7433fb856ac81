import numpy as np
import pytest

from kiln.errors import AttributeValueError, TypeInferenceError
from kiln.ir import GraphBuilder
from kiln.ir.dtypes import DType
from kiln.ir.ops import get_op
from kiln.ir.types import TensorType
from tests.ir.ops.harness import check_op, run_kiln
from tests.ir.ops.ort_check import check_op_ort

rng = np.random.default_rng(0)
f32 = np.float32
TOL = dict(rtol=1e-5, atol=1e-5)
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
OUTPUTS = {"RNN": 2, "GRU": 2, "LSTM": 3}
OPS = list(GATES)
DIRECTIONS = ["forward", "reverse", "bidirectional"]


def randn(*shape, dtype=f32, scale=0.5):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def make_inputs(op, seq, batch, size, hidden, direction, *, layout=0, states=True, bias=True,
                lens=None, dtype=f32):
    """X, W, R and the optional inputs of one recurrent node (None where absent)."""
    nd = 2 if direction == "bidirectional" else 1
    g = GATES[op]
    x = randn(seq, batch, size, dtype=dtype) if layout == 0 else randn(batch, seq, size, dtype=dtype)
    state = (nd, batch, hidden) if layout == 0 else (batch, nd, hidden)
    ins = [x, randn(nd, g * hidden, size, dtype=dtype), randn(nd, g * hidden, hidden, dtype=dtype),
           randn(nd, 2 * g * hidden, dtype=dtype) if bias else None,
           None if lens is None else np.asarray(lens, np.int32),
           randn(*state, dtype=dtype) if states else None]
    if op == "LSTM":
        ins += [randn(*state, dtype=dtype) if states else None,
                randn(nd, 3 * hidden, dtype=dtype) if states else None]
    while ins[-1] is None:
        ins.pop()
    return ins


def infer(op, *types, outputs=1, **attrs):
    b = GraphBuilder("t")
    vals = [None if t is None else b.input(f"x{i}", t) for i, t in enumerate(types)]
    outs = b.add(get_op(op), vals, attrs, outputs=outputs)
    return [v.type for v in outs]


def T(*shape, dtype=DType.float32):
    return TensorType(dtype, shape)


# --- against onnx.reference ------------------------------------------------------------------

@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("states", [False, True])
@pytest.mark.parametrize("layout", [0, 1])
def test_recurrent_layers(op, direction, states, layout):
    ins = make_inputs(op, 5, 3, 4, 7, direction, layout=layout, states=states, bias=states)
    attrs = {"hidden_size": 7, "direction": direction, "layout": layout}
    check_op(op, ins, attrs, num_outputs=OUTPUTS[op], **TOL)


@pytest.mark.parametrize("op", OPS)
def test_recurrent_single_step_single_unit(op):
    ins = make_inputs(op, 1, 1, 1, 1, "forward")
    check_op(op, ins, {}, num_outputs=OUTPUTS[op], **TOL)      # hidden_size taken from R


@pytest.mark.parametrize("op", OPS)
def test_recurrent_only_y(op):
    (y,) = check_op(op, make_inputs(op, 3, 2, 5, 3, "bidirectional"),
                    {"direction": "bidirectional"}, **TOL)
    assert y.shape == (3, 2, 2, 3)


def test_gru_linear_before_reset():
    for direction in DIRECTIONS:
        check_op("GRU", make_inputs("GRU", 4, 2, 3, 5, direction),
                 {"direction": direction, "linear_before_reset": 1}, num_outputs=2, **TOL)


@pytest.mark.parametrize("op", OPS)
def test_recurrent_float64(op):
    outs = check_op(op, make_inputs(op, 3, 2, 3, 4, "forward", dtype=np.float64), {},
                    num_outputs=OUTPUTS[op], rtol=1e-10, atol=1e-10)
    assert all(o.dtype == np.float64 for o in outs)


# --- against onnxruntime (sequence_lens, clip, activations, input_forget) ---------------------

@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_recurrent_sequence_lens(op, direction):
    ins = make_inputs(op, 5, 4, 3, 4, direction, lens=[5, 2, 1, 4])
    check_op_ort(op, ins, {"direction": direction, "hidden_size": 4}, num_outputs=OUTPUTS[op])


@pytest.mark.parametrize("op", OPS)
def test_recurrent_sequence_lens_hold_the_state(op):
    ins = make_inputs(op, 6, 2, 3, 4, "forward", lens=[6, 3])
    outs = run_kiln(op, ins, {}, num_outputs=OUTPUTS[op])
    y, y_h = outs[0], outs[1]
    np.testing.assert_array_equal(y[3:, :, 1], 0)
    np.testing.assert_array_equal(y_h[:, 1], y[2, :, 1])


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_recurrent_clip(op, direction):
    ins = make_inputs(op, 4, 2, 3, 5, direction, lens=[4, 3])
    check_op_ort(op, ins, {"direction": direction, "clip": 0.3, "hidden_size": 5},
                 num_outputs=OUTPUTS[op])


@pytest.mark.parametrize("op,acts", [
    ("RNN", ["Relu"]), ("RNN", ["Affine"]), ("RNN", ["LeakyRelu", "ThresholdedRelu"]),
    ("GRU", ["HardSigmoid", "Softsign"]), ("GRU", ["Sigmoid", "Elu", "Sigmoid", "Softplus"]),
    ("LSTM", ["Sigmoid", "ScaledTanh", "Affine"]), ("LSTM", ["hardsigmoid", "tanh", "relu"]),
])
def test_recurrent_activations(op, acts):
    per_direction = {"RNN": 1, "GRU": 2, "LSTM": 3}[op]
    direction = "bidirectional" if len(acts) == 2 * per_direction else "forward"
    ins = make_inputs(op, 4, 2, 3, 5, direction)
    attrs = {"direction": direction, "hidden_size": 5, "activations": acts, "activation_alpha": [0.3, 0.7],
             "activation_beta": [0.2, 0.4]}
    check_op_ort(op, ins, attrs, num_outputs=OUTPUTS[op])


def test_lstm_input_forget_and_peepholes():
    for direction in DIRECTIONS:
        ins = make_inputs("LSTM", 4, 3, 2, 5, direction, lens=[4, 1, 3])
        check_op_ort("LSTM", ins, {"direction": direction, "input_forget": 1, "hidden_size": 5},
                     num_outputs=3)


def test_gru_linear_before_reset_with_sequence_lens():
    ins = make_inputs("GRU", 5, 3, 2, 4, "bidirectional", lens=[2, 5, 4])
    check_op_ort("GRU", ins, {"direction": "bidirectional", "linear_before_reset": 1,
                              "hidden_size": 4},
                 num_outputs=2)


@pytest.mark.parametrize("op", OPS)
def test_layout_1_is_layout_0_transposed(op):
    # onnxruntime has no batch-major layout; check it against kiln's own time-major result
    ins = make_inputs(op, 5, 3, 2, 4, "bidirectional", lens=[5, 2, 3])
    base = run_kiln(op, ins, {"direction": "bidirectional"}, num_outputs=OUTPUTS[op])
    swapped = [ins[0].swapaxes(0, 1), *ins[1:5], ins[5].swapaxes(0, 1)]
    if op == "LSTM":
        swapped += [ins[6].swapaxes(0, 1), ins[7]]
    outs = run_kiln(op, swapped, {"direction": "bidirectional", "layout": 1},
                    num_outputs=OUTPUTS[op])
    np.testing.assert_allclose(outs[0], base[0].transpose(2, 0, 1, 3), rtol=1e-6)
    for got, want in zip(outs[1:], base[1:]):
        np.testing.assert_allclose(got, want.swapaxes(0, 1), rtol=1e-6)


# --- inference -------------------------------------------------------------------------------

def test_recurrent_inference_shapes():
    y, y_h, y_c = infer("LSTM", T("S", "B", 3), T(2, 16, 3), T(2, 16, 4), outputs=3,
                        direction="bidirectional")
    assert y == T("S", 2, "B", 4) and y_h == T(2, "B", 4) and y_c == T(2, "B", 4)
    y, y_h = infer("GRU", T("B", "S", 3), T(1, 15, 3), T(1, 15, 5), outputs=2, layout=1,
                   hidden_size=5)
    assert y == T("B", "S", 1, 5) and y_h == T("B", 1, 5)
    (y,) = infer("RNN", TensorType(DType.float32, None), T(1, 6, 3), T(1, 6, 6))
    assert y == T(None, 1, None, 6)


@pytest.mark.parametrize("op,types,attrs", [
    ("LSTM", (T(5, 2, 3), T(1, 16, 3), T(1, 16, 4)), {"direction": "bidirectional"}),
    ("GRU", (T(5, 2, 3), T(1, 15, 3), T(1, 15, 4)), {}),               # R is not 3H x H
    ("RNN", (T(5, 2, 3), T(1, 4, 2), T(1, 4, 4)), {}),                 # input size differs
    ("RNN", (T(5, 2, 3), T(1, 4, 3), T(1, 4, 4), T(1, 4)), {}),        # bias is not 2H
    ("RNN", (T(5, 2, 3), T(1, 4, 3), T(1, 4, 4), None, T(2, dtype=DType.int64)), {}),
    ("RNN", (T(5, 2, 3), T(1, 4, 3), T(1, 4, 4), None, None, T(1, 3, 4)), {}),  # initial_h batch
    ("LSTM", (T(5, 2, 3), T(1, 16, 3), T(1, 16, 4), None, None, None, None, T(1, 8)), {}),
    ("RNN", (T(5, 2, 3), T(1, 4, 3), T(1, 4, 4)), {"hidden_size": 5}),
    ("GRU", (T(5, 2, 3, dtype=DType.int32), T(1, 12, 3, dtype=DType.int32),
             T(1, 12, 4, dtype=DType.int32)), {}),
    ("RNN", (T(5, 2), T(1, 4, 3), T(1, 4, 4)), {}),                     # X rank
])
def test_recurrent_bad_input(op, types, attrs):
    with pytest.raises(TypeInferenceError):
        infer(op, *types, **attrs)


@pytest.mark.parametrize("attrs", [{"activations": ["Gelu"]}, {"activations": ["Tanh", "Tanh"]},
                                   {"direction": "both"}, {"layout": 2}])
def test_recurrent_bad_attributes(attrs):
    with pytest.raises(AttributeValueError):
        infer("RNN", T(5, 2, 3), T(1, 4, 3), T(1, 4, 4), **attrs)
