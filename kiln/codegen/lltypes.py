"""How Loop IR dtypes live in LLVM: in memory (storage) and in registers (compute), scalar or
as vectors of lanes; constants, splats and intrinsic declarations.

    dtype        storage   compute
    f32 / f64    float / double
    f16          half      float    (rounded back to half after every op)
    bf16         i16       float    (likewise, round-to-nearest-even by bit arithmetic)
    bool         i8        i1
    iN / uN      iN        iN       (signedness is the dtype's, not the type's)
    f8*, f4, e8m0 i8       float    (narrow.py: decoded on load, encoded on store)
    i4/u4/i2/u2  i8        i8       (kept wrapped to their width)
"""

from __future__ import annotations

import llvmlite.ir as ir
import numpy as np

from ..ir.dtypes import DType
from .options import CodegenError

I1, I8, I16, I32, I64 = (ir.IntType(n) for n in (1, 8, 16, 32, 64))
HALF, FLOAT, DOUBLE = ir.HalfType(), ir.FloatType(), ir.DoubleType()
PTR = ir.PointerType()
VOID = ir.VoidType()

_STORAGE = {
    DType.float32: FLOAT, DType.float64: DOUBLE, DType.float16: HALF, DType.bfloat16: I16,
    DType.bool: I8,
    DType.int8: I8, DType.int16: I16, DType.int32: I32, DType.int64: I64,
    DType.uint8: I8, DType.uint16: I16, DType.uint32: I32, DType.uint64: I64,
    # float8 / float4 / e8m0 / 2- and 4-bit integers: one byte each (see narrow.py)
    **{d: I8 for d in (DType.float8e4m3fn, DType.float8e4m3fnuz, DType.float8e5m2,
                       DType.float8e5m2fnuz, DType.float4e2m1, DType.float8e8m0,
                       DType.int4, DType.uint4, DType.int2, DType.uint2)},
}
HALF_FLOATS = frozenset({DType.float16, DType.bfloat16})


def check_dtype(dtype: DType) -> None:
    if dtype not in _STORAGE:
        raise CodegenError(f"dtype {dtype.short} is not supported by the native back end",
                           hint="supported: f16, bf16, f32, f64, bool, i8..i64, u8..u64, float8, "
                                "float4, e8m0, i4, u4, i2, u2")


def storage_type(dtype: DType) -> ir.Type:
    check_dtype(dtype)
    return _STORAGE[dtype]


def compute_type(dtype: DType, width: int = 1) -> ir.Type:
    check_dtype(dtype)
    if dtype in HALF_FLOATS or (dtype.is_float and _STORAGE[dtype] is I8):
        t = FLOAT
    elif dtype is DType.bool:
        t = I1
    else:
        t = _STORAGE[dtype]
    return ir.VectorType(t, width) if width > 1 else t


def lanes(value_or_type) -> int:
    """1 for a scalar, the lane count for a vector."""
    t = getattr(value_or_type, "type", value_or_type)
    return t.count if isinstance(t, ir.VectorType) else 1


def element_type(t: ir.Type) -> ir.Type:
    return t.element if isinstance(t, ir.VectorType) else t


def with_lanes(t: ir.Type, width: int) -> ir.Type:
    """The scalar type of `t` with `width` lanes (a scalar when width is 1)."""
    t = element_type(t)
    return ir.VectorType(t, width) if width > 1 else t


def is_float_type(t: ir.Type) -> bool:
    return isinstance(element_type(t), (ir.HalfType, ir.FloatType, ir.DoubleType))


def scalar_constant(dtype: DType, value) -> ir.Constant:
    """A Const's value as its compute type, rounded to its dtype first (0.1 as f16 is
    0.0999755859375, and wraps for integers: 200 as i8 is -56)."""
    t = compute_type(dtype)
    if dtype is DType.bool:
        return ir.Constant(I1, int(bool(value)))
    if dtype.is_float:
        if dtype is DType.bfloat16 or dtype.itemsize == 1:
            v = float(np.float32(dtype.np.type(value)))
        else:
            v = float(dtype.np.type(value))
        return ir.Constant(t, v)
    if dtype.itemsize == 1 and dtype.np.kind == "V":     # int4, uint2...: ml_dtypes wraps
        value = int(np.array(value).astype(dtype.np).astype(np.int64))
    bits = t.width
    v = int(value) & ((1 << bits) - 1)
    if v >= 1 << (bits - 1):
        v -= 1 << bits
    return ir.Constant(t, v)


# Vector constants by (type, value): llvmlite builds each one through an import statement and a
# list of lane constants, which made them a tenth of the emitter's time. Constants are immutable
# and belong to no module, so one object serves every use.
_VECTOR_CONSTANTS: dict = {}


def _cached_vector(t: ir.VectorType, key, make) -> ir.Constant:
    full = (str(t), key)
    c = _VECTOR_CONSTANTS.get(full)
    if c is None:
        if len(_VECTOR_CONSTANTS) > 4096:
            _VECTOR_CONSTANTS.clear()
        c = _VECTOR_CONSTANTS[full] = make()
    return c


def const(t: ir.Type, value) -> ir.Constant:
    """A constant of type `t` (scalar or vector; a vector gets `value` in every lane)."""
    if isinstance(t, ir.VectorType):
        if isinstance(value, (bool, int, float)) and value == value:
            return _cached_vector(t, (type(value), repr(value)),
                                  lambda: ir.Constant(t, [const(t.element, value)] * t.count))
        return ir.Constant(t, [const(t.element, value)] * t.count)
    if isinstance(value, ir.Constant):
        return value
    if isinstance(t, ir.IntType):
        value = int(value) & ((1 << t.width) - 1)
        if value >= 1 << (t.width - 1):
            value -= 1 << t.width
    return ir.Constant(t, value)


def splat(b: ir.IRBuilder, value: ir.Value, width: int) -> ir.Value:
    """`value` in every one of `width` lanes (a vector stays as it is)."""
    if width == 1 or isinstance(value.type, ir.VectorType):
        return value
    vt = ir.VectorType(value.type, width)
    if isinstance(value, ir.Constant):
        return ir.Constant(vt, [value] * width)
    undef = _cached_vector(vt, "undef", lambda: ir.Constant(vt, ir.Undefined))
    v = b.insert_element(undef, value, ir.Constant(I32, 0))
    return b.shuffle_vector(v, undef, const(ir.VectorType(I32, width), 0))


def lane_indices(width: int, t: ir.Type = I64) -> ir.Constant:
    """<0, 1, ..., width-1>."""
    vt = ir.VectorType(t, width)
    return _cached_vector(vt, "lanes", lambda: ir.Constant(vt, [ir.Constant(t, i)
                                                                for i in range(width)]))


def broadcast(b: ir.IRBuilder, *values):
    """Splat scalar operands to the lane count of the widest one."""
    width = max(lanes(v) for v in values)
    return [splat(b, v, width) for v in values]


def type_suffix(t: ir.Type) -> str:
    """LLVM's overload suffix: f32, v16f32, i64, v8i1, p0, v16p0."""
    if isinstance(t, ir.VectorType):
        return f"v{t.count}{type_suffix(t.element)}"
    if isinstance(t, ir.FloatType):
        return "f32"
    if isinstance(t, ir.DoubleType):
        return "f64"
    if isinstance(t, ir.HalfType):
        return "f16"
    if isinstance(t, ir.IntType):
        return f"i{t.width}"
    if isinstance(t, ir.PointerType):
        return "p0"
    raise CodegenError(f"no intrinsic suffix for LLVM type {t}")


def intrinsic(module: ir.Module, name: str, ret: ir.Type, args: list,
              overloads: list | None = None) -> ir.Function:
    """Declare (once) `llvm.<name>.<suffixes>`; `overloads` are the types mangled into the
    name (default: the return type)."""
    overloads = [ret] if overloads is None else overloads
    full = ".".join(["llvm." + name] + [type_suffix(t) for t in overloads])
    return declare(module, full, ret, args)


def declare(module: ir.Module, name: str, ret: ir.Type, args: list) -> ir.Function:
    try:
        return module.get_global(name)
    except KeyError:
        return ir.Function(module, ir.FunctionType(ret, args), name)
