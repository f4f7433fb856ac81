"""Conversions between element types: Cast, CastLike (to another tensor's dtype) and BitCast.

Numeric casts go through NumPy's `astype` (ml_dtypes for bfloat16, float8, float4 and the 2- and
4-bit integers), which already follows ONNX's rules: round to nearest even, integers wrap around,
float to bool is `x != 0`. ONNX adds three things on top, done here:
  * `saturate` (default on) clamps out-of-range values to the largest finite float8 instead of
    making them inf or NaN;
  * float8e8m0 (a power of two, exponent only) rounds by `round_mode` (up, down, nearest);
  * strings parse as numbers ("1e-5", "INF", "-inf", "NaN") and numbers print as strings.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

from .. import dtypes as dt
from ..dtypes import DType
from ..opdef import FusionKind, InferContext
from ..types import TensorType
from .common import DTYPE, INT, STRING
from .elementwise import FLOAT8_TYPES, check_dtype
from .registry import define

K = FusionKind

CASTABLE = dt.ALL - dt.COMPLEX
BITCASTABLE = dt.ALL - frozenset({dt.string})
_FLOAT_BOUNDS = {d: (float(ml_dtypes.finfo(d.np).min), float(ml_dtypes.finfo(d.np).max))
                 for d in FLOAT8_TYPES}
_E8M0 = DType.float8e8m0


def cast_array(x: np.ndarray, to: DType, saturate: bool = True, round_mode: str = "up"):
    """x converted to dtype `to` by ONNX's Cast rules."""
    if to is dt.string:
        return _to_strings(x)
    if x.dtype == object:
        x = _parse_strings(x, to)
    if to is _E8M0:
        return _to_e8m0(x, saturate, round_mode)
    if to in FLOAT8_TYPES and saturate:
        lo, hi = _FLOAT_BOUNDS[to]
        x = np.clip(x, lo, hi)
    return np.asarray(x).astype(to.np)


def _to_strings(x: np.ndarray) -> np.ndarray:
    if x.dtype == object:
        return x.copy()
    if x.dtype.kind not in "biuf":   # bfloat16, float8...: print their float32 value
        x = x.astype(np.float32)
    return x.astype(np.str_).astype(object)


def _parse_strings(x: np.ndarray, to: DType) -> np.ndarray:
    """Numbers from text: floats (with INF/NaN spellings), integers, or booleans."""
    def text(s):
        return s.decode() if isinstance(s, bytes) else str(s)

    flat = [text(s).strip() for s in x.reshape(-1)]
    if to.is_int:
        wide = np.int64 if to.is_signed else np.uint64
        values = np.array([_parse_int(s) for s in flat], dtype=object).astype(wide)
    elif to is dt.boolean:
        values = np.array([_parse_bool(s) for s in flat], dtype=np.bool_)
    else:
        values = np.array([float(s) for s in flat], dtype=np.float64)
    return values.reshape(x.shape)


def _parse_int(s: str) -> int:
    try:
        return int(s)
    except ValueError:
        return int(float(s))


def _parse_bool(s: str) -> bool:
    low = s.lower()
    if low in ("true", "false"):
        return low == "true"
    return float(s) != 0


def _to_e8m0(x: np.ndarray, saturate: bool, round_mode: str) -> np.ndarray:
    """The exponent of x's float32 value, rounded by round_mode; NaN and inf give NaN (0xFF)."""
    bits = np.asarray(x, dtype=np.float32).view(np.uint32)
    exponent = ((bits >> 23) & 0xFF).astype(np.uint16)
    special = exponent == 0xFF
    if round_mode == "up":
        round_up = (bits & 0x7FFFFF) != 0
    elif round_mode == "nearest":
        guard = (bits & 0x400000) != 0
        rest = (bits & 0x3FFFFF) != 0
        round_up = guard & (rest | (exponent > 0))
    else:
        round_up = np.zeros(bits.shape, dtype=bool)
    round_up &= ~special
    if saturate:
        round_up &= exponent != 0xFE
    exponent = np.where(special, 0xFF, exponent + round_up).astype(np.uint8)
    return exponent.view(_E8M0.np)


_ROUND_MODES = ("up", "down", "nearest")


def _cast_infer(ctx: InferContext):
    t = ctx.tensor(0)
    check_dtype(ctx, 0, CASTABLE)
    to = ctx.attrs.to
    if to not in CASTABLE:
        ctx.fail(f"cannot cast to {to}", hint="complex tensors cannot be cast")
    return [TensorType(to, t.shape)]


Cast = define(
    "Cast", ["input"], ["output"], kind=K.ELEMENTWISE, since_version=28,
    attrs=[DTYPE("to"), INT("saturate", 1, choices=(0, 1)),
           STRING("round_mode", "up", choices=_ROUND_MODES)],
    infer=_cast_infer,
    reference=lambda ctx, x: cast_array(x, ctx.attrs.to, bool(ctx.attrs.saturate),
                                        ctx.attrs.round_mode),
    doc="output = input converted to dtype `to` (float8 saturating unless saturate=0).")


def _cast_like_infer(ctx: InferContext):
    t = ctx.tensor(0)
    check_dtype(ctx, 0, CASTABLE)
    return [TensorType(check_dtype(ctx, 1, CASTABLE), t.shape)]


CastLike = define(
    "CastLike", ["input", "target_type"], ["output"], kind=K.ELEMENTWISE, since_version=25,
    attrs=[INT("saturate", 1, choices=(0, 1)), STRING("round_mode", "up", choices=_ROUND_MODES)],
    infer=_cast_like_infer,
    reference=lambda ctx, x, like: cast_array(x, DType.from_numpy(like.dtype),
                                              bool(ctx.attrs.saturate), ctx.attrs.round_mode),
    doc="output = input converted to the dtype of target_type (only its dtype is read).")


def bit_width(d: DType) -> int:
    return {DType.int4: 4, DType.uint4: 4, DType.float4e2m1: 4,
            DType.int2: 2, DType.uint2: 2}.get(d, 8 * d.itemsize)


def _bitcast_infer(ctx: InferContext):
    t = ctx.tensor(0)
    src, to = check_dtype(ctx, 0, BITCASTABLE), ctx.attrs.to
    if to not in BITCASTABLE or bit_width(src) != bit_width(to):
        ctx.fail(f"cannot reinterpret {src} ({bit_width(src)} bits) as {to} "
                 f"({bit_width(to) if to in BITCASTABLE else 'no fixed'} bits)",
                 hint="BitCast needs two non-string dtypes of one bit width; use Cast to convert")
    return [TensorType(to, t.shape)]


BitCast = define(
    "BitCast", ["input"], ["output"], kind=K.ELEMENTWISE, since_version=26,
    attrs=[DTYPE("to")], infer=_bitcast_infer,
    reference=lambda ctx, x: np.ascontiguousarray(x).view(ctx.attrs.to.np).reshape(x.shape),
    doc="output = the bits of input read as dtype `to` (same bit width).")
