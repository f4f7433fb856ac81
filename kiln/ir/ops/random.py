"""Random ops: RandomNormal, RandomUniform, their *Like forms, Multinomial and Bernoulli.

All are STATEFUL: passes never fold, merge or reorder them. Without a seed each run draws fresh
numbers. With a seed the op is reproducible: the seed starts NumPy's Mersenne Twister
(`numpy.random.RandomState`), the generator onnx.reference uses too, so a seeded normal or
uniform draw matches it. Other runtimes use other generators: ONNX promises no cross-runtime
agreement for these ops.
"""

from __future__ import annotations

import numpy as np

from ...errors import AttributeValueError
from ..dtypes import DType
from ..opdef import FusionKind, InferContext, Trait
from ..types import TensorType
from .common import DTYPE, FLOAT, INT, INTS
from .registry import define

K = FusionKind
_FLOATS = (DType.bfloat16, DType.float16, DType.float32, DType.float64)


def _generator(seed: float | None) -> np.random.RandomState:
    if seed is None or np.isnan(seed):
        return np.random.RandomState(np.random.default_rng().integers(0, 2**32))
    return np.random.RandomState(int(seed) % 2**32)


def _float_dtype(ctx: InferContext, dtype: DType) -> DType:
    if dtype not in _FLOATS:
        ctx.fail(f"{ctx.op.name} produces floating-point values; dtype {dtype.short} is not one",
                 hint="use f16, bf16, f32 or f64 (add a Cast after the op for integers)")
    return dtype


def _like_dtype(ctx: InferContext) -> DType:
    return ctx.attrs.dtype if ctx.attrs.dtype is not None else ctx.tensor(0).dtype


def _check_shape_attr(ctx: InferContext) -> tuple:
    shape = ctx.attrs.shape
    if any(d < 0 for d in shape):
        raise AttributeValueError(f"shape must not have negative entries, got {list(shape)}",
                                  node=ctx.node)
    return tuple(shape)


def _scaled(draw: np.ndarray, scale: float, shift: float, dtype: DType) -> np.ndarray:
    """draw * scale + shift, rounded once into dtype."""
    return (draw * scale + shift).astype(dtype.np)


# --- normal and uniform ----------------------------------------------------------------------

def _infer_fixed(ctx: InferContext):
    return [TensorType(_float_dtype(ctx, ctx.attrs.dtype), _check_shape_attr(ctx))]


def _infer_like(ctx: InferContext):
    return [TensorType(_float_dtype(ctx, _like_dtype(ctx)), ctx.tensor(0).shape)]


def _normal(ctx, shape, dtype: DType):
    a = ctx.attrs
    return _scaled(_generator(a.seed).standard_normal(shape), a.scale, a.mean, dtype)


def _uniform(ctx, shape, dtype: DType):
    a = ctx.attrs
    return _scaled(_generator(a.seed).random_sample(shape), a.high - a.low, a.low, dtype)


_NORMAL_ATTRS = [FLOAT("mean", 0.0), FLOAT("scale", 1.0), FLOAT("seed", None)]
_UNIFORM_ATTRS = [FLOAT("low", 0.0), FLOAT("high", 1.0), FLOAT("seed", None)]

RandomNormal = define(
    "RandomNormal", [], ["output"], kind=K.OPAQUE, traits=[Trait.STATEFUL], since_version=22,
    attrs=[INTS("shape"), DTYPE("dtype", DType.float32), *_NORMAL_ATTRS],
    infer=_infer_fixed,
    reference=lambda ctx: _normal(ctx, tuple(ctx.attrs.shape), ctx.attrs.dtype),
    doc="Samples of N(mean, scale^2) of the given shape.")

RandomUniform = define(
    "RandomUniform", [], ["output"], kind=K.OPAQUE, traits=[Trait.STATEFUL], since_version=22,
    attrs=[INTS("shape"), DTYPE("dtype", DType.float32), *_UNIFORM_ATTRS],
    infer=_infer_fixed,
    reference=lambda ctx: _uniform(ctx, tuple(ctx.attrs.shape), ctx.attrs.dtype),
    doc="Samples of U[low, high) of the given shape.")

RandomNormalLike = define(
    "RandomNormalLike", ["input"], ["output"], kind=K.OPAQUE, traits=[Trait.STATEFUL],
    since_version=22, attrs=[DTYPE("dtype", None), *_NORMAL_ATTRS],
    infer=_infer_like,
    reference=lambda ctx, x: _normal(ctx, x.shape, ctx.attrs.dtype or DType.from_numpy(x.dtype)),
    doc="Samples of N(mean, scale^2) with input's shape (and dtype unless dtype is set).")

RandomUniformLike = define(
    "RandomUniformLike", ["input"], ["output"], kind=K.OPAQUE, traits=[Trait.STATEFUL],
    since_version=22, attrs=[DTYPE("dtype", None), *_UNIFORM_ATTRS],
    infer=_infer_like,
    reference=lambda ctx, x: _uniform(ctx, x.shape, ctx.attrs.dtype or DType.from_numpy(x.dtype)),
    doc="Samples of U[low, high) with input's shape (and dtype unless dtype is set).")


# --- Bernoulli -------------------------------------------------------------------------------

def _infer_bernoulli(ctx: InferContext):
    t = ctx.tensor(0)
    if t.dtype not in _FLOATS:
        ctx.fail(f"Bernoulli takes probabilities as floats, got {t.dtype.short}")
    dtype = _like_dtype(ctx)
    if not (dtype.is_float or dtype.is_int or dtype is DType.bool):
        ctx.fail(f"Bernoulli cannot produce {dtype.short}")
    return [TensorType(dtype, t.shape)]


def _run_bernoulli(ctx, p):
    dtype = ctx.attrs.dtype or DType.from_numpy(p.dtype)
    draw = _generator(ctx.attrs.seed).binomial(1, np.clip(p.astype(np.float64), 0, 1))
    return np.asarray(draw).astype(dtype.np)


Bernoulli = define(
    "Bernoulli", ["input"], ["output"], kind=K.OPAQUE, traits=[Trait.STATEFUL],
    since_version=22, attrs=[DTYPE("dtype", None), FLOAT("seed", None)],
    infer=_infer_bernoulli, reference=_run_bernoulli,
    doc="1 with probability input, else 0 (in dtype, default the input's).")


# --- Multinomial -----------------------------------------------------------------------------

def _infer_multinomial(ctx: InferContext):
    t = ctx.tensor(0)
    a = ctx.attrs
    if t.dtype not in _FLOATS:
        ctx.fail(f"Multinomial takes float log-probabilities, got {t.dtype.short}")
    if t.rank is not None and t.rank != 2:
        ctx.fail(f"Multinomial takes a [batch, classes] input, got rank {t.rank}")
    if a.dtype not in (DType.int32, DType.int64):
        ctx.fail(f"Multinomial produces i32 or i64 class indices, not {a.dtype.short}")
    if a.sample_size < 1:
        raise AttributeValueError(f"sample_size must be >= 1, got {a.sample_size}",
                                  node=ctx.node)
    batch = None if t.shape is None else t.shape[0]
    return [TensorType(a.dtype, (batch, a.sample_size))]


def _run_multinomial(ctx, logits):
    a = ctx.attrs
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True, initial=-np.inf))
    p /= p.sum(axis=1, keepdims=True)
    rng = _generator(a.seed)
    cdf = np.cumsum(p, axis=1)
    u = rng.random_sample((z.shape[0], a.sample_size))
    picks = np.array([np.searchsorted(c, row, side="right") for c, row in zip(cdf, u)],
                     dtype=np.int64).reshape(z.shape[0], a.sample_size)
    return np.minimum(picks, z.shape[1] - 1).astype(a.dtype.np)


Multinomial = define(
    "Multinomial", ["input"], ["output"], kind=K.OPAQUE, traits=[Trait.STATEFUL],
    since_version=22,
    attrs=[DTYPE("dtype", DType.int32), INT("sample_size", 1), FLOAT("seed", None)],
    infer=_infer_multinomial, reference=_run_multinomial,
    doc="sample_size class indices per row, drawn from softmax(input).")
