"""FlexAttention against the Graph IR interpreter: grouped-query heads, an explicit scale,
float16 (softmax in float32) and float64, score_mod and prob_mod subgraphs lowered inline,
softmax_precision, a symbolic sequence length."""

import numpy as np
import pytest

from kiln.ir import GraphBuilder
from kiln.ir.dtypes import DType
from kiln.ir.types import TensorType

from .harness import check_op, rand


def qkv(b=2, hq=3, hkv=3, sq=4, skv=5, d=8, dv=6, dtype=np.float32):
    return [rand((b, hq, sq, d), dtype, seed=1, low=-1, high=1),
            rand((b, hkv, skv, d), dtype, seed=2, low=-1, high=1),
            rand((b, hkv, skv, dv), dtype, seed=3, low=-1, high=1)]


@pytest.mark.parametrize("hq,hkv", [(3, 3), (4, 2), (3, 1)])
@pytest.mark.parametrize("attrs", [{}, {"scale": 0.3}])
def test_flex_attention(backend, hq, hkv, attrs):
    check_op(backend, "FlexAttention", qkv(hq=hq, hkv=hkv), attrs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_flex_attention_dtypes(backend, dtype):
    check_op(backend, "FlexAttention", qkv(dtype=dtype, sq=3, skv=7))


def test_flex_attention_softmax_precision(backend):
    check_op(backend, "FlexAttention", qkv(dtype=np.float16),
             {"softmax_precision": DType.float64})


def mod(op, c, dtype=DType.float32):
    sb = GraphBuilder("mod")
    x = sb.input("s", TensorType(dtype, ("B", "H", "L", "S")))
    sb.output(getattr(sb, op)(x, sb.constant(np.asarray(c, dtype.np), "c")))
    return sb.graph


def test_flex_attention_score_and_prob_mods(backend):
    attrs = {"score_mod": mod("Mul", 0.5), "prob_mod": mod("Add", 0.25)}
    check_op(backend, "FlexAttention", qkv(hq=4, hkv=2), attrs, rtol=1e-5, atol=1e-5)


def test_flex_attention_score_mod_with_tanh_softcap(backend):
    sb = GraphBuilder("softcap")
    s = sb.input("s", TensorType(DType.float32, ("B", "H", "L", "S")))
    c = sb.constant(np.float32(2.0), "cap")
    sb.output(sb.Mul(sb.Tanh(sb.Div(s, c)), c))
    check_op(backend, "FlexAttention", qkv(), {"score_mod": sb.graph}, rtol=1e-5, atol=1e-6)


def test_flex_attention_symbolic_lengths(backend):
    check_op(backend, "FlexAttention", qkv(sq=3, skv=6), {"scale": 0.2},
             dims={0: (2, 3, "l", 8), 1: (2, 3, "s", 8), 2: (2, 3, "s", 6)}, rtol=1e-5,
             atol=1e-6)
