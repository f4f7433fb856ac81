"""Hypothesis strategies for random, valid Graph IR graphs (shared by IR and pass tests).

Every value in a generated graph has one shape S (random rank, static and symbolic dims), so any
two values can be combined; reductions keep dims and broadcast back. Constants are small (printed
inline) or large (printed by reference) and may hold NaN/Inf.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from kiln.ir import GraphBuilder, TensorType
from kiln.ir.dtypes import DType

UNARY = ["Relu", "Neg", "Abs", "Exp", "Tanh", "Sigmoid", "Identity", "Floor"]
BINARY = ["Add", "Sub", "Mul", "Max", "Min", "Div"]
DIMS = [1, 2, 3, 5, "batch", "n"]
SPECIAL = [0.0, 1.0, -1.5, 2.0, 1e-3, float("nan"), float("inf")]


@st.composite
def graphs(draw, max_nodes: int = 10):
    rank = draw(st.integers(1, 3))
    shape = tuple(draw(st.sampled_from(DIMS)) for _ in range(rank))
    b = GraphBuilder(draw(st.sampled_from(["main", "g", "model_1"])))
    t = TensorType(DType.float32, shape)
    pool = [b.input(f"x{i}", t) for i in range(draw(st.integers(1, 3)))]
    static_last = shape[-1] if isinstance(shape[-1], int) else 1
    for _ in range(draw(st.integers(1, max_nodes))):
        kind = draw(st.sampled_from(["unary", "binary", "const", "leaky", "softmax", "reduce",
                                     "transpose", "cast", "where"]))
        a = draw(st.sampled_from(pool))
        if kind == "unary":
            v = getattr(b, draw(st.sampled_from(UNARY)))(a)
        elif kind == "binary":
            v = getattr(b, draw(st.sampled_from(BINARY)))(a, draw(st.sampled_from(pool)))
        elif kind == "const":
            cshape = draw(st.sampled_from([(), (static_last,), (4, 10)]))
            n = int(np.prod(cshape, dtype=int))
            data = draw(st.lists(st.sampled_from(SPECIAL), min_size=n, max_size=n))
            c = b.constant(np.array(data, np.float32).reshape(cshape), "c")
            if cshape == (4, 10):   # large: printed by reference; reduced to a scalar
                c = b.ReduceSum(c, keepdims=0)
            v = getattr(b, draw(st.sampled_from(["Add", "Mul", "Sub"])))(a, c)
        elif kind == "leaky":
            v = b.LeakyRelu(a, alpha=draw(st.sampled_from([0.01, 0.5, 2.0])))
        elif kind == "softmax":
            v = b.Softmax(a, axis=draw(st.integers(-rank, rank - 1)))
        elif kind == "reduce":
            axes = b.constant(np.array([draw(st.integers(-rank, rank - 1))], np.int64), "axes")
            v = b.Sub(a, b.ReduceMean(a, axes, keepdims=1))
        elif kind == "transpose":
            perm = draw(st.permutations(range(rank)))
            inv = [perm.index(i) for i in range(rank)]
            v = b.Transpose(b.Transpose(a, perm=list(perm)), perm=inv)
        elif kind == "cast":
            v = b.Cast(b.Cast(a, to=DType.float64), to=DType.float32)
        else:
            v = b.Where(b.Greater(a, draw(st.sampled_from(pool))), a, draw(st.sampled_from(pool)))
        pool.append(v)
    outs = [pool[-1]] + draw(st.lists(st.sampled_from(pool[:-1]), max_size=2, unique_by=id))
    b.output(*[o for o in outs])
    return b.graph


def random_inputs(graph, seed: int = 0, sizes: dict | None = None) -> dict:
    """Random float inputs for a generated graph; symbolic dims get the sizes given (default 3)."""
    rng = np.random.default_rng(seed)
    sizes = {"batch": 2, "n": 3, **(sizes or {})}
    feeds = {}
    for v in graph.inputs:
        shape = [sizes[d] if isinstance(d, str) else d for d in v.type.shape]
        feeds[v.name] = rng.standard_normal(shape).astype(v.type.dtype.np)
    return feeds
