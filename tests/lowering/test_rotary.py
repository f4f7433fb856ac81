"""RotaryEmbedding against the Graph IR interpreter: 4-D with position_ids, 3-D with per-token
caches, interleaved and split halves, a partial rotary_embedding_dim, float16, a symbolic
sequence length."""

import numpy as np
import pytest

from .harness import check_op, rand


@pytest.mark.parametrize("interleaved", [0, 1])
@pytest.mark.parametrize("rot", [0, 4])
def test_rotary_4d_with_positions(backend, interleaved, rot):
    b, h, s, d = 2, 3, 5, 8
    half = (rot or d) // 2
    pos = np.random.default_rng(0).integers(0, 11, (b, s)).astype(np.int64)
    check_op(backend, "RotaryEmbedding",
             [rand((b, h, s, d), seed=1), rand((11, half), seed=2), rand((11, half), seed=3), pos],
             {"interleaved": interleaved, "rotary_embedding_dim": rot}, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("interleaved", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_rotary_3d_without_positions(backend, interleaved, dtype):
    b, s, h, d = 2, 3, 2, 6
    check_op(backend, "RotaryEmbedding",
             [rand((b, s, h * d), dtype, seed=4), rand((b, s, 1), dtype, seed=5),
              rand((b, s, 1), dtype, seed=6)],
             {"num_heads": h, "rotary_embedding_dim": 2, "interleaved": interleaved},
             rtol=1e-2 if dtype == np.float16 else 1e-5, atol=1e-2 if dtype == np.float16 else 1e-5)


def test_rotary_symbolic_sequence(backend):
    pos = np.arange(6, dtype=np.int64).reshape(1, 6)
    check_op(backend, "RotaryEmbedding",
             [rand((1, 2, 6, 4), seed=7), rand((8, 2), seed=8), rand((8, 2), seed=9), pos],
             dims={0: (1, 2, "s", 4), 3: (1, "s")}, rtol=1e-5, atol=1e-5)
