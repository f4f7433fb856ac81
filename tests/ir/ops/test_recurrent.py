import numpy as np
import pytest

from kiln.errors import AttributeValueError, TypeInferenceError
from kiln.ir import GraphBuilder
from kiln.ir.dtypes import DType
from kiln.ir.ops import get_op
from kiln.ir.types import TensorType
from tests.ir.ops.harness import check_op, run_kiln

rng = np.random.default_rng(0)
f32 = np.float32
TOL = {"rtol": 1e-5, "atol": 1e-5}


def randn(*shape, dtype=f32, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def T(*shape, dtype=DType.float32):
    return TensorType(dtype, shape)


def infer(op, *types, outputs=2, **attrs):
    b = GraphBuilder("t")
    vals = [None if t is None else b.input(f"x{i}", t) for i, t in enumerate(types)]
    return [v.type for v in b.add(get_op(op), vals, attrs, outputs=outputs)]


# --- LinearAttention -------------------------------------------------------------------------

def la_inputs(rule, b=2, t=5, hq=2, hkv=2, dk=4, dv=3, past=True, per_head_decay=False,
              beta_last=None, dtype=f32):
    q, k, v = randn(b, t, hq * dk, dtype=dtype), randn(b, t, hkv * dk, dtype=dtype), \
        randn(b, t, hkv * dv, dtype=dtype)
    k = (k / np.linalg.norm(k.reshape(b, t, hkv, dk), axis=-1).repeat(dk, -1)).astype(dtype)
    state = randn(b, hkv, dk, dv, dtype=dtype, scale=0.1) if past else None
    decay = beta = None
    if rule in ("gated", "gated_delta"):
        decay = -np.abs(randn(b, t, hkv if per_head_decay else hkv * dk, dtype=dtype)) * 0.5
    if rule in ("delta", "gated_delta"):
        beta = (1 / (1 + np.exp(-randn(b, t, beta_last or hkv)))).astype(dtype)
    return [q, k, v, state, decay, beta]


@pytest.mark.parametrize("rule", ["linear", "gated", "delta", "gated_delta"])
@pytest.mark.parametrize("hq,hkv", [(2, 2), (4, 2), (3, 1)])
def test_linear_attention(rule, hq, hkv):
    check_op("LinearAttention", la_inputs(rule, hq=hq, hkv=hkv),
             {"update_rule": rule, "q_num_heads": hq, "kv_num_heads": hkv}, num_outputs=2, **TOL)


def test_linear_attention_variants():
    heads = {"q_num_heads": 2, "kv_num_heads": 2}
    check_op("LinearAttention", la_inputs("gated", per_head_decay=True, past=False),
             {**heads, "update_rule": "gated"}, num_outputs=2, **TOL)
    check_op("LinearAttention", la_inputs("gated_delta", beta_last=1, t=1),
             {**heads, "scale": 0.7}, num_outputs=2, **TOL)
    check_op("LinearAttention", la_inputs("linear", b=1, t=1, dk=1, dv=1),
             {**heads, "update_rule": "linear"}, num_outputs=2, **TOL)
    check_op("LinearAttention", la_inputs("delta", dtype=np.float16),
             {**heads, "update_rule": "delta"}, num_outputs=2, rtol=2e-3, atol=2e-3)


def test_linear_attention_prefill_equals_token_by_token():
    attrs = {"update_rule": "gated_delta", "q_num_heads": 4, "kv_num_heads": 2}
    q, k, v, s, g, bt = la_inputs("gated_delta", hq=4, hkv=2, t=4)
    y_all, s_all = run_kiln("LinearAttention", [q, k, v, s, g, bt], attrs, num_outputs=2)
    for i in range(4):
        y_i, s = run_kiln("LinearAttention", [x[:, i:i + 1] for x in (q, k, v)] +
                          [s, g[:, i:i + 1], bt[:, i:i + 1]], attrs, num_outputs=2)
        np.testing.assert_allclose(y_i[:, 0], y_all[:, i], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s, s_all, rtol=1e-5, atol=1e-6)


def test_linear_attention_inference():
    y, s = infer("LinearAttention", T("b", "t", 32), T("b", "t", 16), T("b", "t", 12),
                 update_rule="linear", q_num_heads=4, kv_num_heads=2)
    assert y.shape == ("b", "t", 24) and s.shape == ("b", 2, 8, 6)


@pytest.mark.parametrize("types,attrs", [
    ((T(1, 2, 8), T(1, 2, 8), T(1, 2, 8)), {"update_rule": "gated"}),             # no decay
    ((T(1, 2, 8), T(1, 2, 8), T(1, 2, 8), None, T(1, 2, 2)), {"update_rule": "linear"}),
    ((T(1, 2, 8), T(1, 2, 8), T(1, 2, 8)), {"update_rule": "linear", "q_num_heads": 3}),
    ((T(1, 2, 8), T(1, 2, 4), T(1, 2, 8)), {"update_rule": "linear"}),            # dk differs
    ((T(2, 8), T(2, 8), T(2, 8)), {"update_rule": "linear"}),                     # rank 2
    ((T(1, 2, 8), T(1, 2, 8), T(1, 2, 8), T(1, 2, 4, 5)), {"update_rule": "linear"}),
])
def test_linear_attention_bad(types, attrs):
    attrs = {"q_num_heads": 2, "kv_num_heads": 2, **attrs}
    with pytest.raises(TypeInferenceError):
        infer("LinearAttention", *types, **attrs)


def test_linear_attention_bad_rule_and_missing_heads():
    with pytest.raises(AttributeValueError):
        infer("LinearAttention", T(1, 2, 8), T(1, 2, 8), T(1, 2, 8), update_rule="softmax",
              q_num_heads=2, kv_num_heads=2)
    with pytest.raises(AttributeValueError):
        infer("LinearAttention", T(1, 2, 8), T(1, 2, 8), T(1, 2, 8), update_rule="linear")


# --- CausalConvWithState ---------------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 2, 4])
@pytest.mark.parametrize("n", [1, 2, 7])
@pytest.mark.parametrize("bias,past", [(False, False), (True, True)])
def test_causal_conv(k, n, bias, past):
    b, c = 2, 3
    inputs = [randn(b, c, n), randn(c, 1, k), randn(c) if bias else None,
              randn(b, c, k - 1) if past else None]
    check_op("CausalConvWithState", inputs, num_outputs=2, **TOL)


@pytest.mark.parametrize("act", ["silu", "swish"])
def test_causal_conv_activation(act):
    check_op("CausalConvWithState", [randn(1, 4, 6), randn(4, 1, 3), randn(4), randn(1, 4, 2)],
             {"activation": act}, num_outputs=2, **TOL)
    check_op("CausalConvWithState", [randn(1, 4, 6, dtype=np.float16),
                                     randn(4, 1, 3, dtype=np.float16)],
             {"activation": act}, num_outputs=2, rtol=2e-3, atol=2e-3)


def test_causal_conv_streaming_equals_whole_sequence():
    x, w, bias = randn(1, 2, 6), randn(2, 1, 3), randn(2)
    y_all, s_all = run_kiln("CausalConvWithState", [x, w, bias], num_outputs=2)
    state = np.zeros((1, 2, 2), f32)
    for i in range(6):
        y_i, state = run_kiln("CausalConvWithState", [x[:, :, i:i + 1], w, bias, state],
                              num_outputs=2)
        np.testing.assert_allclose(y_i[:, :, 0], y_all[:, :, i], rtol=1e-6)
    np.testing.assert_array_equal(state, s_all)


def test_causal_conv_inference_and_bad():
    y, s = infer("CausalConvWithState", T("b", 8, "n"), T(8, 1, 4))
    assert y.shape == ("b", 8, "n") and s.shape == ("b", 8, 3)
    with pytest.raises(TypeInferenceError):
        infer("CausalConvWithState", T(1, 8, 5), T(4, 1, 4))          # channels differ
    with pytest.raises(TypeInferenceError):
        infer("CausalConvWithState", T(1, 8, 5), T(8, 2, 4))          # not depthwise
    with pytest.raises(TypeInferenceError):
        infer("CausalConvWithState", T(8, 5), T(8, 1, 4))             # rank 2
    with pytest.raises(TypeInferenceError):
        infer("CausalConvWithState", T(1, 8, 5), T(8, 1, 4), None, T(1, 8, 2))  # state length
    with pytest.raises(AttributeValueError):
        infer("CausalConvWithState", T(1, 8, 5), T(8, 1, 4), activation="relu")
