"""Every Loop IR operation over every dtype, native vs the Loop IR interpreter.

Each test builds ONE program with a kernel per (op, dtype, loop kind) — a SERIAL loop (scalar
code) and a VECTORIZED one (vector code with a masked tail: 37 elements) — so a whole op family
costs one JIT compile.
"""

from __future__ import annotations

import numpy as np
import pytest

from kiln.codegen import compile_program
from kiln.ir.dtypes import DType
from kiln.loops import Binary, Cast, Compare, Const, LoopKind, Select, Unary

from .loopkit import ALL, FLOATS, INTS, ProgramBuilder, assert_same, run_both, wrap

KINDS = (LoopKind.SERIAL, LoopKind.VECTORIZED)

FLOAT_BINARY = ["add", "sub", "mul", "div", "mod", "fmod", "max", "min", "pow", "atan2"]
INT_BINARY = ["add", "sub", "mul", "div", "floordiv", "mod", "fmod", "max", "min", "and", "or",
              "xor", "shl", "shr", "pow"]
BOOL_BINARY = ["add", "mul", "max", "min", "and", "or", "xor"]
B_DOMAIN = {"div": "divisor", "floordiv": "divisor", "mod": "divisor", "fmod": "divisor",
            "shl": "shift", "shr": "shift", "pow": "exponent"}

BASIC_FLOAT_UNARY = ["neg", "abs", "sign", "floor", "ceil", "round", "trunc", "sqrt", "rsqrt",
                     "reciprocal", "isnan", "isinf"]
MATH_UNARY = ["exp", "log", "tanh", "sigmoid", "erf", "sin", "cos", "tan", "asin", "acos", "atan",
              "sinh", "cosh", "asinh", "acosh", "atanh"]
INT_UNARY = ["neg", "abs", "not", "sign"]
EXACT_UNARY = {"neg", "abs", "sign", "floor", "ceil", "round", "trunc", "sqrt", "isnan", "isinf",
               "not", "reciprocal"}

# tolerance of transcendental results (libm / kiln's math vs NumPy), per dtype
MATH_RTOL = {DType.float16: 2e-3, DType.bfloat16: 1.6e-2, DType.float32: 2e-6,
             DType.float64: 1e-13}
MATH_ATOL = {DType.float16: 1e-3, DType.bfloat16: 1e-2, DType.float32: 1e-6,
             DType.float64: 1e-13}


def _tolerance(dtype: DType, exact: bool):
    return (0.0, 0.0) if exact else (MATH_RTOL[dtype], MATH_ATOL[dtype])


def _check(builder: ProgramBuilder, tolerances: dict) -> None:
    program = builder.program()
    _, got, want = run_both(program, builder.data)
    for buf, g, w in zip(program.outputs, got, want):
        rtol, atol = tolerances.get(buf.name, (0.0, 0.0))
        assert_same(buf.name, g, w, rtol, atol)


def test_binary_ops_all_dtypes():
    pb, tol = ProgramBuilder("binary"), {}
    for dtype in ALL:
        ops = FLOAT_BINARY if dtype.is_float else BOOL_BINARY if dtype is DType.bool else INT_BINARY
        for op in ops:
            a_domain = ("small" if op in B_DOMAIN and dtype.is_int else
                        "finite" if op == "pow" else "full")
            a = pb.input(dtype, a_domain, "a")
            b = pb.input(dtype, B_DOMAIN.get(op, "full") if dtype is not DType.bool else "full",
                         "b")
            for kind in KINDS:
                out = pb.elementwise(f"{op}_{dtype.short}", dtype,
                                     lambda i, a=a, b=b, op=op: Binary(op, a[i], b[i]), kind)
                if dtype.is_float:
                    tol[out.name] = _tolerance(dtype, op not in ("pow", "atan2"))
    _check(pb, tol)


def test_unary_ops_all_dtypes():
    pb, tol = ProgramBuilder("unary"), {}
    for dtype in ALL:
        ops = (BASIC_FLOAT_UNARY if dtype.is_float else ["not"] if dtype is DType.bool else
               INT_UNARY)
        a = pb.input(dtype, "full" if dtype.is_float else "small")
        for op in ops:
            out_dtype = DType.bool if op in ("isnan", "isinf") else dtype
            for kind in KINDS:
                out = pb.elementwise(f"{op}_{dtype.short}", out_dtype,
                                     lambda i, a=a, op=op: Unary(op, a[i]), kind)
                if dtype.is_float:
                    tol[out.name] = _tolerance(dtype, op in EXACT_UNARY)
    _check(pb, tol)


def test_math_functions():
    """Transcendentals go through one switch (kiln's mathlib, else LLVM/libm): every function
    in vector code for f32 and f64, a few in scalar code and for the half types (the
    functions' accuracy is tested with the math library itself)."""
    pb, tol = ProgramBuilder("math"), {}
    for dtype in FLOATS:
        a = pb.input(dtype, "full")
        for op in MATH_UNARY:
            kinds = [LoopKind.VECTORIZED] if dtype in (DType.float32, DType.float64) else []
            if op in ("exp", "tanh", "sin", "erf"):
                kinds = KINDS if dtype is DType.float32 else [LoopKind.VECTORIZED]
            for kind in kinds:
                out = pb.elementwise(f"{op}_{dtype.short}", dtype,
                                     lambda i, a=a, op=op: Unary(op, a[i]), kind)
                tol[out.name] = _tolerance(dtype, False)
    _check(pb, tol)


def test_full_range_integer_unary_ops():
    """neg/abs/not/sign on extremes (MIN wraps like NumPy)."""
    pb = ProgramBuilder("unary_full")
    for dtype in INTS:
        a = pb.input(dtype, "full")
        for op in INT_UNARY:
            for kind in KINDS:
                pb.elementwise(f"{op}_{dtype.short}", dtype, lambda i, a=a, op=op: Unary(op, a[i]),
                               kind)
    _check(pb, {})


def test_compare_and_select_all_dtypes():
    pb = ProgramBuilder("compare")
    for dtype in ALL:
        a, b = pb.input(dtype, "full", "a"), pb.input(dtype, "full", "b")
        for op in ("lt", "le", "gt", "ge", "eq", "ne"):
            for kind in KINDS:
                pb.elementwise(f"{op}_{dtype.short}", DType.bool,
                               lambda i, a=a, b=b, op=op: Compare(op, a[i], b[i]), kind)
        c = pb.input(DType.bool, "full", "c")
        for kind in KINDS:
            pb.elementwise(f"select_{dtype.short}", dtype,
                           lambda i, a=a, b=b, c=c: Select(c[i], a[i], b[i]), kind)
            pb.elementwise(f"select_cmp_{dtype.short}", dtype,
                           lambda i, a=a, b=b: Select(Compare("gt", a[i], b[i]), a[i],
                                                      Const(1, dtype)), kind)
            # a uniform condition picking between per-lane values
            pb.elementwise(f"select_uniform_{dtype.short}", dtype,
                           lambda i, a=a, b=b, c=c: Select(c[Const(3)], a[i], b[i]), kind)
    _check(pb, {})


def test_casts_between_all_dtypes():
    pb = ProgramBuilder("casts")
    for src in ALL:
        a = pb.input(src, "finite" if src.is_float else "full")
        for dst in ALL:
            for kind in KINDS:
                pb.elementwise(f"cast_{src.short}_{dst.short}", dst,
                               lambda i, a=a, dst=dst: Cast(dst, a[i]), kind)
    _check(pb, {})


def test_float_casts_of_specials_and_ties():
    """NaN/Inf between float types; float64 -> float16 rounds once (NumPy), float64 ->
    bfloat16 through float32 (ml_dtypes); NaN and out-of-range floats to int32/int64 give the
    minimum integer like NumPy on x86."""
    n = 8
    x = np.array([1 + 2**-11 + 2**-40, 1 + 2**-8 + 2**-30, np.nan, np.inf, -np.inf, 65519.99,
                  -0.0, 3e-8])
    pb = ProgramBuilder("special_casts", n=n)
    a = pb.input(DType.float64, "full")
    pb.data[a.name] = x
    for dst in FLOATS + [DType.int32, DType.int64, DType.bool]:
        for kind in KINDS:
            pb.elementwise(f"cast_{dst.short}", dst, lambda i, dst=dst: Cast(dst, a[i]), kind)
    program = pb.program()
    native = compile_program(program)
    got = dict(zip([b.name for b in program.outputs], native.run(pb.data)))
    with np.errstate(all="ignore"):
        for dst in FLOATS:
            for kind in KINDS:
                want = x.astype(dst.np) if dst is not DType.bfloat16 else \
                    x.astype(np.float32).astype(dst.np)
                assert_same(dst.short, got[f"cast_{dst.short}_{kind.name.lower()}"], want)
        for dst in (DType.int32, DType.int64):
            out = got[f"cast_{dst.short}_vectorized"]
            assert out[2] == np.iinfo(dst.np).min and out[3] == np.iinfo(dst.np).min
    assert got["cast_bool_serial"].tolist() == [True, True, True, True, True, True, False, True]


def test_float_floordiv_matches_numpy():
    """Float floordiv is NumPy's floor_divide (the interpreter's int() version cannot take NaN)."""
    pb = ProgramBuilder("floordiv")
    for dtype in FLOATS:
        a, b = pb.input(dtype, "full", "a"), pb.input(dtype, "full", "b")
        for kind in KINDS:
            pb.elementwise(f"fdiv_{dtype.short}", dtype,
                           lambda i, a=a, b=b: Binary("floordiv", a[i], b[i]), kind)
    program = pb.program()
    got = compile_program(program).run(pb.data)
    for buf, g in zip(program.outputs, got):
        d = buf.dtype
        a, b = pb.data[f"a_full_{d.short}"], pb.data[f"b_full_{d.short}"]
        with np.errstate(all="ignore"):
            if d in (DType.float16, DType.bfloat16):
                want = np.floor_divide(a.astype(np.float32), b.astype(np.float32)).astype(d.np)
            else:
                want = np.floor_divide(a, b)
        assert_same(buf.name, g, want)


@pytest.mark.parametrize("dtype", [DType.int8, DType.int32, DType.int64, DType.uint8,
                                   DType.uint64])
def test_integer_division_by_zero_and_min_by_minus_one(dtype):
    """Division by zero gives 0 and never traps; MIN / -1 wraps to MIN (sdiv would trap)."""
    info = np.iinfo(dtype.np)
    a = wrap([7, -7, info.min, info.min, 5, 0, info.max, -1, -7, 7], dtype)
    b = wrap([0, 0, -1, 0, -1, 0, -1, 3, 2, -2], dtype)
    pb = ProgramBuilder("divzero", n=len(a))
    x, y = pb.input(dtype, "full", "a"), pb.input(dtype, "full", "b")
    pb.data[x.name], pb.data[y.name] = a, b
    for op in ("div", "floordiv", "mod", "fmod"):
        for kind in KINDS:
            pb.elementwise(op, dtype, lambda i, op=op: Binary(op, x[i], y[i]), kind)
    program = pb.program()
    got = dict(zip([o.name for o in program.outputs], compile_program(program).run(pb.data)))
    for op in ("div", "floordiv", "mod", "fmod"):
        want = wrap([_py_int_op(op, int(p), int(q)) for p, q in zip(a, b)], dtype)
        for kind in KINDS:
            assert got[f"{op}_{kind.name.lower()}"].tolist() == want.tolist(), (op, kind)


def _py_int_op(op, p, q):
    if q == 0:
        return 0
    if op == "div":
        return abs(p) // abs(q) * (1 if (p >= 0) == (q >= 0) else -1)
    if op == "floordiv":
        return p // q
    if op == "mod":
        return p % q
    return abs(p) % abs(q) * (1 if p >= 0 else -1)


def test_integer_pow_with_negative_exponents():
    """x ** -k truncates 1/x**k: 1 for x = 1, ±1 for x = -1, else 0 (NumPy raises instead)."""
    x = np.array([1, -1, -1, 2, 0, 3, 2, -2], dtype=np.int32)
    y = np.array([-3, -3, -2, -1, -1, 0, 31, 3], dtype=np.int32)
    pb = ProgramBuilder("ipow", n=len(x))
    a, b = pb.input(DType.int32, "full", "a"), pb.input(DType.int32, "full", "b")
    pb.data[a.name], pb.data[b.name] = x, y
    for kind in KINDS:
        pb.elementwise("pow", DType.int32, lambda i: Binary("pow", a[i], b[i]), kind)
    for out in compile_program(pb.program()).run(pb.data):
        assert out.tolist() == [1, -1, 1, 0, 0, 1, -2147483648, -8]


def test_half_precision_arithmetic_rounds_every_op():
    """f16 and bf16 chains match NumPy / ml_dtypes step by step (computed in f32, rounded after
    each op), including a chain that would differ if kept in f32."""
    pb = ProgramBuilder("half_chain")
    for dtype in (DType.float16, DType.bfloat16):
        a, b = pb.input(dtype, "finite", "a"), pb.input(dtype, "finite", "b")
        for kind in KINDS:
            pb.elementwise(f"chain_{dtype.short}", dtype,
                           lambda i, a=a, b=b: (a[i] * b[i] + a[i]) / (b[i] - Const(0.1, dtype)),
                           kind)
    _check(pb, {})


def test_constants_round_to_their_dtype():
    pb = ProgramBuilder("consts", n=5)
    a = pb.input(DType.int8, "small")
    pb.elementwise("min_i8", DType.int8, lambda i: a[i] + Const(-128, DType.int8),
                   LoopKind.VECTORIZED)
    pb.elementwise("tenth_f16", DType.float16, lambda i: Const(0.1, DType.float16) * 3.0,
                   LoopKind.SERIAL)
    pb.elementwise("u64_max", DType.uint64, lambda i: Const(2**64 - 1, DType.uint64),
                   LoopKind.VECTORIZED)
    _check(pb, {})
