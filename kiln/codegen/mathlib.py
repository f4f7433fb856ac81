"""kiln's math library: transcendental functions as LLVM IR, for float and double, scalar or
vector, written once for every type and width.

    y = emit_math(builder, "tanh", [x])        # x: float, double, <16 x float>, <8 x double>...

Each (function, type) becomes one internal `alwaysinline` function in the builder's module, made
on first use and called from then on, so the code is written once per module and inlined where
it is used. Every function is branch free (lanes that need different formulas compute both and
`select`), so a whole vector goes through it at once; the only branch is sin/cos/tan's path for
huge arguments, taken when some lane needs it. Range reduction and minimax polynomials with FMA
(see mathlib_coeffs.py for the fits); special values follow C99 / NumPy: signed zeros, Inf and
NaN, subnormal inputs and results, overflow to Inf, underflow to 0, NaN outside the domain.

Accuracy, as measured (max error in ulp of the result's format; float against NumPy's double
result rounded to float over every 17th float bit pattern plus the test sweep, double against
NumPy over the test sweep and against exact values (mpmath) on sampled and worst points):

    function   float  double      function   float  double      function   float  double
    exp        1      1           sinh       2      2           sin        2      1
    log        1      1           cosh       2      1           cos        2      1
    sigmoid    2      2           asinh      2      1           tan        2      2
    tanh       1      2           acosh      2      2           asin       2      2
    erf        1      1           atanh      2      1           acos       1      1
    pow        1      1           atan2      2      2           atan       2      1

Against the exact value the errors stay below 2.3 ulp (float) and 2.1 ulp (double). NumPy's
double cos is 8 ulp off at a huge argument of the sweep where kiln's is correctly rounded; the
test recomputes such references exactly. float pow is computed in double and rounded once.

Where each function lives: mathlib_exp.py (exp, log and what is built from them: sigmoid,
tanh, sinh, cosh, asinh, acosh, atanh, erf, pow), mathlib_trig.py (sin, cos, tan, asin, acos,
atan, atan2), mathlib_emit.py (the lane-wise vocabulary they are written in).
"""

from __future__ import annotations

import llvmlite.ir as ir

from . import mathlib_exp as ex
from . import mathlib_trig as tr
from .lltypes import type_suffix
from .mathlib_emit import MathBuilder, format_of
from .options import CodegenError

# name -> (implementation over a MathBuilder, number of operands)
FUNCTIONS = {
    "exp": (ex.exp, 1), "log": (ex.log, 1), "sigmoid": (ex.sigmoid, 1), "tanh": (ex.tanh, 1),
    "sinh": (ex.sinh, 1), "cosh": (ex.cosh, 1), "asinh": (ex.asinh, 1),
    "acosh": (ex.acosh, 1), "atanh": (ex.atanh, 1), "erf": (ex.erf, 1), "pow": (ex.pow, 2),
    "sin": (tr.sin, 1), "cos": (tr.cos, 1), "tan": (tr.tan, 1), "asin": (tr.asin, 1),
    "acos": (tr.acos, 1), "atan": (tr.atan, 1), "atan2": (tr.atan2, 2),
}


def emit_math(builder: ir.IRBuilder, name: str, args: list) -> ir.Value:
    """`name(*args)` at the builder's position; all args have the same float or double type,
    scalar or vector. atan2 takes (y, x); pow takes (base, exponent)."""
    if not args:
        raise CodegenError(f"math function {name} needs operands")
    fn = math_function(builder.module, name, args[0].type)
    if len(args) != len(fn.args) or any(a.type != args[0].type for a in args):
        raise CodegenError(f"{name} takes {len(fn.args)} operands of one type, got "
                           f"{[str(a.type) for a in args]}")
    return builder.call(fn, list(args))


def math_function(module: ir.Module, name: str, ty: ir.Type) -> ir.Function:
    """The internal function computing `name` on values of type `ty`, made once per module."""
    if name not in FUNCTIONS:
        raise CodegenError(f"unknown math function {name}",
                           hint=f"known: {', '.join(sorted(FUNCTIONS))}")
    format_of(ty)
    impl, arity = FUNCTIONS[name]
    symbol = f"kiln.math.{name}.{type_suffix(ty)}"
    try:
        return module.get_global(symbol)
    except KeyError:
        pass
    fn = ir.Function(module, ir.FunctionType(ty, [ty] * arity), symbol)
    fn.linkage = "internal"
    fn.attributes.add("alwaysinline")
    fn.attributes.add("nounwind")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    b.ret(impl(MathBuilder(b, ty), *fn.args))
    return fn
