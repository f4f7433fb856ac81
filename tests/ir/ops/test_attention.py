import warnings

import ml_dtypes
import numpy as np
import onnx
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

from kiln.errors import AttributeValueError, TypeInferenceError
from kiln.ir import GraphBuilder
from kiln.ir.dtypes import DType
from kiln.ir.ops import get_op
from kiln.ir.types import TensorType
from tests.ir.ops.harness import OPSET, check_op, run_kiln

rng = np.random.default_rng(0)
f32 = np.float32
TOL = {"rtol": 1e-5, "atol": 1e-6}


def randn(*shape, dtype=f32):
    return rng.standard_normal(shape).astype(dtype)


def T(*shape, dtype=DType.float32):
    return TensorType(dtype, shape)


def infer(op, *types, outputs=1, **attrs):
    b = GraphBuilder("t")
    vals = [None if t is None else b.input(f"x{i}", t) for i, t in enumerate(types)]
    return [v.type for v in b.add(get_op(op), vals, attrs, outputs=outputs)]


def qkv4(b=2, hq=3, hkv=3, sq=4, skv=5, d=8, dv=6, dtype=f32):
    return randn(b, hq, sq, d, dtype=dtype), randn(b, hkv, skv, d, dtype=dtype), \
        randn(b, hkv, skv, dv, dtype=dtype)


# --- Attention: 4-D --------------------------------------------------------------------------

@pytest.mark.parametrize("hq,hkv", [(3, 3), (4, 2), (6, 1)])
@pytest.mark.parametrize("attrs", [{}, {"is_causal": 1}, {"scale": 0.3}, {"softcap": 2.0}])
def test_attention_4d(hq, hkv, attrs):
    check_op("Attention", list(qkv4(hq=hq, hkv=hkv)), attrs, **TOL)


@pytest.mark.parametrize("mask_shape", [(5,), (4, 5), (3, 4, 5), (2, 3, 4, 5), (2, 1, 4, 5),
                                        (4, 3)])   # last one is short: padded with -inf
@pytest.mark.parametrize("causal", [0, 1])
def test_attention_masks(mask_shape, causal):
    q, k, v = qkv4()
    if len(mask_shape) == 1 and causal:
        # onnx.reference cannot combine a 1-D mask with is_causal: compare with the 2-D tiling
        mask = randn(*mask_shape)
        (got,) = run_kiln("Attention", [q, k, v, mask], {"is_causal": 1})
        (want,) = check_op("Attention", [q, k, v, np.tile(mask, (4, 1))], {"is_causal": 1})
        np.testing.assert_allclose(got, want, rtol=1e-6)
        return
    check_op("Attention", [q, k, v, randn(*mask_shape)], {"is_causal": causal}, **TOL)
    check_op("Attention", [q, k, v, rng.random(mask_shape) > 0.3], {"is_causal": causal}, **TOL)


def test_attention_fully_masked_rows_are_zero():
    q, k, v = qkv4(sq=3, skv=3)
    mask = np.ones((3, 3), bool)
    mask[1] = False
    y, _, _, qk = check_op("Attention", [q, k, v, mask], {"qk_matmul_output_mode": 3},
                           num_outputs=4, **TOL)
    assert not np.isnan(y).any() and np.all(y[:, :, 1] == 0) and np.all(qk[:, :, 1] == 0)


@pytest.mark.parametrize("hq,hkv", [(2, 2), (4, 2)])
@pytest.mark.parametrize("causal", [0, 1])
def test_attention_past_and_present(hq, hkv, causal):
    q, k, v = qkv4(hq=hq, hkv=hkv, sq=2, skv=2)
    pk, pv = randn(2, hkv, 5, 8), randn(2, hkv, 5, 6)
    y, ck, cv = check_op("Attention", [q, k, v, randn(2, 7), pk, pv], {"is_causal": causal},
                         num_outputs=3, **TOL)
    assert ck.shape == (2, hkv, 7, 8) and cv.shape == (2, hkv, 7, 6)
    np.testing.assert_array_equal(ck[:, :, :5], pk)


@pytest.mark.parametrize("mode", [0, 1, 2, 3])
def test_attention_qk_matmul_output(mode):
    q, k, v = qkv4()
    check_op("Attention", [q, k, v, randn(4, 5)], {"qk_matmul_output_mode": mode, "is_causal": 1},
             num_outputs=4, **TOL)


def test_attention_qk_output_mode0_is_raw_even_with_softcap():
    # The spec says mode 0 is the raw product; onnx.reference returns the soft-capped one here.
    q, k, v = qkv4(b=1, hq=1, hkv=1, sq=2, skv=3, d=4, dv=4)
    qk = run_kiln("Attention", [q, k, v], {"softcap": 0.5}, num_outputs=4)[3]
    np.testing.assert_allclose(qk, q @ np.swapaxes(k, -1, -2) / 2.0, rtol=1e-5)


@pytest.mark.parametrize("left,right,causal", [(2, 0, 0), (2, 1, 0), (1, -1, 1), (0, 0, 0)])
def test_attention_windows(left, right, causal):
    q, k, v = qkv4(sq=5, skv=5)
    check_op("Attention", [q, k, v], {"left_window_size": left, "right_window_size": right,
                                      "is_causal": causal}, **TOL)
    pk, pv = randn(2, 3, 3, 8), randn(2, 3, 3, 6)
    check_op("Attention", [q, k, v, None, pk, pv], {"left_window_size": left,
             "right_window_size": right, "is_causal": causal}, **TOL)


def test_attention_nonpad_kv_seqlen():
    q, k, v = qkv4(hq=4, hkv=2, sq=2, skv=7)
    lens = np.array([3, 7], np.int64)
    check_op("Attention", [q, k, v, None, None, None, lens], {"is_causal": 1}, **TOL)
    check_op("Attention", [q, k, v, rng.random((4, 2, 7)) > 0.2, None, None, lens], **TOL)
    check_op("Attention", [q, k, v, None, None, None, np.array([1, 4], np.int64)],
             {"is_causal": 1, "left_window_size": 1}, **TOL)


def test_attention_float16_and_softmax_precision():
    q, k, v = qkv4(dtype=np.float16)
    check_op("Attention", [q, k, v], {"is_causal": 1}, rtol=2e-3, atol=2e-3)
    check_op("Attention", [q, k, v], {"softmax_precision": DType.float32,
                                      "qk_matmul_output_mode": 3}, num_outputs=4,
             rtol=2e-3, atol=2e-3)
    check_op("Attention", list(qkv4(dtype=np.float64)), {"is_causal": 1}, rtol=1e-10)


def test_attention_bfloat16_runs():
    q, k, v = (x.astype(ml_dtypes.bfloat16) for x in qkv4())
    (y,) = run_kiln("Attention", [q, k, v])
    assert y.dtype == ml_dtypes.bfloat16 and y.shape == (2, 3, 4, 6)
    (want,) = run_kiln("Attention", [x.astype(f32) for x in (q, k, v)])
    np.testing.assert_allclose(y.astype(f32), want, atol=5e-2)


# --- Attention: 3-D --------------------------------------------------------------------------

@pytest.mark.parametrize("hq,hkv", [(3, 3), (4, 2), (2, 1)])
def test_attention_3d(hq, hkv):
    b, sq, skv, d, dv = 2, 3, 5, 4, 6
    q, k, v = randn(b, sq, hq * d), randn(b, skv, hkv * d), randn(b, skv, hkv * dv)
    heads = {"q_num_heads": hq, "kv_num_heads": hkv}
    check_op("Attention", [q, k, v], heads, **TOL)
    check_op("Attention", [q, k, v, randn(sq, skv)], {**heads, "is_causal": 1}, **TOL)
    pk, pv = randn(b, hkv, 2, d), randn(b, hkv, 2, dv)
    check_op("Attention", [q, k, v, None, pk, pv], {**heads, "qk_matmul_output_mode": 2},
             num_outputs=4, **TOL)


def test_attention_inference():
    y, pk, pv, qk = infer("Attention", T("b", 8, "s", 16), T("b", 2, "t", 16),
                          T("b", 2, "t", 32), None, T("b", 2, "p", 16), T("b", 2, "p", 32),
                          outputs=4)
    assert y.shape == ("b", 8, "s", 32)
    assert pk.shape == ("b", 2, None, 16) and pv.shape == ("b", 2, None, 32)
    assert qk.shape == ("b", 8, "s", None)
    y, pk, _, _ = infer("Attention", T(1, 3, 16), T(1, 5, 8), T(1, 5, 10), None,
                        T(1, 2, 7, 4), T(1, 2, 7, 5), outputs=4, q_num_heads=4, kv_num_heads=2)
    assert y.shape == (1, 3, 20) and pk.shape == (1, 2, 12, 4)
    (y,) = infer("Attention", TensorType(DType.float32, None), T(1, 2, 3), T(1, 2, 3))
    assert y.shape is None


@pytest.mark.parametrize("types,attrs", [
    ((T(1, 2, 3, 4), T(1, 2, 5, 6), T(1, 2, 5, 6)), {}),              # head sizes differ
    ((T(1, 3, 3, 4), T(1, 2, 5, 4), T(1, 2, 5, 4)), {}),              # 3 heads over 2 kv heads
    ((T(1, 3, 12), T(1, 5, 8), T(1, 5, 8)), {}),                      # 3-D without head counts
    ((T(1, 3, 12), T(1, 5, 8), T(1, 5, 8)), {"q_num_heads": 5, "kv_num_heads": 2}),
    ((T(1, 2, 3, 4), T(1, 2, 5, 4), T(1, 2, 5)), {}),                 # mixed ranks
    ((T(1, 2, 3, 4, dtype=DType.int32),) * 3, {}),                    # integer inputs
    ((T(1, 2, 3, 4), T(1, 2, 5, 4), T(1, 2, 5, 4), None, T(1, 2, 1, 4)), {}),  # past_key alone
])
def test_attention_bad(types, attrs):
    with pytest.raises(TypeInferenceError):
        infer("Attention", *types, **attrs)


def test_attention_bad_mode():
    with pytest.raises(AttributeValueError):
        infer("Attention", T(1, 2, 3, 4), T(1, 2, 3, 4), T(1, 2, 3, 4), qk_matmul_output_mode=4)


# --- RotaryEmbedding -------------------------------------------------------------------------

@pytest.mark.parametrize("interleaved", [0, 1])
@pytest.mark.parametrize("rot", [0, 4])
def test_rotary_4d_with_positions(interleaved, rot):
    b, h, s, d = 2, 3, 5, 8
    half = (rot or d) // 2
    pos = rng.integers(0, 11, (b, s)).astype(np.int64)
    check_op("RotaryEmbedding", [randn(b, h, s, d), randn(11, half), randn(11, half), pos],
             {"interleaved": interleaved, "rotary_embedding_dim": rot}, **TOL)


@pytest.mark.parametrize("interleaved", [0, 1])
def test_rotary_3d_without_positions(interleaved):
    b, s, h, d = 1, 7, 2, 6
    check_op("RotaryEmbedding", [randn(b, s, h * d), randn(b, s, d // 2), randn(b, s, d // 2)],
             {"interleaved": interleaved, "num_heads": h}, **TOL)
    check_op("RotaryEmbedding", [randn(b, s, h * d, dtype=np.float16),
                                 randn(b, s, 1, dtype=np.float16), randn(b, s, 1, dtype=np.float16)],
             {"num_heads": h, "rotary_embedding_dim": 2}, rtol=1e-3, atol=1e-3)


def test_rotary_bad():
    with pytest.raises(TypeInferenceError):     # 3-D needs num_heads
        infer("RotaryEmbedding", T(1, 4, 8), T(1, 4, 4), T(1, 4, 4))
    with pytest.raises(TypeInferenceError):     # cache width != head/2
        infer("RotaryEmbedding", T(1, 2, 4, 8), T(1, 4, 3), T(1, 4, 3))
    with pytest.raises(TypeInferenceError):     # odd rotary dim
        infer("RotaryEmbedding", T(1, 2, 4, 8), T(9, 2), T(9, 2), T(1, 4, dtype=DType.int64),
              rotary_embedding_dim=5)
    with pytest.raises(TypeInferenceError):     # rank 2
        infer("RotaryEmbedding", T(4, 8), T(4, 4), T(4, 4))
    (t,) = infer("RotaryEmbedding", T("b", 2, "s", 8), T("b", "s", 4), T("b", "s", 4))
    assert t.shape == ("b", 2, "s", 8)


# --- FlexAttention ---------------------------------------------------------------------------

def _flex_onnx(inputs, attrs, mod_graphs):
    names = ["Q", "K", "V"]
    node = helper.make_node("FlexAttention", names, ["Y"], domain="ai.onnx.preview",
                            **attrs, **mod_graphs)
    ins = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(x.dtype), x.shape)
           for n, x in zip(names, inputs)]
    g = helper.make_graph([node], "t", ins, [helper.make_value_info("Y", onnx.TypeProto())])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET),
                                                helper.make_opsetid("ai.onnx.preview", 1)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ReferenceEvaluator(model).run(None, dict(zip(names, inputs)))[0]


@pytest.mark.parametrize("hq,hkv", [(2, 2), (4, 2)])
@pytest.mark.parametrize("attrs", [{}, {"scale": 0.25}])
def test_flex_attention(hq, hkv, attrs):
    check_op("FlexAttention", list(qkv4(hq=hq, hkv=hkv)), attrs, **TOL)


def test_flex_attention_float16_and_double():
    check_op("FlexAttention", list(qkv4(dtype=np.float16)), rtol=2e-3, atol=2e-3)
    check_op("FlexAttention", list(qkv4(dtype=np.float64)), rtol=1e-10)


def test_flex_attention_score_and_prob_mods():
    q, k, v = qkv4(b=1, hq=2, hkv=1, sq=3, skv=4)

    def kiln_mod(op, c):
        sb = GraphBuilder("mod")
        x = sb.input("s", TensorType(DType.float32, ("B", "H", "L", "S")))
        sb.output(getattr(sb, op)(x, sb.constant(np.float32(c), "c")))
        return sb.graph

    def onnx_mod(op, c):
        info = helper.make_tensor_value_info
        return helper.make_graph(
            [helper.make_node(op, ["s", "c"], ["o"])], "mod",
            [info("s", onnx.TensorProto.FLOAT, ["B", "H", "L", "S"])],
            [info("o", onnx.TensorProto.FLOAT, ["B", "H", "L", "S"])],
            [helper.make_tensor("c", onnx.TensorProto.FLOAT, [], [c])])

    (got,) = run_kiln("FlexAttention", [q, k, v], {"score_mod": kiln_mod("Add", 1.5),
                                                   "prob_mod": kiln_mod("Add", 0.25)})
    want = _flex_onnx([q, k, v], {}, {"score_mod": onnx_mod("Add", 1.5),
                                      "prob_mod": onnx_mod("Add", 0.25)})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    (plain,) = run_kiln("FlexAttention", [q, k, v])
    np.testing.assert_allclose(got, plain + 0.25 * v.sum(axis=2, keepdims=True).repeat(2, 1),
                               rtol=1e-5, atol=1e-5)


def test_flex_attention_bad():
    with pytest.raises(TypeInferenceError):
        infer("FlexAttention", T(1, 2, 3), T(1, 2, 3), T(1, 2, 3))
    with pytest.raises(TypeInferenceError):
        infer("FlexAttention", T(1, 3, 3, 4), T(1, 2, 5, 4), T(1, 2, 5, 4))
    (t,) = infer("FlexAttention", T("b", 4, "l", 8), T("b", 2, "s", 8), T("b", 2, "s", 5))
    assert t.shape == ("b", 4, "l", 5)
