"""kiln's math library (kiln/codegen/mathlib.py) against NumPy.

Every function is compiled into one small module, as a loop applying it to an array, once for
scalars and once for vectors (<16 x float>, <8 x double>), and run over a dense sweep: every
power of two, the format's extremes, subnormals, signed zeros, Inf and NaN, random bit patterns
over the whole range, and values around each function's edges (poles, branch points, overflow
thresholds, the ends of polynomial pieces). float results are compared with NumPy's double
result rounded to float, double results with NumPy's double result; the error is counted in
units in the last place (ulp) of the result's format. Special values must match exactly.

The maximum error per function is printed with the test output (as is the throughput of exp,
tanh and erf against NumPy); the bound of 4 ulp is asserted for both formats, and scalar and
vector code must agree bit for bit. Loop and SLP vectorization are off in this module's pipeline so the scalar kernels
stay scalar (the vector kernels are vector IR already).
"""

from __future__ import annotations

import ctypes
import math
import time

import llvmlite.binding as llvm
import llvmlite.ir as ir
import numpy as np
import pytest

from kiln.codegen.mathlib import FUNCTIONS, emit_math
from kiln.codegen.options import CodegenError
from kiln.codegen.target import host_target

UNARY = [n for n, (_, arity) in FUNCTIONS.items() if arity == 1]
BINARY = [n for n, (_, arity) in FUNCTIONS.items() if arity == 2]
WIDTH = {np.float32: 16, np.float64: 8}
MAX_ULP = {np.float32: 4, np.float64: 4}
N_SWEEP = {np.float32: 1 << 20, np.float64: 1 << 17}


# ---- a minimal JIT: host target machine, -O3, MCJIT

def _kernel(module: ir.Module, name: str, elem: ir.Type, width: int, arity: int):
    """void kname(elem* a, elem* b, elem* out, i64 n): out[i] = name(a[i] (, b[i])) for i < n,
    `width` elements per step (n is a multiple of width)."""
    ptr = elem.as_pointer()
    i64 = ir.IntType(64)
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ptr, ptr, ptr, i64]),
                     f"k_{name}_{elem}_{width}")
    entry, loop, done = (fn.append_basic_block(s) for s in ("entry", "loop", "done"))
    b = ir.IRBuilder(entry)
    b.cbranch(b.icmp_signed(">", fn.args[3], ir.Constant(i64, 0)), loop, done)
    b.position_at_end(loop)
    i = b.phi(i64)
    i.add_incoming(ir.Constant(i64, 0), entry)
    vt = ir.VectorType(elem, width) if width > 1 else elem

    def at(p):
        q = b.gep(p, [i])
        return b.bitcast(q, vt.as_pointer()) if width > 1 else q

    align = 4 if isinstance(elem, ir.FloatType) else 8
    args = [b.load(at(fn.args[k]), align=align) for k in range(arity)]
    b.store(emit_math(b, name, args), at(fn.args[2]), align=align)
    nxt = b.add(i, ir.Constant(i64, width))
    i.add_incoming(nxt, b.block)
    b.cbranch(b.icmp_signed("<", nxt, fn.args[3]), loop, done)
    b.position_at_end(done)
    b.ret_void()
    return fn.name


_SIG = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)


class MathJit:
    """Kernels for (name, dtype, width) triples, compiled together in one module."""

    def __init__(self, specs):
        target = host_target()
        module = ir.Module(name="mathlib_test")
        module.triple = target.triple
        module.data_layout = target.data_layout
        names = {}
        for name, dtype, width in specs:
            elem = ir.FloatType() if dtype is np.float32 else ir.DoubleType()
            arity = FUNCTIONS[name][1]
            names[name, dtype, width] = _kernel(module, name, elem, width, arity)
        t0 = time.perf_counter()
        mod = llvm.parse_assembly(str(module))
        mod.verify()
        tm = target.create_target_machine()
        pto = llvm.create_pipeline_tuning_options(speed_level=3)
        pto.loop_vectorization = False
        pto.slp_vectorization = False
        pb = llvm.create_pass_builder(tm, pto)
        pb.getModulePassManager().run(mod, pb)
        self.optimized_ir = str(mod)
        self.engine = llvm.create_mcjit_compiler(mod, tm)
        self.engine.finalize_object()
        self.compile_seconds = time.perf_counter() - t0
        self.fns = {k: _SIG(self.engine.get_function_address(v)) for k, v in names.items()}

    def __call__(self, name, dtype, width, *inputs):
        """name applied to 1-d arrays; returns a new array of the same dtype."""
        n = len(inputs[0])
        pad = -n % width
        arrays = [np.ascontiguousarray(np.concatenate([x.astype(dtype), np.zeros(pad, dtype)]))
                  for x in inputs]
        out = np.empty(n + pad, dtype)
        a = arrays[0]
        b = arrays[1] if len(arrays) > 1 else arrays[0]
        self.fns[name, dtype, width](a.ctypes.data, b.ctypes.data, out.ctypes.data, n + pad)
        return out[:n]


# ---- references and error measure

def _sigmoid64(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0, e) / (1.0 + e)


_erf64 = np.frompyfunc(math.erf, 1, 1)

REFERENCE = {
    "exp": np.exp, "log": np.log, "tanh": np.tanh, "sigmoid": _sigmoid64,
    "erf": lambda x: _erf64(x).astype(np.float64),
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin, "acos": np.arccos,
    "atan": np.arctan, "sinh": np.sinh, "cosh": np.cosh, "asinh": np.arcsinh,
    "acosh": np.arccosh, "atanh": np.arctanh, "pow": np.power, "atan2": np.arctan2,
}


def reference(name, dtype, *inputs):
    """NumPy's double result, rounded to dtype."""
    with np.errstate(all="ignore"):
        return REFERENCE[name](*[x.astype(np.float64) for x in inputs]).astype(dtype)


def _ordinal(a):
    """Floats as integers in the order of their values (+0 and -0 both 0)."""
    it = np.int32 if a.dtype == np.float32 else np.int64
    i = a.view(it).astype(np.int64)
    mag = i & np.int64(np.iinfo(it).max)
    return np.where(i < 0, -mag, mag)


def compare(got, ref):
    """(ulp error per element, mask of special-value mismatches). Special values must match
    exactly: NaN where the reference is NaN, the same infinity, the same signed zero."""
    nan_g, nan_r = np.isnan(got), np.isnan(ref)
    inf = np.isinf(got) | np.isinf(ref)
    with np.errstate(invalid="ignore"):
        zero = (got == 0) & (ref == 0)
        bad = (nan_g != nan_r) | (inf & (got != ref) & ~nan_g & ~nan_r)
    bad |= zero & (np.signbit(got) != np.signbit(ref))
    og, orf = _ordinal(got), _ordinal(ref)
    same = np.sign(og) * np.sign(orf) >= 0
    ulp = np.where(same, np.abs(og - orf).astype(np.float64),
                   np.abs(og.astype(np.float64)) + np.abs(orf.astype(np.float64)))
    ulp[nan_g | nan_r | inf] = 0
    return ulp, bad


# ---- inputs: a dense sweep per function

# (ranges sampled uniformly, points whose neighbourhood is sampled densely) per function
DOMAINS = {
    "exp": ([(-110, 95), (-750, 712), (-1, 1)],
            [0, 88.72283935546875, 88.7228, -87.33654, -103.97208, -104, 709.782712893384,
             -708.3964185322641, -745.1332191019411, 0.34657359]),
    "log": ([(0, 4), (0.5, 2), (0, 1e-30)], [1, 0.70710678, 1.41421356, 2, 0.5, 1.17549435e-38,
                                             2.2250738585072014e-308]),
    "tanh": ([(-25, 25), (-1, 1)], [0, 0.625, -0.625, 9.0, 19.0, 0.5493061]),
    "sigmoid": ([(-110, 40), (-750, 40), (-5, 5)], [0, -87.3, -88.7, -103.9, 16.6, 36.7,
                                                    -745.1, -708.4]),
    "erf": ([(-7, 7), (-1, 1)], [0, 0.84375, 1, 1.75, 2.25, 3.25, 3.9, 4, 5.9, 6, -1, -4]),
    "sin": ([(-10, 10), (-1e5, 1e5), (-1e7, 1e7)],
            [0] + [k * math.pi / 2 for k in (1, 2, 3, 4, 5, 7, 10, 100, 1000, 12345, 65536)]
            + [2.0 ** 17, 2.0 ** 20, 16367173.0 * 2 ** 72, 6381956970095103 * 2.0 ** 797]),
    "asin": ([(-1.1, 1.1), (-1, 1)], [0, 0.5, -0.5, 1, -1, 0.999, 0.9]),
    "atan": ([(-20, 20), (-1, 1), (-1e10, 1e10)], [0, 0.41421356, 2.41421356, 1, -1, 1e8]),
    "sinh": ([(-100, 100), (-720, 720), (-2, 2)], [0, 1, -1, 89.4159851, 88.7228, 710.4758600739,
                                                   709.78]),
    "asinh": ([(-10, 10), (-1e6, 1e6), (-2, 2)], [0, 2, -2, 4096, 2.0 ** 28, 1e19, 1.8e19]),
    "acosh": ([(0.5, 10), (1, 3), (1, 1e6)], [1, 2, 4096, 2.0 ** 28, 1.0000001]),
    "atanh": ([(-1.1, 1.1), (-1, 1)], [0, 0.5, -0.5, 1, -1, 0.99999]),
}
DOMAINS["cos"] = DOMAINS["tan"] = DOMAINS["sin"]
DOMAINS["acos"] = DOMAINS["asin"]
DOMAINS["cosh"] = DOMAINS["sinh"]


def _finite_bits(dtype, n, rng):
    it = np.uint32 if dtype is np.float32 else np.uint64
    x = rng.integers(0, np.iinfo(it).max, n + n // 64 + 16, dtype=it, endpoint=True).view(dtype)
    return x[np.isfinite(x)][:n]


def _neighbours(points, dtype, k=300):
    """Every value within k ulps of each point (as dtype)."""
    out = []
    steps = np.arange(-k, k + 1)
    for p in points:
        p = dtype(p)
        if not np.isfinite(p):
            continue
        base = _ordinal(np.array([p], dtype))[0]
        o = base + steps
        it = np.int32 if dtype is np.float32 else np.int64
        bits = np.where(o < 0, (-o) | np.int64(np.iinfo(it).min), o).astype(it)
        out.append(bits.view(dtype))
        out.append(-bits.view(dtype))
    return np.concatenate(out)


def base_inputs(dtype, rng):
    info = np.finfo(dtype)
    powers = np.ldexp(np.ones(1, dtype), np.arange(info.minexp - info.nmant, info.maxexp))
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, info.max, -info.max,
                        info.smallest_normal, -info.smallest_normal, info.smallest_subnormal,
                        -info.smallest_subnormal], dtype)
    subnormal = np.arange(1, 4000).astype(np.int64) * 977
    it = np.int32 if dtype is np.float32 else np.int64
    subnormal = subnormal.astype(it).view(dtype)
    n = N_SWEEP[dtype]
    return np.concatenate([special, powers, -powers, subnormal, -subnormal,
                           _finite_bits(dtype, n // 3, rng),
                           rng.uniform(-4, 4, n // 8).astype(dtype)])


def unary_inputs(name, dtype, rng):
    ranges, points = DOMAINS[name]
    n = N_SWEEP[dtype]
    parts = [base_inputs(dtype, rng), _neighbours(points, dtype)]
    for lo, hi in ranges:
        parts.append(rng.uniform(lo, hi, n // (2 * len(ranges))).astype(dtype))
    return np.concatenate(parts)


def binary_inputs(name, dtype, rng):
    info = np.finfo(dtype)
    n = N_SWEEP[dtype] // 8
    special = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 0.5, -0.5, 2.0, -2.0,
                        3.0, -3.0, 2.5, -2.5, 1e10, -1e10, 1e-10, 0.3, info.max, -info.max,
                        info.smallest_normal, info.smallest_subnormal, 1 + info.eps,
                        1 - info.epsneg, 2.0 ** 60, -(2.0 ** 60) - 1e3, 7.0, -7.0], dtype)
    sx, sy = (a.ravel() for a in np.meshgrid(special, special))
    xs, ys = [sx], [sy]
    bits = lambda: _finite_bits(dtype, n, rng)      # noqa: E731
    xs.append(bits()), ys.append(bits())
    if name == "pow":
        lim = 88.0 if dtype is np.float32 else 700.0
        x = rng.uniform(0, 10, n)
        xs += [x, -np.floor(rng.uniform(0, 20, n)) - rng.choice([0, 0.5], n),
               1 + rng.uniform(-1e-3, 1e-3, n), rng.uniform(1.5, 3, n), rng.uniform(0.2, 0.7, n),
               bits()]
        ys += [rng.uniform(-40, 40, n), np.floor(rng.uniform(-30, 30, n)),
               rng.uniform(-1e5, 1e5, n), rng.uniform(0.9, 1.2, n) * lim / np.log(2.25),
               -rng.uniform(0.9, 1.3, n) * lim / np.log(1 / 0.45), rng.uniform(-3, 3, n)]
    else:
        xs += [rng.uniform(-10, 10, n), rng.uniform(-1, 1, n) * 1e30, bits()]
        ys += [rng.uniform(-10, 10, n), rng.uniform(-1, 1, n), rng.uniform(-1e-30, 1e-30, n)]
        r = rng.uniform(-3, 3, n)
        xs.append(r), ys.append(r * rng.choice([0.41421356, 2.41421356, 1.0], n))
    return (np.concatenate([x.astype(dtype) for x in xs]),
            np.concatenate([y.astype(dtype) for y in ys]))


# ---- an exact reference for sin/cos/tan of huge double arguments, where libm can be off

def _pi_scaled(bits: int) -> int:
    """floor(pi * 2^bits) from Machin's formula in integer arithmetic."""
    scale = 1 << (bits + 32)

    def atan_inv(n: int) -> int:
        total, term, k, sign = 0, scale // n, 1, 1
        while term:
            total += sign * (term // k)
            term //= n * n
            k, sign = k + 2, -sign
        return total

    return (16 * atan_inv(5) - 4 * atan_inv(239)) >> 32


_PI_BITS = 1400
_PI = _pi_scaled(_PI_BITS)


def exact_trig(name: str, x: float) -> float:
    """sin/cos/tan(x) from an exact reduction x = k pi/2 + r (pi to 1400 bits), then libm on
    |r| <= pi/4 (within an ulp or so)."""
    from fractions import Fraction
    fx = Fraction(x)
    half_pi = Fraction(_PI, 1 << (_PI_BITS + 1))
    k = round(fx / half_pi)
    r = float(fx - k * half_pi)
    s, c = math.sin(r), math.cos(r)
    q = k % 4
    if name == "tan":
        return s / c if q % 2 == 0 else -c / s
    if name == "cos":
        q = (q + 1) % 4
    return (s, c, -s, -c)[q]


def refine(name, dtype, inputs, got, ref, ulp):
    """Where a double result is further than the bound from NumPy's, recompute the reference
    exactly when we can (sin/cos/tan); returns the number of references replaced."""
    if dtype is not np.float64 or name not in ("sin", "cos", "tan"):
        return 0
    far = np.flatnonzero(ulp > MAX_ULP[dtype])
    for i in far:
        ref[i] = exact_trig(name, float(inputs[0][i]))
    ulp[far] = compare(got[far], ref[far])[0]
    return len(far)


# ---- tests

DTYPES = [np.float32, np.float64]


@pytest.fixture(scope="module")
def jit():
    return MathJit([(n, dt, w) for n in FUNCTIONS for dt in DTYPES for w in (1, WIDTH[dt])])


def _same_bits(a, b):
    return np.array_equal(a.view(np.uint8), b.view(np.uint8)) or bool(
        np.all((a == b) | (np.isnan(a) & np.isnan(b))))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_accuracy(jit, name, dtype, capsys):
    rng = np.random.default_rng(sorted(FUNCTIONS).index(name) * 2 + (dtype is np.float64))
    with np.errstate(all="ignore"):
        if FUNCTIONS[name][1] == 1:
            inputs = (unary_inputs(name, dtype, rng),)
        else:
            inputs = binary_inputs(name, dtype, rng)
    ref = reference(name, dtype, *inputs)
    vec = jit(name, dtype, WIDTH[dtype], *inputs)
    scalar = jit(name, dtype, 1, *inputs)
    assert _same_bits(vec, scalar), f"{name}: scalar and vector code differ"
    ulp, bad = compare(vec, ref)
    replaced = refine(name, dtype, inputs, vec, ref, ulp)
    worst = int(np.argmax(ulp))
    note = f", {replaced} references recomputed exactly (libm off)" if replaced else ""
    with capsys.disabled():
        print(f"\n  {name:8s} {np.dtype(dtype).name}: max {ulp.max():.0f} ulp, "
              f"{np.mean(ulp > 0.5) * 100:.1f}% not exact, over {len(ref)} inputs{note}", end="")
    assert not bad.any(), (
        f"{name}: special values differ at {[x[bad][:5] for x in inputs]}: "
        f"got {vec[bad][:5]}, expected {ref[bad][:5]}")
    assert ulp.max() <= MAX_ULP[dtype], (
        f"{name}({', '.join(repr(x[worst]) for x in inputs)}) = {vec[worst]!r}, "
        f"expected {ref[worst]!r} ({ulp[worst]:.0f} ulp)")


def test_other_widths():
    """Narrower vectors (SSE, AVX2 widths) compute exactly what scalar code computes."""
    widths = {np.float32: (4, 8), np.float64: (2, 4)}
    other = MathJit([(n, dt, w) for n in FUNCTIONS for dt in DTYPES for w in (1,) + widths[dt]])
    rng = np.random.default_rng(5)
    for dt in DTYPES:
        base = base_inputs(dt, rng)[:20000]
        second = rng.permutation(base)
        for name in FUNCTIONS:
            args = (base,) if FUNCTIONS[name][1] == 1 else (base, second)
            scalar = other(name, dt, 1, *args)
            for w in widths[dt]:
                assert _same_bits(other(name, dt, w, *args), scalar), (name, dt, w)


def test_hardest_reductions(jit):
    """The doubles closest to a multiple of pi/2 (Muller's worst case, within 2^-61) and the
    float worst case: full precision through the huge-argument path."""
    x64 = np.array([6381956970095103 * 2.0 ** 797, -6381956970095103 * 2.0 ** 797,
                    5261692873635770 * 2.0 ** 499, 8.0e307, 1.0e22, 2.0 ** 1023])
    for name in ("sin", "cos", "tan"):
        got = jit(name, np.float64, 8, x64)
        ref = np.array([exact_trig(name, float(v)) for v in x64])
        ulp, bad = compare(got, ref)
        assert not bad.any() and ulp.max() <= 2, (name, got, ref)
    x32 = np.array([16367173 * 2.0 ** 72, 1.0e38, 3.4e38, 2.0 ** 17 + 1, 1e5], np.float32)
    for name in ("sin", "cos", "tan"):
        ulp, _ = compare(jit(name, np.float32, 16, x32), reference(name, np.float32, x32))
        assert ulp.max() <= 1, name


def test_one_function_per_module_and_type():
    module = ir.Module()
    fn = ir.Function(module, ir.FunctionType(ir.FloatType(), [ir.FloatType()]), "f")
    b = ir.IRBuilder(fn.append_basic_block())
    y = emit_math(b, "exp", [emit_math(b, "exp", [fn.args[0]])])
    b.ret(y)
    defined = [f.name for f in module.functions if f.name.startswith("kiln.math.")]
    assert defined == ["kiln.math.exp.f32"]
    assert "alwaysinline" in module.get_global("kiln.math.exp.f32").attributes


def test_bad_calls():
    module = ir.Module()
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ir.FloatType(), ir.IntType(32),
                                                             ir.DoubleType()]), "f")
    b = ir.IRBuilder(fn.append_basic_block())
    x, i, d = fn.args
    with pytest.raises(CodegenError, match="unknown math function"):
        emit_math(b, "gamma", [x])
    with pytest.raises(CodegenError, match="float or double"):
        emit_math(b, "exp", [i])
    with pytest.raises(CodegenError, match="operands"):
        emit_math(b, "pow", [x])
    with pytest.raises(CodegenError, match="operands"):
        emit_math(b, "atan2", [x, d])


def _best_time(f, repeat=5):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best


def test_throughput_report(jit, capsys):
    """kiln's vector code against NumPy on 10^6 floats, one thread (reported, not asserted)."""
    n = 1 << 20
    x = np.random.default_rng(0).uniform(-5, 5, n).astype(np.float32)
    out = np.empty_like(x)
    lines = []
    for name, ref in (("exp", np.exp), ("tanh", np.tanh), ("erf", None)):
        kernel = jit.fns[name, np.float32, 16]
        t_kiln = _best_time(lambda: kernel(x.ctypes.data, x.ctypes.data, out.ctypes.data, n))
        if ref is not None:
            t_np = _best_time(lambda: ref(x, out=out))
            other = f"NumPy {t_np / n * 1e9:5.2f} ns ({t_np / t_kiln:4.1f}x)"
        else:
            sub = x[:n // 16]
            t_np = _best_time(lambda: _erf64(sub), repeat=1) * 16
            other = f"NumPy has no erf; math.erf per element {t_np / n * 1e9:5.1f} ns"
        lines.append(f"  {name:5s} float32: kiln {t_kiln / n * 1e9:5.2f} ns/element, {other}")
    with capsys.disabled():
        print("\n" + "\n".join(lines), end="")
