"""CausalConvWithState and LinearAttention against the Graph IR interpreter: kernel sizes 1..4,
lengths 1 and odd, bias and past state present or not, SiLU, float16; every update rule of
linear attention with grouped heads, per-head and per-feature decay, beta per head or shared,
no past state, one step, float16."""

import numpy as np
import pytest

from tests.ir.ops.test_recurrent import la_inputs

from .harness import check_op, rand


@pytest.mark.parametrize("k", [1, 2, 4])
@pytest.mark.parametrize("n", [1, 7])
@pytest.mark.parametrize("bias,past", [(False, False), (True, True), (False, True)])
def test_causal_conv(backend, k, n, bias, past):
    b, c = 2, 3
    ins = [rand((b, c, n), seed=1), rand((c, 1, k), seed=2), rand((c,), seed=3) if bias else None,
           rand((b, c, k - 1), seed=4) if past else None]
    check_op(backend, "CausalConvWithState", ins, outputs=2, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("act", ["silu", "swish"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_causal_conv_activation(backend, act, dtype):
    ins = [rand((1, 4, 6), dtype, seed=5), rand((4, 1, 3), dtype, seed=6)]
    check_op(backend, "CausalConvWithState", ins, {"activation": act}, outputs=2,
             rtol=2e-3 if dtype == np.float16 else 1e-5, atol=2e-3 if dtype == np.float16 else 1e-5)


def test_causal_conv_output_only(backend):
    check_op(backend, "CausalConvWithState", [rand((2, 2, 5), seed=7), rand((2, 1, 3), seed=8)],
             rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rule", ["linear", "gated", "delta", "gated_delta"])
@pytest.mark.parametrize("hq,hkv", [(2, 2), (4, 2), (3, 1)])
def test_linear_attention(backend, rule, hq, hkv):
    check_op(backend, "LinearAttention", la_inputs(rule, hq=hq, hkv=hkv),
             {"update_rule": rule, "q_num_heads": hq, "kv_num_heads": hkv}, outputs=2,
             rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("ins,attrs", [
    (la_inputs("gated", per_head_decay=True, past=False), {"update_rule": "gated"}),
    (la_inputs("gated_delta", beta_last=1, t=1), {"scale": 0.7}),
    (la_inputs("linear", b=1, t=1, dk=1, dv=1), {"update_rule": "linear"}),
])
def test_linear_attention_variants(backend, ins, attrs):
    check_op(backend, "LinearAttention", ins, {"q_num_heads": 2, "kv_num_heads": 2, **attrs},
             outputs=2, rtol=1e-5, atol=1e-5)


def test_linear_attention_float16(backend):
    check_op(backend, "LinearAttention", la_inputs("delta", dtype=np.float16),
             {"q_num_heads": 2, "kv_num_heads": 2, "update_rule": "delta"}, outputs=2,
             rtol=2e-3, atol=2e-3)


def test_causal_conv_symbolic_length(backend):
    ins = [rand((1, 2, 9), seed=11), rand((2, 1, 3), seed=12), None, rand((1, 2, 2), seed=13)]
    check_op(backend, "CausalConvWithState", ins, outputs=2, dims={0: (1, 2, "t")}, rtol=1e-5,
             atol=1e-5)


def test_linear_attention_symbolic_batch_and_length(backend):
    ins = la_inputs("gated_delta", b=3, t=4)
    dims = {0: ("b", "t", 8), 1: ("b", "t", 8), 2: ("b", "t", 6), 3: ("b", 2, 4, 3),
            4: ("b", "t", 8), 5: ("b", "t", 2)}
    check_op(backend, "LinearAttention", ins, {"q_num_heads": 2, "kv_num_heads": 2}, outputs=2,
             dims=dims, rtol=1e-5, atol=1e-5)
