"""Element types of kiln tensors.

Every dtype knows its short text name (used by the printer and parser), its NumPy dtype (the
interpreter's storage; bfloat16, float8 and int4 come from ml_dtypes) and its ONNX TensorProto
code. The ONNX codes live here, not in the front end, because they are a fact of the dtype, not
of the importer: this module does not import onnx.
"""

from __future__ import annotations

import enum

import ml_dtypes
import numpy as np


class DType(enum.Enum):
    # member = (text name, numpy dtype, ONNX TensorProto code)
    float32 = ("f32", np.dtype(np.float32), 1)
    uint8 = ("u8", np.dtype(np.uint8), 2)
    int8 = ("i8", np.dtype(np.int8), 3)
    uint16 = ("u16", np.dtype(np.uint16), 4)
    int16 = ("i16", np.dtype(np.int16), 5)
    int32 = ("i32", np.dtype(np.int32), 6)
    int64 = ("i64", np.dtype(np.int64), 7)
    string = ("str", np.dtype(object), 8)
    bool = ("bool", np.dtype(np.bool_), 9)
    float16 = ("f16", np.dtype(np.float16), 10)
    float64 = ("f64", np.dtype(np.float64), 11)
    uint32 = ("u32", np.dtype(np.uint32), 12)
    uint64 = ("u64", np.dtype(np.uint64), 13)
    complex64 = ("c64", np.dtype(np.complex64), 14)
    complex128 = ("c128", np.dtype(np.complex128), 15)
    bfloat16 = ("bf16", np.dtype(ml_dtypes.bfloat16), 16)
    float8e4m3fn = ("f8e4m3fn", np.dtype(ml_dtypes.float8_e4m3fn), 17)
    float8e4m3fnuz = ("f8e4m3fnuz", np.dtype(ml_dtypes.float8_e4m3fnuz), 18)
    float8e5m2 = ("f8e5m2", np.dtype(ml_dtypes.float8_e5m2), 19)
    float8e5m2fnuz = ("f8e5m2fnuz", np.dtype(ml_dtypes.float8_e5m2fnuz), 20)
    uint4 = ("u4", np.dtype(ml_dtypes.uint4), 21)
    int4 = ("i4", np.dtype(ml_dtypes.int4), 22)
    float4e2m1 = ("f4e2m1", np.dtype(ml_dtypes.float4_e2m1fn), 23)
    float8e8m0 = ("f8e8m0", np.dtype(ml_dtypes.float8_e8m0fnu), 24)
    uint2 = ("u2", np.dtype(ml_dtypes.uint2), 25)
    int2 = ("i2", np.dtype(ml_dtypes.int2), 26)

    def __init__(self, short: str, np_dtype: np.dtype, onnx_code: int):
        self.short = short
        self.np = np_dtype
        self.onnx = onnx_code

    def __repr__(self) -> str:
        return f"DType.{self.name}"

    def __str__(self) -> str:
        return self.short

    @property
    def is_float(self) -> bool:
        return self in FLOATS

    @property
    def is_int(self) -> bool:
        return self in INTEGERS

    @property
    def is_signed(self) -> bool:
        return self in SIGNED_INTEGERS or self in FLOATS

    @property
    def itemsize(self) -> int:
        return self.np.itemsize

    @staticmethod
    def from_short(short: str) -> "DType":
        return _BY_SHORT[short]

    @staticmethod
    def from_onnx(code: int) -> "DType":
        return _BY_ONNX[code]

    @staticmethod
    def from_numpy(dtype) -> "DType":
        dt = np.dtype(dtype)
        if dt.kind in ("U", "S", "O"):
            return DType.string
        return _BY_NUMPY[dt]


FLOATS = frozenset({
    DType.float16, DType.bfloat16, DType.float32, DType.float64,
    DType.float8e4m3fn, DType.float8e4m3fnuz, DType.float8e5m2, DType.float8e5m2fnuz,
    DType.float4e2m1, DType.float8e8m0,
})
SIGNED_INTEGERS = frozenset({DType.int2, DType.int4, DType.int8, DType.int16, DType.int32, DType.int64})
UNSIGNED_INTEGERS = frozenset({DType.uint2, DType.uint4, DType.uint8, DType.uint16, DType.uint32, DType.uint64})
INTEGERS = SIGNED_INTEGERS | UNSIGNED_INTEGERS
COMPLEX = frozenset({DType.complex64, DType.complex128})
NUMERIC = FLOATS | INTEGERS
ALL = frozenset(DType)

_BY_SHORT = {d.short: d for d in DType}
_BY_ONNX = {d.onnx: d for d in DType}
_BY_NUMPY = {d.np: d for d in DType if d is not DType.string}

# Aliases so code can write `dtypes.f32`.
f16, bf16, f32, f64 = DType.float16, DType.bfloat16, DType.float32, DType.float64
i8, i16, i32, i64 = DType.int8, DType.int16, DType.int32, DType.int64
u8, u16, u32, u64 = DType.uint8, DType.uint16, DType.uint32, DType.uint64
boolean, string = DType.bool, DType.string
