"""Transcendental functions: the one place that decides how `exp`, `tanh`, `pow`... become code.

kiln's own branch-free implementations (kiln/codegen/mathlib.py, `emit_math`) are used when that
module is there; otherwise LLVM's intrinsics (which the x86 back end turns into libm calls, lane
by lane for vectors) and plain libm calls for the functions LLVM has no intrinsic for.
"""

from __future__ import annotations

import importlib

import llvmlite.ir as ir

from .lltypes import FLOAT, I32, const, declare, element_type, intrinsic, lanes
from .options import CodegenError

# What kiln.codegen.mathlib.emit_math provides (float and double, scalar and vector).
MATHLIB_FUNCTIONS = frozenset({
    "exp", "log", "tanh", "erf", "sigmoid", "sin", "cos", "tan", "asin", "acos", "atan",
    "sinh", "cosh", "asinh", "acosh", "atanh", "pow", "atan2"})
# Functions LLVM has an intrinsic for; the rest are libm calls.
_INTRINSICS = frozenset({"exp", "log", "sin", "cos", "tan", "asin", "acos", "atan", "sinh",
                         "cosh", "tanh", "pow", "atan2"})
_LIBM = frozenset({"erf", "asinh", "acosh", "atanh"})


def mathlib_emitter():
    """kiln.codegen.mathlib.emit_math, or None while that module does not exist."""
    try:
        module = importlib.import_module("kiln.codegen.mathlib")
    except ImportError:
        return None
    return getattr(module, "emit_math", None)


def emit_math_call(b: ir.IRBuilder, name: str, args: list, emitter=None) -> ir.Value:
    """`name(*args)` for float or double values, scalar or vector (all args the same type).
    `emitter` is `mathlib_emitter()` (looked up once per module by the caller)."""
    if name not in MATHLIB_FUNCTIONS:
        raise CodegenError(f"unknown math function {name}")
    if not isinstance(element_type(args[0].type), (ir.FloatType, ir.DoubleType)):
        raise CodegenError(f"{name} needs float or double operands, got {args[0].type}")
    if emitter is not None:
        return emitter(b, name, list(args))
    return _fallback(b, name, list(args))


def _fallback(b: ir.IRBuilder, name: str, args: list) -> ir.Value:
    t = args[0].type
    if name == "sigmoid":
        one = const(t, 1.0)
        e = _fallback(b, "exp", [b.fneg(args[0])])
        return b.fdiv(one, b.fadd(one, e))
    if name in _INTRINSICS:
        fn = intrinsic(b.module, name, t, [t] * len(args))
        return b.call(fn, args)
    assert name in _LIBM
    scalar = element_type(t)
    cname = name + ("f" if scalar == FLOAT else "")
    fn = declare(b.module, cname, scalar, [scalar] * len(args))
    if lanes(t) == 1:
        return b.call(fn, args)
    out = ir.Constant(t, ir.Undefined)
    for i in range(lanes(t)):
        k = ir.Constant(I32, i)
        out = b.insert_element(out, b.call(fn, [b.extract_element(a, k) for a in args]), k)
    return out

