"""The sub-byte-precision element types in LLVM: float8 (e4m3fn, e4m3fnuz, e5m2, e5m2fnuz),
float4e2m1, float8e8m0 and the 2- and 4-bit integers. Each is stored one element per byte (as
ml_dtypes lays them out) and computed in float32 (floats) or i8 (integers, kept wrapped to
their width). Every rule for turning bytes into values and back lives here, as branch-free
bit arithmetic that works on scalars and vectors alike.

float32 -> narrow float rounds to nearest even, as ml_dtypes' astype does (no saturation: an
out-of-range value becomes Inf where the type has it, else NaN; float4e2m1 has neither and
clamps). ONNX's `saturate` is a clamp the lowering puts before the conversion.
"""

from __future__ import annotations

from dataclasses import dataclass

import llvmlite.ir as ir

from ..ir.dtypes import DType
from .lltypes import FLOAT, I32, const, intrinsic, lanes, with_lanes


@dataclass(frozen=True)
class Format:
    ebits: int
    mbits: int
    bias: int
    max_code: int        # largest finite magnitude code
    overflow: str        # "nan", "inf" or "clamp": what an out-of-range magnitude becomes
    fnuz: bool = False   # no negative zero; 0x80 is the one NaN

    @property
    def sign_shift(self) -> int:
        return self.ebits + self.mbits


FORMATS = {
    DType.float8e4m3fn: Format(4, 3, 7, 0x7E, "nan"),
    DType.float8e4m3fnuz: Format(4, 3, 8, 0x7F, "nan", fnuz=True),
    DType.float8e5m2: Format(5, 2, 15, 0x7B, "inf"),
    DType.float8e5m2fnuz: Format(5, 2, 16, 0x7F, "nan", fnuz=True),
    DType.float4e2m1: Format(2, 1, 1, 0x7, "clamp"),
}
E8M0 = DType.float8e8m0
NARROW_FLOATS = frozenset(FORMATS) | {E8M0}
NARROW_INTS = {DType.int4: 4, DType.uint4: 4, DType.int2: 2, DType.uint2: 2}
NARROW = NARROW_FLOATS | frozenset(NARROW_INTS)

_QNAN = 0x7FC00000


def _c(t, v):
    return const(t, v)


def wrap_int(b: ir.IRBuilder, v: ir.Value, dtype: DType) -> ir.Value:
    """An i8 value wrapped to the width of a 2- or 4-bit integer dtype (sign-extended when
    signed)."""
    bits = NARROW_INTS[dtype]
    if dtype.is_signed:
        shift = _c(v.type, 8 - bits)
        return b.ashr(b.shl(v, shift), shift)
    return b.and_(v, _c(v.type, (1 << bits) - 1))


def int_to_storage(b: ir.IRBuilder, v: ir.Value, dtype: DType) -> ir.Value:
    """The byte ml_dtypes stores for a 2- or 4-bit integer: its low bits, upper bits clear."""
    return b.and_(v, _c(v.type, (1 << NARROW_INTS[dtype]) - 1))


def decode(b: ir.IRBuilder, byte: ir.Value, dtype: DType) -> ir.Value:
    """A stored byte (i8, scalar or vector) -> its float32 value; NaN is the quiet NaN with the
    code's sign (fnuz: negative), as ml_dtypes converts."""
    n = lanes(byte)
    i32, f32 = with_lanes(I32, n), with_lanes(FLOAT, n)
    code = b.zext(byte, i32)
    if dtype is E8M0:
        normal = b.bitcast(b.shl(code, _c(i32, 23)), f32)
        v = b.select(b.icmp_unsigned("==", code, _c(i32, 0)), _c(f32, 2.0 ** -127), normal)
        return b.select(b.icmp_unsigned("==", code, _c(i32, 0xFF)),
                        b.bitcast(_c(i32, _QNAN), f32), v)
    f = FORMATS[dtype]
    code = b.and_(code, _c(i32, (1 << (f.sign_shift + 1)) - 1))
    sign = b.shl(b.lshr(code, _c(i32, f.sign_shift)), _c(i32, 31))
    e = b.and_(b.lshr(code, _c(i32, f.mbits)), _c(i32, (1 << f.ebits) - 1))
    m = b.and_(code, _c(i32, (1 << f.mbits) - 1))
    normal = b.or_(b.shl(b.add(e, _c(i32, 127 - f.bias)), _c(i32, 23)),
                   b.shl(m, _c(i32, 23 - f.mbits)))
    sub = b.bitcast(b.fmul(b.sitofp(m, f32), _c(f32, 2.0 ** (1 - f.bias - f.mbits))), i32)
    mag = b.select(b.icmp_unsigned("==", e, _c(i32, 0)), sub, normal)
    mag = b.or_(mag, sign)
    if f.fnuz:
        nan = b.icmp_unsigned("==", code, _c(i32, 0x80))
        return b.bitcast(b.select(nan, _c(i32, _QNAN | 1 << 31), mag), f32)
    if f.overflow == "inf":      # exponent all ones: Inf (mantissa 0) or NaN, payload kept
        top = b.icmp_unsigned("==", e, _c(i32, (1 << f.ebits) - 1))
        special = b.or_(_c(i32, 0x7F800000), b.shl(m, _c(i32, 23 - f.mbits)))
        mag = b.select(top, b.or_(special, sign), mag)
    elif f.overflow == "nan":    # all-ones magnitude is NaN
        allones = (1 << f.sign_shift) - 1
        nan = b.icmp_unsigned("==", b.and_(code, _c(i32, allones)), _c(i32, allones))
        mag = b.select(nan, b.or_(_c(i32, _QNAN), sign), mag)
    return b.bitcast(mag, f32)


def encode(b: ir.IRBuilder, x: ir.Value, dtype: DType) -> ir.Value:
    """A float32 value (scalar or vector) -> the code of the nearest `dtype` value (ties to
    even), as i32 with the stored byte in its low bits."""
    n = lanes(x)
    i32, f32 = with_lanes(I32, n), with_lanes(FLOAT, n)
    if dtype is E8M0:
        return _encode_e8m0(b, x, i32, f32)
    f = FORMATS[dtype]
    bits = b.bitcast(x, i32)
    sign = b.lshr(bits, _c(i32, 31))
    ax = b.bitcast(b.and_(bits, _c(i32, 0x7FFFFFFF)), f32)
    # the spacing of dtype values around |x|: 2^(exponent - mbits), at least the subnormal step
    scale = b.bitcast(b.and_(bits, _c(i32, 0x7F800000)), f32)
    minq = 2.0 ** (1 - f.bias - f.mbits)
    q = b.fmul(scale, _c(f32, 2.0 ** -f.mbits))
    q = b.select(b.fcmp_ordered("<", q, _c(f32, minq)), _c(f32, minq), q)
    steps = b.fdiv(ax, q)                                  # exact: q is a power of two
    steps = b.call(intrinsic(b.module, "roundeven", f32, [f32]), [steps])
    r = b.bitcast(b.fmul(steps, q), i32)
    normal = b.sub(b.lshr(r, _c(i32, 23 - f.mbits)), _c(i32, (127 - f.bias) << f.mbits))
    # below the smallest normal the code is the step count itself (2^mbits is the first normal)
    tiny = b.fcmp_ordered("<", ax, _c(f32, 2.0 ** (1 - f.bias)))
    small = b.fptosi(b.select(tiny, steps, _c(f32, 0.0)), i32)
    mag = b.select(tiny, small, normal)
    nan = b.fcmp_unordered("uno", x, x)
    over = b.and_(b.icmp_signed(">", mag, _c(i32, f.max_code)), b.xor(nan, _c(nan.type, 1)))
    if f.fnuz:
        signed = b.or_(mag, b.shl(sign, _c(i32, 7)))
        code = b.select(b.icmp_unsigned("==", mag, _c(i32, 0)), _c(i32, 0), signed)
        return b.select(b.or_(nan, over), _c(i32, 0x80), code)
    top = {"nan": (1 << f.sign_shift) - 1, "inf": f.max_code + 1, "clamp": f.max_code}
    mag = b.select(over, _c(i32, top[f.overflow]), mag)
    if f.overflow == "clamp":    # float4e2m1 has no NaN: ml_dtypes gives zero of the other sign
        mag = b.select(nan, _c(i32, 0), mag)
        sign = b.select(nan, b.xor(sign, _c(i32, 1)), sign)
    elif f.overflow == "nan":
        mag = b.select(nan, _c(i32, (1 << f.sign_shift) - 1), mag)
    else:                        # e5m2 keeps a NaN's payload (its top mantissa bits, not 0)
        payload = b.and_(b.lshr(bits, _c(i32, 23 - f.mbits)), _c(i32, (1 << f.mbits) - 1))
        payload = b.select(b.icmp_unsigned("==", payload, _c(i32, 0)), _c(i32, 2), payload)
        mag = b.select(nan, b.or_(_c(i32, f.max_code + 1), payload), mag)
    return b.or_(mag, b.shl(sign, _c(i32, f.sign_shift)))


def _encode_e8m0(b, x, i32, f32):
    """float32 -> float8e8m0 for the values the lowering feeds it: powers of two (exact, as
    ml_dtypes converts them) and NaN; zero, negatives and NaN give 0xFF. Other values keep
    their exponent (rounded down): ONNX's rounding modes are the lowering's work (Cast)."""
    bits = b.bitcast(x, i32)
    exponent = b.lshr(bits, _c(i32, 23))
    bad = b.fcmp_unordered("<=", x, _c(f32, 0.0))          # true for NaN too
    return b.select(bad, _c(i32, 0xFF), b.and_(exponent, _c(i32, 0xFF)))


def quiet(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """NaN as the quiet NaN of its sign (ml_dtypes' conversions do not keep payloads; loads
    and stores do, so a copied e5m2 NaN keeps its bits)."""
    n = lanes(x)
    i32 = with_lanes(I32, n)
    signed = b.or_(b.and_(b.bitcast(x, i32), _c(i32, 1 << 31)), _c(i32, _QNAN))
    return b.select(b.fcmp_unordered("uno", x, x), b.bitcast(signed, x.type), x)


def round_float(b: ir.IRBuilder, x: ir.Value, dtype: DType) -> ir.Value:
    """A float32 value rounded to `dtype`'s nearest value, held as float32."""
    x = quiet(b, x)
    byte = b.trunc(encode(b, x, dtype), with_lanes(ir.IntType(8), lanes(x)))
    return decode(b, byte, dtype)


def to_storage(b: ir.IRBuilder, v: ir.Value, dtype: DType) -> ir.Value:
    """A compute value -> the byte stored for it."""
    if dtype in NARROW_INTS:
        return int_to_storage(b, v, dtype)
    return b.trunc(encode(b, v, dtype), with_lanes(ir.IntType(8), lanes(v)))


def to_compute(b: ir.IRBuilder, byte: ir.Value, dtype: DType) -> ir.Value:
    """A stored byte -> its compute value."""
    if dtype in NARROW_INTS:
        return wrap_int(b, byte, dtype)
    return decode(b, byte, dtype)


__all__ = ["NARROW", "NARROW_FLOATS", "NARROW_INTS", "FORMATS", "decode", "encode",
           "round_float", "to_storage", "to_compute", "wrap_int"]


def float_to_int_specials(b: ir.IRBuilder, x: ir.Value, v: ir.Value, dst: DType) -> ir.Value:
    """ml_dtypes' narrow float -> integer: NaN is 0 and ±Inf the integer's (for the 2- and
    4-bit ones: the byte's) largest / smallest value; `v` is the finite values' result."""
    bits = 8 * dst.itemsize
    hi = (1 << (bits - 1)) - 1 if dst.is_signed else (1 << bits) - 1
    lo = -(1 << (bits - 1)) if dst.is_signed else 0
    if dst in NARROW_INTS:
        width = NARROW_INTS[dst]
        hi, lo = (_wrap(hi, width, dst.is_signed), _wrap(lo, width, dst.is_signed))
    t, xt = v.type, x.type
    v = b.select(b.fcmp_ordered("==", x, _c(xt, float("inf"))), _c(t, hi), v)
    v = b.select(b.fcmp_ordered("==", x, _c(xt, float("-inf"))), _c(t, lo), v)
    return b.select(b.fcmp_unordered("uno", x, x), _c(t, 0), v)


def _wrap(value: int, width: int, signed: bool) -> int:
    value &= (1 << width) - 1
    return value - (1 << width) if signed and value >= 1 << (width - 1) else value
