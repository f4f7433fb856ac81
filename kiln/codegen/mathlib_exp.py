"""exp and log, and the functions built from them: sigmoid, tanh, sinh, cosh, asinh, acosh,
atanh, erf and pow.

exp: x = k ln2 + r with |r| <= ln2/2 (Cody-Waite, the k ln2 product exact through FMA),
e^r = 1 + r + r^2 P(r), then 2^k applied in two steps so overflow gives Inf and results in the
subnormal range are rounded once.

log: x = 2^e (1 + f) with 1 + f in [sqrt(1/2), sqrt(2)) (subnormals scaled up first), and
log(1 + f) = f - f^2/2 + s (f^2/2 + R(s^2)), s = f / (2 + f), as in Sun's fdlibm. log1p-style
callers pass u = 1 + t rounded together with the rounding error of that sum, which the kernel
adds back (`log1p_parts`).

pow: e^(y log|x|) with log|x| in double-word precision (about 2^-66 relative) and the
exponential taken from a double-word argument, then the signs and special cases of C99. float
pow computes in double (a plain double log is enough there) and rounds once at the end.
"""

from __future__ import annotations

import struct

from .mathlib_coeffs import (COEFFS, ERF_ONE, ERF_PIECES, ERF_SMALL, ERF_SMALL_COEFFS, LN2_HI,
                             LN2_LO, LOG2E, LOG_LN2_HI, LOG_LN2_LO, TWO_THIRDS_HI,
                             TWO_THIRDS_LO)
from .mathlib_emit import F32, F64, MathBuilder

INF, NAN = float("inf"), float("nan")
# exp's argument is clamped to this range: below, e^x rounds to 0; above, to Inf
EXP_MIN = {F32: -104.0, F64: -746.0}
EXP_MAX = {F32: 89.0, F64: 710.0}
# e^x / 2 overflows above this (sinh, cosh)
HYP_MAX = {F32: 90.0, F64: 711.0}
MIN_NORMAL = {F32: 2.0 ** -126, F64: 2.0 ** -1022}
# above this, asinh(x) = log(2x) and acosh(x) = log(2x) to working precision
HUGE_HYP = {F32: 2.0 ** 12, F64: 2.0 ** 28}
# tanh's polynomial covers |x| below TANH_SMALL; from TANH_ONE / 2 on, tanh(x) rounds to 1
TANH_SMALL = 0.625
TANH_ONE = {F32: 20.0, F64: 44.0}
# pow's double-word exponent y log|x| is clamped to this (far beyond overflow and underflow)
POW_MAX_EXP = 1400.0


def _bits(fmt, value: float) -> int:
    code = "<f" if fmt is F32 else "<d"
    return int.from_bytes(struct.pack(code, value), "little")


# ---- exp

def exp_parts(m: MathBuilder, x):
    """(p, k) with e^x = p * 2^k, p in [0.7, 1.42], k integer lanes; x finite and in
    [EXP_MIN, HYP_MAX]."""
    k = m.rint(m.mul(x, m.pick(LOG2E)))
    r = m.fma(k, m.c(-LN2_HI[m.fmt]), x)
    r = m.fma(k, m.c(-LN2_LO[m.fmt]), r)
    q = m.fma(m.mul(r, r), m.poly(r, COEFFS["exp"][m.fmt]), r)
    return m.add(m.c(1.0), q), m.to_int(k)


def exp(m: MathBuilder, x):
    nan = m.isnan(x)
    xs = m.select(nan, m.c(0.0), m.clamp(x, EXP_MIN[m.fmt], EXP_MAX[m.fmt]))
    p, k = exp_parts(m, xs)
    return m.select(nan, x, m.ldexp(p, k))


def sigmoid(m: MathBuilder, x):
    """1 / (1 + e^-x), as e^x / (1 + e^x) for x < 0 so tiny results keep their precision."""
    e = exp(m, m.neg(m.abs(x)))
    num = m.select(m.lt(x, m.c(0.0)), e, m.c(1.0))
    return m.div(num, m.add(m.c(1.0), e))


def _odd_poly(m: MathBuilder, x, name: str):
    """x + x^3 P(x^2) with the coefficients COEFFS[name]."""
    x2 = m.mul(x, x)
    return m.fma(m.mul(x, x2), m.poly(x2, COEFFS[name][m.fmt]), x)


def tanh(m: MathBuilder, x):
    """x + x^3 P(x^2) for |x| < TANH_SMALL, else 1 - 2 / (e^2|x| + 1) (1 from TANH_ONE on,
    where e^2|x| stays finite and scales by one power of two); NaN takes the first path."""
    a = m.abs(x)
    small = _odd_poly(m, a, "tanh")
    two_a = m.add(a, a)
    p, k = exp_parts(m, m.select(m.lt(two_a, m.pick(TANH_ONE)), two_a, m.pick(TANH_ONE)))
    e = m.mul(p, m.pow2(k))
    big = m.sub(m.c(1.0), m.div(m.c(2.0), m.add(e, m.c(1.0))))
    return m.copysign(m.select(m.ge(a, m.c(TANH_SMALL)), big, small), x)


def _exp_halves(m: MathBuilder, a):
    """(e^a / 2, e^-a / 2) for a >= 0, without overflowing before e^a / 2 does."""
    ac = m.select(m.lt(a, m.pick(HYP_MAX)), a, m.pick(HYP_MAX))
    p, k = exp_parts(m, ac)
    half = m.ldexp(m.mul(m.c(0.5), p), k)     # not k - 1: see MathBuilder.isfinite
    inv_half = m.ldexp(m.div(m.c(0.5), p), m.isub(m.ic(0), k))
    return half, inv_half


def sinh(m: MathBuilder, x):
    a = m.abs(x)
    h, ih = _exp_halves(m, a)
    big = m.copysign(m.sub(h, ih), x)
    res = m.select(m.lt(a, m.c(1.0)), _odd_poly(m, x, "sinh"), big)
    return m.select(m.isnan(x), x, res)


def cosh(m: MathBuilder, x):
    h, ih = _exp_halves(m, m.abs(x))
    return m.select(m.isnan(x), x, m.add(h, ih))


# ---- log

def log_reduce(m: MathBuilder, x):
    """(e, f) with x = 2^e (1 + f), 1 + f in [sqrt(1/2), sqrt(2)); x > 0 finite."""
    fmt = m.fmt
    tiny = m.lt(x, m.pick(MIN_NORMAL))
    x = m.select(tiny, m.mul(x, m.c(2.0 ** fmt.precision)), x)
    sqrt_half = _bits(fmt, 0.5 ** 0.5)
    ix = m.iadd(m.bits(x), m.ic(_bits(fmt, 1.0) - sqrt_half))
    e = m.isub(m.lshr(ix, fmt.mant), m.ic(fmt.bias))
    e = m.isub(e, m.select(tiny, m.ic(fmt.precision), m.ic(0)))
    ix = m.iadd(m.iand(ix, m.ic((1 << fmt.mant) - 1)), m.ic(sqrt_half))
    return m.to_float(e), m.sub(m.from_bits(ix), m.c(1.0))


def log_kernel(m: MathBuilder, e, f, corr=None):
    """log(2^e (1 + f)) + corr, for a small correction corr (see log1p_parts)."""
    s = m.div(f, m.add(m.c(2.0), f))
    z = m.mul(s, s)
    r = m.mul(z, m.poly(z, COEFFS["log"][m.fmt]))
    hfsq = m.mul(m.mul(m.c(0.5), f), f)
    t = m.mul(e, m.pick(LOG_LN2_LO))
    if corr is not None:
        t = m.add(t, corr)
    t = m.fma(s, m.add(hfsq, r), t)
    return m.fma(e, m.pick(LOG_LN2_HI), m.sub(f, m.sub(hfsq, t)))


def log1p_parts(m: MathBuilder, t):
    """(u, c) with log(1 + t) = log(u) + c: u = 1 + t rounded, c its rounding error / u."""
    u = m.add(m.c(1.0), t)
    err = m.select(m.ge(u, m.c(2.0)), m.sub(m.c(1.0), m.sub(u, t)), m.sub(t, m.sub(u, m.c(1.0))))
    return u, m.div(err, u)


def log(m: MathBuilder, x):
    ok = m.and_(m.gt(x, m.c(0.0)), m.isfinite(x))
    e, f = log_reduce(m, m.select(ok, x, m.c(1.0)))
    special = m.select(m.eq(x, m.c(0.0)), m.c(-INF),
                       m.select(m.eq(x, m.c(INF)), m.c(INF), m.c(NAN)))
    return m.select(ok, log_kernel(m, e, f), special)


def _log_of(m: MathBuilder, u, corr, double_it):
    """log(u) + corr, plus ln 2 in the lanes where double_it holds."""
    e, f = log_reduce(m, u)
    e = m.add(e, m.select(double_it, m.c(1.0), m.c(0.0)))
    return log_kernel(m, e, f, corr)


def atanh(m: MathBuilder, x):
    a = m.abs(x)
    inside = m.lt(a, m.c(1.0))
    a = m.select(inside, a, m.c(0.0))
    two_a = m.add(a, a)
    one_minus = m.sub(m.c(1.0), a)
    t = m.select(m.lt(a, m.c(0.5)), m.fma(two_a, m.div(a, one_minus), two_a),
                 m.div(two_a, one_minus))
    u, c = log1p_parts(m, t)
    y = m.copysign(m.mul(m.c(0.5), _log_of(m, u, c, m.bc(False))), x)
    edge = m.select(m.eq(m.abs(x), m.c(1.0)), m.copysign(m.c(INF), x), m.c(NAN))
    return m.select(inside, y, edge)


def asinh(m: MathBuilder, x):
    a = m.abs(x)
    finite = m.isfinite(a)
    a = m.select(finite, a, m.c(1.0))
    huge = m.gt(a, m.pick(HUGE_HYP))
    mid = m.gt(a, m.c(2.0))
    a2 = m.mul(a, a)
    root = m.sqrt(m.add(a2, m.c(1.0)))
    u_mid = m.add(m.add(a, a), m.div(m.c(1.0), m.add(root, a)))
    u_small, c_small = log1p_parts(m, m.add(a, m.div(a2, m.add(m.c(1.0), root))))
    u = m.select(huge, a, m.select(mid, u_mid, u_small))
    y = _log_of(m, u, m.select(mid, m.c(0.0), c_small), huge)
    return m.copysign(m.select(finite, y, m.abs(x)), x)


def acosh(m: MathBuilder, x):
    ok = m.and_(m.ge(x, m.c(1.0)), m.isfinite(x))
    xs = m.select(ok, x, m.c(1.0))
    huge = m.gt(xs, m.pick(HUGE_HYP))
    mid = m.gt(xs, m.c(2.0))
    root = m.sqrt(m.fma(xs, xs, m.c(-1.0)))
    u_mid = m.sub(m.add(xs, xs), m.div(m.c(1.0), m.add(xs, root)))
    t = m.sub(xs, m.c(1.0))
    u_small, c_small = log1p_parts(m, m.add(t, m.sqrt(m.fma(t, t, m.add(t, t)))))
    u = m.select(huge, xs, m.select(mid, u_mid, u_small))
    y = _log_of(m, u, m.select(mid, m.c(0.0), c_small), huge)
    return m.select(ok, y, m.select(m.eq(x, m.c(INF)), m.c(INF), m.c(NAN)))


# ---- erf

def erf(m: MathBuilder, x):
    """x + x P(x^2) near 0; 1 - e^(-x^2) Q(x) further out, Q chosen per piece."""
    fmt = m.fmt
    a = m.abs(x)
    small = m.fma(x, m.poly(m.mul(x, x), ERF_SMALL_COEFFS[fmt]), x)
    ac = m.select(m.lt(a, m.pick(ERF_ONE)), a, m.pick(ERF_ONE))
    pieces = ERF_PIECES[fmt]
    degree = max(len(cs) for _, _, cs in pieces)
    coefs, u = None, None
    for lo, center, cs in pieces:
        cs = tuple(cs) + (0.0,) * (degree - len(cs))
        pu = m.div(m.c(1.0), ac) if center is None else m.sub(ac, m.c(center))
        if coefs is None:
            coefs, u = [m.c(v) for v in cs], pu
            continue
        here = m.ge(ac, m.c(lo))
        coefs = [m.select(here, m.c(v), old) for v, old in zip(cs, coefs)]
        u = m.select(here, pu, u)
    q = m.poly(u, coefs)
    sq, sq_lo = m.two_prod(ac, ac)
    p, k = exp_parts(m, m.neg(sq))
    e = m.mul(m.mul(p, m.pow2(k)), m.sub(m.c(1.0), sq_lo))
    big = m.select(m.lt(a, m.pick(ERF_ONE)), m.fma(m.neg(e), q, m.c(1.0)), m.c(1.0))
    res = m.select(m.lt(a, m.pick(ERF_SMALL)), small, m.copysign(big, x))
    return m.select(m.isnan(x), x, res)


# ---- pow

def _log_ext(m: MathBuilder, a):
    """log(a) as a double-word (hi, lo), a > 0 finite double."""
    e, f = log_reduce(m, a)
    d = m.add(m.c(2.0), f)
    d_lo = m.sub(f, m.sub(d, m.c(2.0)))
    inv = m.div(m.c(1.0), d)
    s = m.mul(f, inv)                               # s + s_lo = f / (2 + f) to ~2^-104
    s_lo = m.mul(m.sub(m.fma(m.neg(s), d, f), m.mul(s, d_lo)), inv)
    z, z_lo = m.two_prod(s, s)
    c, c_lo = m.two_prod(z, s)                      # s^3
    c_lo = m.add(c_lo, m.fma(z_lo, s, m.mul(m.mul(m.c(3.0), z), s_lo)))
    t, t_lo = m.two_prod(m.c(TWO_THIRDS_HI), c)     # 2/3 s^3
    t_lo = m.add(t_lo, m.fma(m.c(TWO_THIRDS_HI), c_lo, m.mul(m.c(TWO_THIRDS_LO), c)))
    tail = m.mul(m.mul(c, z), m.poly(z, COEFFS["log_tail"][F64]))
    h, h_lo = m.fast_two_sum(m.add(s, s), t)
    h_lo = m.add(h_lo, m.add(m.add(s_lo, s_lo), m.add(t_lo, tail)))
    big, big_lo = m.two_sum(m.mul(e, m.pick(LOG_LN2_HI)), h)
    big_lo = m.add(big_lo, m.fma(e, m.pick(LOG_LN2_LO), h_lo))
    return m.fast_two_sum(big, big_lo)


def _pow64(m: MathBuilder, x, y, extended: bool):
    """pow in double: |x|^y = e^(y log|x|), y log|x| in double-word precision when
    `extended` (double results), a plain double otherwise (enough for float results)."""
    ax = m.abs(x)
    general = m.and_(m.and_(m.isfinite(ax), m.gt(ax, m.c(0.0))), m.isfinite(y))
    axs = m.select(general, ax, m.c(1.0))
    ys = m.select(general, y, m.c(0.0))
    if extended:
        lh, ll = _log_ext(m, axs)
        zh, zl = m.two_prod(ys, lh)
        zl = m.fma(ys, ll, zl)
    else:
        zh, zl = m.mul(ys, log_kernel(m, *log_reduce(m, axs))), m.c(0.0)
    in_range = m.lt(m.abs(zh), m.c(POW_MAX_EXP))
    zh = m.clamp(zh, -POW_MAX_EXP, POW_MAX_EXP)
    zl = m.select(in_range, zl, m.c(0.0))
    k = m.rint(m.mul(zh, m.pick(LOG2E)))
    r = m.fma(k, m.c(-LN2_HI[F64]), zh)
    r = m.add(m.fma(k, m.c(-LN2_LO[F64]), r), zl)
    p = m.add(m.c(1.0), m.fma(m.mul(r, r), m.poly(r, COEFFS["exp"][F64]), r))
    res = m.ldexp(p, m.to_int(k))

    y_int = m.eq(m.trunc(y), y)
    y_odd = m.and_(y_int, m.ne(m.mul(m.trunc(m.mul(y, m.c(0.5))), m.c(2.0)), y))
    neg = m.lt(x, m.c(0.0))
    res = m.select(m.and_(neg, y_odd), m.neg(res), res)
    res = m.select(m.and_(m.and_(neg, m.not_(y_int)), general), m.c(NAN), res)
    y_neg = m.lt(y, m.c(0.0))
    at_zero = m.select(y_neg, m.c(INF), m.c(0.0))
    res = m.select(m.eq(ax, m.c(0.0)), m.select(y_odd, m.copysign(at_zero, x), at_zero), res)
    at_inf = m.select(y_neg, m.c(0.0), m.c(INF))
    res = m.select(m.eq(ax, m.c(INF)),
                   m.select(m.and_(neg, y_odd), m.neg(at_inf), at_inf), res)
    y_inf = m.select(m.eq(ax, m.c(1.0)), m.c(1.0),
                     m.select(m.b.icmp_unsigned("==", m.gt(ax, m.c(1.0)), m.gt(y, m.c(0.0))),
                              m.c(INF), m.c(0.0)))
    res = m.select(m.isinf(y), y_inf, res)
    res = m.select(m.or_(m.isnan(x), m.isnan(y)), m.c(NAN), res)
    return m.select(m.or_(m.eq(y, m.c(0.0)), m.eq(x, m.c(1.0))), m.c(1.0), res)


def pow(m: MathBuilder, x, y):
    if m.fmt is F64:
        return _pow64(m, x, y, True)
    md = m.like(F64)
    return md.convert(_pow64(md, m.convert(x, md), m.convert(y, md), False), m)
