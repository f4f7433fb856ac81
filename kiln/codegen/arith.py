"""Loop IR's scalar operations as LLVM instructions, for scalars and vectors alike.

The semantics are the Loop IR interpreter's (kiln/loops/interpreter.py), which follows NumPy:
integers wrap; `div` truncates and `floordiv`/`mod` floor; a zero divisor gives 0 and never
traps (nor does MIN / -1); shifts by a negative amount or by the bit width or more give 0; float
`mod`/`floordiv` are NumPy's (the remainder takes the divisor's sign); `max`/`min` propagate NaN.
float16 and bfloat16 values are computed in float32 and rounded back after every operation, so
results match NumPy's float16 / ml_dtypes' bfloat16 arithmetic bit for bit.
Operands arrive with the same type (the caller broadcasts scalars against vectors).
"""

from __future__ import annotations

import llvmlite.ir as ir

from ..ir.dtypes import DType
from .lltypes import (DOUBLE, FLOAT, HALF, HALF_FLOATS, I16, I32, I64, compute_type, const,
                      element_type, intrinsic, lanes, with_lanes)
from . import narrow
from .mathcalls import emit_math_call
from .options import CodegenError

_FCMP = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
_TRANSCENDENTAL = frozenset({"exp", "log", "tanh", "sigmoid", "erf", "sin", "cos", "tan", "asin",
                             "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh"})
_ROUNDING = {"floor": "floor", "ceil": "ceil", "round": "roundeven", "trunc": "trunc"}


class Arith:
    """Emits ops with one builder. `math` is mathlib's emitter (or None for the fallback);
    `contract` lets LLVM fuse a*b+c into an FMA."""

    def __init__(self, b: ir.IRBuilder, math=None, contract: bool = True, f16c: bool = True):
        self.b = b
        self.math = math
        self.fflags = ("contract",) if contract else ()
        self.f16c = f16c

    def half(self) -> ir.Type:
        """LLVM's half type, for conversions the CPU must do itself (without F16C LLVM calls
        compiler-rt helpers that this process may not have)."""
        if not self.f16c:
            raise CodegenError("float16 needs a CPU with the F16C instructions",
                               hint="compute in float32 on this machine")
        return HALF

    # --- binary -------------------------------------------------------------------------

    def binary(self, op: str, x, y, dtype: DType):
        if dtype.is_float:
            return self.round(self._float_binary(op, x, y, dtype), dtype)
        if dtype is DType.bool:
            return self._bool_binary(op, x, y)
        return self.round(self._int_binary(op, x, y, dtype), dtype)

    def _float_binary(self, op, x, y, dtype):
        b, t = self.b, x.type
        if op == "add":
            return b.fadd(x, y, flags=self.fflags)
        if op == "sub":
            return b.fsub(x, y, flags=self.fflags)
        if op == "mul":
            return b.fmul(x, y, flags=self.fflags)
        if op == "div":
            return b.fdiv(x, y)
        if op == "fmod":
            return b.frem(x, y)
        if op in ("floordiv", "mod"):
            return self._float_divmod(x, y, want_mod=op == "mod")
        if op in ("max", "min"):
            fn = intrinsic(b.module, "maximum" if op == "max" else "minimum", t, [t, t])
            return b.call(fn, [x, y])
        if op in ("pow", "atan2"):
            return emit_math_call(b, op, [x, y], self.math)
        raise CodegenError(f"binary op {op} is not defined on {dtype.short}")

    def _float_divmod(self, x, y, want_mod: bool):
        """NumPy's npy_divmod: floor division and the remainder with the divisor's sign."""
        b, t = self.b, x.type
        zero = const(t, 0.0)
        mod = b.frem(x, y)
        y_zero = b.fcmp_ordered("==", y, zero)
        # mod += y when mod and y have different signs (and mod is not zero)
        fix = b.and_(b.fcmp_unordered("!=", mod, zero),
                     b.xor(b.fcmp_ordered("<", y, zero), b.fcmp_ordered("<", mod, zero)))
        signed_zero = self._copysign(zero, y)
        mod2 = b.select(fix, b.fadd(mod, y),
                        b.select(b.fcmp_unordered("!=", mod, zero), mod, signed_zero))
        if want_mod:
            return b.select(y_zero, mod, mod2)
        quotient = b.fdiv(x, y)
        div = b.fdiv(b.fsub(x, mod), y)
        div = b.select(fix, b.fsub(div, const(t, 1.0)), div)
        fl = b.call(intrinsic(b.module, "floor", t, [t]), [div])
        fl = b.select(b.fcmp_ordered(">", b.fsub(div, fl), const(t, 0.5)),
                      b.fadd(fl, const(t, 1.0)), fl)
        fl = b.select(b.fcmp_unordered("!=", div, zero), fl, self._copysign(zero, quotient))
        return b.select(y_zero, quotient, fl)

    def _copysign(self, mag, sign):
        t = mag.type
        return self.b.call(intrinsic(self.b.module, "copysign", t, [t, t]), [mag, sign])

    def _bool_binary(self, op, x, y):
        b = self.b
        if op in ("and", "mul", "min"):
            return b.and_(x, y)
        if op in ("or", "add", "max"):
            return b.or_(x, y)
        if op in ("xor", "sub", "ne"):
            return b.xor(x, y)
        raise CodegenError(f"binary op {op} is not defined on bool")

    def _int_binary(self, op, x, y, dtype):
        b, t = self.b, x.type
        signed = dtype.is_signed
        if op == "add":
            return b.add(x, y)
        if op == "sub":
            return b.sub(x, y)
        if op == "mul":
            return b.mul(x, y)
        if op in ("div", "floordiv", "mod", "fmod"):
            return self._int_division(op, x, y, signed)
        if op in ("max", "min"):
            cmp = b.icmp_signed if signed else b.icmp_unsigned
            return b.select(cmp(">" if op == "max" else "<", x, y), x, y)
        if op == "and":
            return b.and_(x, y)
        if op == "or":
            return b.or_(x, y)
        if op == "xor":
            return b.xor(x, y)
        if op in ("shl", "shr"):
            bits = element_type(t).width
            in_range = b.icmp_unsigned("<", y, const(t, bits))
            amount = b.select(in_range, y, const(t, 0))
            shifted = (b.shl(x, amount) if op == "shl" else
                       b.ashr(x, amount) if signed else b.lshr(x, amount))
            return b.select(in_range, shifted, const(t, 0))
        if op == "pow":
            return self._int_pow(x, y, signed)
        if op == "atan2":
            f = self.cast(x, dtype, DType.float64)
            g = self.cast(y, dtype, DType.float64)
            return self.cast(self._float_binary("atan2", f, g, DType.float64), DType.float64, dtype)
        raise CodegenError(f"binary op {op} is not defined on {dtype.short}")

    def _int_division(self, op, x, y, signed):
        b, t = self.b, x.type
        zero, one = const(t, 0), const(t, 1)
        y_zero = b.icmp_unsigned("==", y, zero)
        if not signed:
            safe = b.select(y_zero, one, y)
            r = b.udiv(x, safe) if op in ("div", "floordiv") else b.urem(x, safe)
            return b.select(y_zero, zero, r)
        # x / -1 is -x (wrapping); sdiv would trap on MIN / -1, so -1 never reaches it
        y_minus1 = b.icmp_signed("==", y, const(t, -1))
        safe = b.select(b.or_(y_zero, y_minus1), one, y)
        q = b.select(y_minus1, b.sub(zero, x), b.sdiv(x, safe))
        r = b.srem(x, safe)              # 0 when y is -1 (safe = 1)
        if op == "div":
            out = q
        elif op == "fmod":
            out = r
        else:
            # floor: move toward -inf when the remainder and the divisor differ in sign
            fix = b.and_(b.icmp_signed("!=", r, zero), b.icmp_signed("<", b.xor(r, y), zero))
            out = (b.select(fix, b.sub(q, one), q) if op == "floordiv" else
                   b.select(fix, b.add(r, y), r))
        return b.select(y_zero, zero, out)

    def _int_pow(self, x, y, signed):
        """x ** y by square-and-multiply, looping while any lane has exponent bits left;
        a negative exponent gives 1/x**|y| truncated: 1 for x = 1, ±1 for x = -1, else 0."""
        b, t = self.b, x.type
        zero, one = const(t, 0), const(t, 1)
        pre = b.block
        header = b.append_basic_block("ipow")
        body = b.append_basic_block("ipow.step")
        done = b.append_basic_block("ipow.end")
        b.branch(header)
        b.position_at_end(header)
        result, base, e = b.phi(t), b.phi(t), b.phi(t)
        for phi, v in ((result, one), (base, x), (e, y)):
            phi.add_incoming(v, pre)
        left = b.icmp_unsigned("!=", e, zero)
        if lanes(t) > 1:
            left = b.call(intrinsic(b.module, "vector.reduce.or", ir.IntType(1), [left.type],
                                    [left.type]), [left])
        b.cbranch(left, body, done)
        b.position_at_end(body)
        bit = b.icmp_unsigned("!=", b.and_(e, one), zero)
        result.add_incoming(b.select(bit, b.mul(result, base), result), body)
        base.add_incoming(b.mul(base, base), body)
        e.add_incoming(b.lshr(e, one), body)
        b.branch(header)
        b.position_at_end(done)
        if not signed:
            return result
        odd = b.icmp_unsigned("!=", b.and_(y, one), zero)
        negative = b.select(b.icmp_signed("==", x, one), one,
                            b.select(b.icmp_signed("==", x, const(t, -1)),
                                     b.select(odd, const(t, -1), one), zero))
        return b.select(b.icmp_signed("<", y, zero), negative, result)

    # --- reductions across lanes ---------------------------------------------------------

    def identity(self, op: str, dtype: DType, t: ir.Type) -> ir.Constant:
        """The value that leaves `op` unchanged, as a constant of type `t`."""
        if dtype.is_float:
            value = {"add": -0.0, "mul": 1.0, "max": float("-inf"), "min": float("inf")}[op]
        elif dtype is DType.bool:
            value = {"add": 0, "max": 0, "or": 0, "xor": 0, "mul": 1, "min": 1, "and": 1}[op]
        else:
            bits = element_type(t).width
            signed = dtype.is_signed
            value = {"add": 0, "or": 0, "xor": 0, "mul": 1, "and": -1,
                     "max": -(1 << (bits - 1)) if signed else 0,
                     "min": (1 << (bits - 1)) - 1 if signed else -1}[op]
        return const(t, value)

    def reduce_lanes(self, op: str, vec, dtype: DType, reassociate: bool = True):
        """Combine the lanes of `vec` with `op` into one scalar."""
        b, t = self.b, vec.type
        scalar = element_type(t)
        if dtype.is_float:
            if op in ("add", "mul"):
                name = "vector.reduce.f" + op
                fn = intrinsic(b.module, name, scalar, [scalar, t], [t])
                flags = ("reassoc",) if reassociate else ()
                return self.round(b.call(fn, [self.identity(op, dtype, scalar), vec],
                                         fastmath=flags), dtype)
            name = "vector.reduce.fmaximum" if op == "max" else "vector.reduce.fminimum"
            return b.call(intrinsic(b.module, name, scalar, [t], [t]), [vec])
        if dtype is DType.bool:
            op = {"add": "or", "max": "or", "mul": "and", "min": "and"}.get(op, op)
        elif op in ("max", "min"):
            op = ("s" if dtype.is_signed else "u") + op
        return b.call(intrinsic(b.module, "vector.reduce." + op, scalar, [t], [t]), [vec])

    # --- unary --------------------------------------------------------------------------

    def unary(self, op: str, x, dtype: DType):
        b, t = self.b, x.type
        if op in ("isnan", "isinf"):
            if not dtype.is_float:
                return const(with_lanes(ir.IntType(1), lanes(x)), 0)
            if op == "isnan":
                return b.fcmp_unordered("uno", x, x)
            return b.fcmp_ordered("==", self._fabs(x), const(t, float("inf")))
        if dtype is DType.bool:
            if op in ("not",):
                return b.xor(x, const(t, 1))
            if op in ("abs", "neg", "floor", "ceil", "round", "trunc", "sign"):
                return x
            raise CodegenError(f"unary op {op} is not defined on bool")
        if dtype.is_float:
            return self.round(self._float_unary(op, x, dtype), dtype)
        return self.round(self._int_unary(op, x, dtype), dtype)

    def _fabs(self, x):
        return self.b.call(intrinsic(self.b.module, "fabs", x.type, [x.type]), [x])

    def _float_unary(self, op, x, dtype):
        b, t = self.b, x.type
        if op == "neg":
            return b.fneg(x)
        if op == "abs":
            return self._fabs(x)
        if op == "sign":
            one, zero = const(t, 1.0), const(t, 0.0)
            return b.select(b.fcmp_ordered(">", x, zero), one,
                            b.select(b.fcmp_ordered("<", x, zero), const(t, -1.0),
                                     b.select(b.fcmp_ordered("==", x, zero), zero, x)))
        if op in _ROUNDING:
            return b.call(intrinsic(b.module, _ROUNDING[op], t, [t]), [x])
        if op == "sqrt":
            return b.call(intrinsic(b.module, "sqrt", t, [t]), [x])
        if op == "rsqrt":
            return b.fdiv(const(t, 1.0), b.call(intrinsic(b.module, "sqrt", t, [t]), [x]))
        if op == "reciprocal":
            return b.fdiv(const(t, 1.0), x)
        if op in _TRANSCENDENTAL:
            return emit_math_call(b, op, [x], self.math)
        raise CodegenError(f"unary op {op} is not defined on {dtype.short}")

    def _int_unary(self, op, x, dtype):
        b, t = self.b, x.type
        signed = dtype.is_signed
        zero = const(t, 0)
        if op == "neg":
            return b.sub(zero, x)
        if op == "abs":
            return b.select(b.icmp_signed("<", x, zero), b.sub(zero, x), x) if signed else x
        if op == "not":
            return b.xor(x, const(t, -1))
        if op == "sign":
            pos = b.zext(b.icmp_signed(">", x, zero) if signed else
                         b.icmp_unsigned("!=", x, zero), t)
            if not signed:
                return pos
            return b.sub(pos, b.zext(b.icmp_signed("<", x, zero), t))
        if op in _ROUNDING:
            return x
        if op == "reciprocal":
            return self._int_division("div", const(t, 1), x, signed)
        if op in _TRANSCENDENTAL or op in ("sqrt", "rsqrt"):
            f = self.cast(x, dtype, DType.float64)
            return self.cast(self._float_unary(op, f, DType.float64), DType.float64, dtype)
        raise CodegenError(f"unary op {op} is not defined on {dtype.short}")

    # --- compare ------------------------------------------------------------------------

    def compare(self, op: str, x, y, dtype: DType):
        b = self.b
        if dtype.is_float:
            if op == "ne":
                return b.fcmp_unordered("!=", x, y)   # NaN != anything
            return b.fcmp_ordered(_FCMP[op], x, y)
        if dtype.is_signed:
            return b.icmp_signed(_FCMP[op], x, y)
        return b.icmp_unsigned(_FCMP[op], x, y)

    # --- casts and rounding -------------------------------------------------------------

    def cast(self, x, src: DType, dst: DType):
        """Convert a compute value of dtype `src` to dtype `dst` (NumPy's astype)."""
        if src is dst:
            return x
        b, n = self.b, lanes(x)
        t = compute_type(dst, n)
        if dst is DType.bool:
            if src.is_float:
                return b.fcmp_unordered("!=", x, const(x.type, 0.0))
            return b.icmp_unsigned("!=", x, const(x.type, 0))
        if src is DType.bool:
            return b.uitofp(x, t) if dst.is_float else b.zext(x, t)
        if src.is_float and dst.is_float:
            if src is DType.float8e5m2:      # a loaded NaN keeps its payload until converted
                x = narrow.quiet(b, x)
            return self._float_to_float(x, src, dst)
        if dst.is_float:
            return self.round(b.sitofp(x, t) if src.is_signed else b.uitofp(x, t), dst)
        if src.is_float:
            v = self.round(self._float_to_int(x, dst), dst)
            if src in narrow.NARROW_FLOATS:
                v = narrow.float_to_int_specials(b, x, v, dst)
            return v
        sbits, dbits = element_type(x.type).width, element_type(t).width
        if dbits < sbits:
            x = b.trunc(x, t)
        elif dbits > sbits:
            x = b.sext(x, t) if src.is_signed else b.zext(x, t)
        return self.round(x, dst)

    def _float_to_float(self, x, src, dst):
        b, n = self.b, lanes(x)
        if src is DType.float64:
            if dst is DType.float16:
                # NumPy rounds double -> half once: round to odd in float32 first, so that
                # rounding again to half is exact (ml_dtypes' bfloat16 does round twice)
                return self.round(self._to_float_round_odd(x), dst)
            return self.round(b.fptrunc(x, with_lanes(FLOAT, n)), dst)
        # src is a float32-computed type
        if dst is DType.float64:
            return b.fpext(x, with_lanes(DOUBLE, n))
        return self.round(x, dst)

    def _to_float_round_odd(self, x):
        """double -> float rounding toward zero, with the lowest bit set when inexact."""
        b, n = self.b, lanes(x)
        f = b.fptrunc(x, with_lanes(FLOAT, n))
        back = b.fpext(f, x.type)
        inexact = b.fcmp_ordered("!=", back, x)          # false for NaN
        bits = b.bitcast(f, with_lanes(I32, n))
        # fptrunc rounded away from zero when |back| > |x|: step one ulp toward zero
        away = b.fcmp_ordered(">", self._fabs(back), self._fabs(x))
        bits = b.select(b.and_(inexact, away), b.sub(bits, const(bits.type, 1)), bits)
        bits = b.select(inexact, b.or_(bits, const(bits.type, 1)), bits)
        return b.bitcast(bits, f.type)

    def _float_to_int(self, x, dst):
        """Float to integer as NumPy does on x86 (C casts compiled to cvttss2si): through a
        32- or 64-bit conversion whose out-of-range and NaN result is the minimum integer,
        then wrapped to the narrow type (300.0 -> int8 is 44, -1.0 -> uint8 is 255)."""
        b, n = self.b, lanes(x)
        t = x.type
        dt = compute_type(dst, n)
        if dst is DType.uint64:
            two63 = const(t, 2.0 ** 63)
            big = b.fcmp_ordered(">=", x, two63)
            high = b.xor(self._cvtt(b.fsub(x, two63), I64), const(dt, 1 << 63))
            return b.select(big, high, self._cvtt(x, I64))
        via = I64 if dst in (DType.int64, DType.uint32) else I32
        v = self._cvtt(x, via)
        return b.trunc(v, dt) if element_type(dt).width < via.width else v

    def _cvtt(self, x, via: ir.IntType):
        """fptosi with x86's answer (the minimum integer) for NaN and out-of-range values,
        instead of LLVM's poison."""
        b, n = self.b, lanes(x)
        t, vt = x.type, with_lanes(via, n)
        limit = 2.0 ** (via.width - 1)
        ok = b.and_(b.fcmp_ordered(">=", x, const(t, -limit)),
                    b.fcmp_ordered("<", x, const(t, limit)))
        return b.select(ok, b.fptosi(x, vt), const(vt, 1 << (via.width - 1)))

    def round(self, x, dtype: DType):
        """Round a float32-held value to float16 / bfloat16 / float8 / float4 precision, wrap
        an i8-held 2- or 4-bit integer to its width (others unchanged)."""
        if dtype in narrow.NARROW_INTS:
            return narrow.wrap_int(self.b, x, dtype)
        if dtype in narrow.NARROW_FLOATS:
            return narrow.round_float(self.b, x, dtype)
        if dtype not in HALF_FLOATS:
            return x
        b, n = self.b, lanes(x)
        if dtype is DType.float16:
            return b.fpext(b.fptrunc(x, with_lanes(self.half(), n)), x.type)
        return b.bitcast(b.shl(b.zext(self.bf16_bits(x), with_lanes(I32, n)),
                               const(with_lanes(I32, n), 16)), x.type)

    def bf16_bits(self, x):
        """The bfloat16 nearest to float32 `x` (ties to even; NaN stays a quiet NaN), as i16."""
        b, n = self.b, lanes(x)
        i32 = with_lanes(I32, n)
        bits = b.bitcast(x, i32)
        lsb = b.and_(b.lshr(bits, const(i32, 16)), const(i32, 1))
        rounded = b.add(b.add(bits, const(i32, 0x7FFF)), lsb)
        nan = b.fcmp_unordered("uno", x, x)
        bits = b.select(nan, b.or_(bits, const(i32, 0x400000)), rounded)
        return b.trunc(b.lshr(bits, const(i32, 16)), with_lanes(I16, n))
