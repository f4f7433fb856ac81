"""Attention against the Graph IR interpreter: grouped-query heads, scale, softcap, causal and
sliding windows, bool/float/short/broadcast masks, fully masked rows, past and present KV,
nonpad_kv_seqlen, every qk_matmul_output mode, 3-D packed heads, float16 with and without
softmax_precision, float64, a symbolic sequence length."""

import numpy as np
import pytest

from kiln.ir.dtypes import DType

from .harness import check_op, rand

TOL = {"rtol": 1e-5, "atol": 1e-5}


def qkv(b=2, hq=3, hkv=3, sq=4, skv=5, d=8, dv=6, dtype=np.float32, seed=0):
    return [rand((b, hq, sq, d), dtype, seed=seed, low=-1, high=1),
            rand((b, hkv, skv, d), dtype, seed=seed + 1, low=-1, high=1),
            rand((b, hkv, skv, dv), dtype, seed=seed + 2, low=-1, high=1)]


@pytest.mark.parametrize("hq,hkv,attrs", [(3, 3, {}), (4, 2, {"is_causal": 1}),
                                           (3, 1, {"scale": 0.3}), (4, 2, {"softcap": 2.0})])
def test_attention_4d(backend, hq, hkv, attrs):
    check_op(backend, "Attention", qkv(hq=hq, hkv=hkv), attrs, **TOL)


@pytest.mark.parametrize("mask_shape,kind,causal", [
    ((4, 5), "float", 0), ((4, 3), "bool", 1), ((2, 1, 4, 5), "bool", 0),
    ((1, 3, 1, 5), "float", 1), ((4, 3), "float", 0)])
def test_attention_masks(backend, mask_shape, kind, causal):
    mask = rand(mask_shape, seed=5) if kind == "float" else \
        np.random.default_rng(5).random(mask_shape) > 0.3
    check_op(backend, "Attention", [*qkv(), mask], {"is_causal": causal}, **TOL)


def test_attention_fully_masked_rows_are_zero(backend):
    mask = np.ones((4, 5), bool)
    mask[1] = False
    check_op(backend, "Attention", [*qkv(), mask], {"qk_matmul_output_mode": 3}, outputs=4, **TOL)


@pytest.mark.parametrize("hq,hkv,causal", [(2, 2, 0), (4, 2, 1)])
def test_attention_past_and_present(backend, hq, hkv, causal):
    q, k, v = qkv(hq=hq, hkv=hkv, sq=3, skv=3)
    pk, pv = rand((2, hkv, 4, 8), seed=7), rand((2, hkv, 4, 6), seed=8)
    check_op(backend, "Attention", [q, k, v, rand((3, 7), seed=9), pk, pv],
             {"is_causal": causal}, outputs=3, **TOL)


@pytest.mark.parametrize("mode", [0, 1, 2, 3])
def test_attention_qk_matmul_output(backend, mode):
    check_op(backend, "Attention", [*qkv(b=1, hq=2, hkv=2), rand((4, 5), seed=10)],
             {"qk_matmul_output_mode": mode, "is_causal": 1, "softcap": 1.5}, outputs=4, **TOL)


@pytest.mark.parametrize("left,right", [(1, -1), (2, 1)])
def test_attention_windows(backend, left, right):
    q, k, v = qkv(sq=5, skv=5)
    check_op(backend, "Attention", [q, k, v], {"left_window_size": left,
                                               "right_window_size": right}, **TOL)
    pk, pv = rand((2, 3, 2, 8), seed=11), rand((2, 3, 2, 6), seed=12)
    check_op(backend, "Attention", [q, k, v, None, pk, pv], {"left_window_size": left,
                                                              "right_window_size": right},
             outputs=3, **TOL)


def test_attention_nonpad_kv_seqlen(backend):
    q, k, v = qkv(sq=2, skv=7)
    lens = np.array([5, 7], np.int64)
    check_op(backend, "Attention", [q, k, v, None, None, None, lens], {"is_causal": 1}, **TOL)
    mask = np.random.default_rng(13).random((2, 7)) > 0.2
    check_op(backend, "Attention", [q, k, v, mask, None, None, lens], **TOL)


def test_attention_float16_and_precision(backend):
    ins = qkv(dtype=np.float16)
    check_op(backend, "Attention", ins, {"is_causal": 1}, rtol=2e-3, atol=2e-3)
    check_op(backend, "Attention", ins, {"softmax_precision": DType.float32, "is_causal": 1},
             rtol=2e-3, atol=2e-3)


def test_attention_float64(backend):
    check_op(backend, "Attention", qkv(dtype=np.float64), {"is_causal": 1}, rtol=1e-10,
             atol=1e-10)


@pytest.mark.parametrize("hq,hkv", [(4, 2)])
def test_attention_3d(backend, hq, hkv):
    b, sq, skv, d = 2, 3, 4, 4
    q = rand((b, sq, hq * d), seed=14)
    k, v = rand((b, skv, hkv * d), seed=15), rand((b, skv, hkv * d), seed=16)
    heads = {"q_num_heads": hq, "kv_num_heads": hkv}
    check_op(backend, "Attention", [q, k, v], heads, **TOL)
    check_op(backend, "Attention", [q, k, v, rand((sq, skv), seed=17)], {**heads, "is_causal": 1},
             **TOL)
    pk, pv = rand((b, hkv, 2, d), seed=18), rand((b, hkv, 2, d), seed=19)
    check_op(backend, "Attention", [q, k, v, None, pk, pv], {**heads, "qk_matmul_output_mode": 2},
             outputs=4, **TOL)


def test_attention_symbolic_sequence(backend):
    q, k, v = qkv(sq=3, skv=3)
    check_op(backend, "Attention", [q, k, v], {"is_causal": 1},
             dims={0: (2, 3, "s", 8), 1: (2, 3, "s", 8), 2: (2, 3, "s", 6)}, **TOL)
