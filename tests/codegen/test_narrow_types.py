"""float8, float4, float8e8m0 and the 2- and 4-bit integers on the native back end: every
conversion to and from them, native vs kiln's interpreter, bit for bit.

Each test builds one graph of Cast nodes (both `saturate` settings) from one source dtype to
every target, so a source dtype costs one JIT compile. Inputs are dense: every byte of the
narrow types, every float16 / bfloat16 bit pattern, and float32 / float64 values at and around
each narrow float value (midpoints for ties, one ulp either side), ±0, ±Inf, NaN, the largest
finite values and just above, denormals.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from kiln.codegen import compile_program
from kiln.ir import ops
from kiln.ir.builder import GraphBuilder
from kiln.ir.dtypes import DType
from kiln.ir.interpreter import interpret
from kiln.ir.types import TensorType
from kiln.lowering import lower_graph

NARROW_FLOATS = [DType.float8e4m3fn, DType.float8e4m3fnuz, DType.float8e5m2,
                 DType.float8e5m2fnuz, DType.float4e2m1]
NARROW_INTS = [DType.int4, DType.uint4, DType.int2, DType.uint2]
NARROW_SOURCES = NARROW_FLOATS + [DType.float8e8m0] + NARROW_INTS
WIDE = [DType.float32, DType.float64, DType.float16, DType.bfloat16, DType.int8, DType.uint8,
        DType.int16, DType.uint16, DType.int32, DType.uint32, DType.int64, DType.uint64,
        DType.bool]


def _bits(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    return a.view(np.dtype(f"u{a.dtype.itemsize}")) if a.dtype.itemsize > 0 else a


def _run_casts(src: DType, data: np.ndarray, targets) -> None:
    """Cast `data` (of dtype src) to every (target, saturate); native == interpreter."""
    gb = GraphBuilder("casts")
    x = gb.input("x", TensorType(src, (len(data),)))
    outs, labels = [], []
    for to in targets:
        for sat in (0, 1):
            outs.append(gb.add(ops.Cast, [x], {"to": to, "saturate": sat})[0])
            labels.append(f"{src.short}->{to.short} saturate={sat}")
    gb.output(*outs)
    graph = gb.graph
    want = interpret(graph, {"x": data})
    got = compile_program(lower_graph(graph)).run({"x": data})
    for label, g, w in zip(labels, got, want):
        assert g.dtype == w.dtype, label
        gb_, wb = _bits(g), _bits(w)
        bad = np.flatnonzero(gb_ != wb)
        assert bad.size == 0, (f"{label}: {bad.size} differ, e.g. input "
                               f"{data[bad[:5]]!r} gave {g[bad[:5]]!r}, want {w[bad[:5]]!r}")


def _all_bytes(dtype: DType) -> np.ndarray:
    """Every byte value the type can hold (one element per byte, as ml_dtypes stores it)."""
    width = {DType.int4: 4, DType.uint4: 4, DType.int2: 2, DType.uint2: 2,
             DType.float4e2m1: 4}.get(dtype, 8)
    codes = np.arange(1 << width, dtype=np.uint8)
    # odd length: vector body plus a masked tail
    return np.concatenate([codes, codes[:3]]).view(dtype.np)


def _float_sweep(np_dtype) -> np.ndarray:
    """Each narrow float value, the midpoints between neighbours and one ulp around both,
    plus the special values."""
    vals = []
    for d in NARROW_FLOATS:
        v = np.arange(256 if d is not DType.float4e2m1 else 16, dtype=np.uint8).view(d.np)
        v = np.unique(v.astype(np.float64)[np.isfinite(v.astype(np.float64))])
        mids = (v[1:] + v[:-1]) / 2
        top = v[-1] + (v[-1] - v[-2]) / 2          # the midpoint above the largest finite
        vals += [v, mids, np.array([top, -top, v[-1] * 2, -v[-1] * 2])]
    base = np.concatenate(vals).astype(np_dtype)
    up = np.nextafter(base, np.array(np.inf, np_dtype))
    down = np.nextafter(base, np.array(-np.inf, np_dtype))
    info = np.finfo(np_dtype)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, info.max, -info.max,
                        info.tiny, -info.tiny, info.smallest_subnormal, 1e-30, -1e-30, 2.0 ** 127,
                        3.0e38, 1e10, -1e10, 2.0 ** 31, 2.0 ** 33 + 3, 0.5, 1.5, 2.5, -2.5,
                        7.5, 8.0, -8.5, 15.5, 300.7],
                       dtype=np.float64).astype(np_dtype)
    rng = np.random.default_rng(0)
    rand = (rng.standard_normal(500) * rng.choice([1e-3, 1, 10, 300, 1e5], 500)).astype(np_dtype)
    return np.concatenate([base, up, down, special, rand])


def _int_sweep(dtype: DType) -> np.ndarray:
    info = np.iinfo(dtype.np)
    vals = np.arange(-600, 600)
    vals = np.concatenate([vals, [info.min, info.max, info.min + 1, info.max - 1, 2 ** 24 + 1]])
    return np.clip(vals, info.min, info.max).astype(dtype.np)


def _source(src: DType) -> np.ndarray:
    if src in (DType.float16, DType.bfloat16):
        return np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(src.np)
    if src in (DType.float32, DType.float64):
        return _float_sweep(src.np)
    if src is DType.bool:
        return np.array([True, False, True])
    return _int_sweep(src)


NARROW_TARGETS = NARROW_FLOATS + [DType.float8e8m0] + NARROW_INTS


@pytest.mark.parametrize("src", WIDE, ids=lambda d: d.short)
def test_wide_to_narrow(src):
    _run_casts(src, _source(src), NARROW_TARGETS)


@pytest.mark.parametrize("src", NARROW_SOURCES, ids=lambda d: d.short)
def test_narrow_to_all(src):
    targets = [d for d in WIDE + NARROW_TARGETS if d is not src and _numpy_casts(src, d)]
    _run_casts(src, _all_bytes(src), targets)


def _numpy_casts(src: DType, dst: DType) -> bool:
    """Whether NumPy (ml_dtypes) casts src to dst at all: the interpreter's Cast cannot do
    e8m0 -> float8 nor int4 <-> uint4, so there is no reference to compare with."""
    try:
        np.zeros(1, src.np).astype(dst.np)
        return True
    except TypeError:
        return False


def test_rank0_scalar_code():
    """A rank-0 tensor runs the scalar (not vector) conversions."""
    for src in (DType.float32, DType.float8e4m3fn, DType.int4):
        gb = GraphBuilder("scalar")
        x = gb.input("x", TensorType(src, ()))
        outs = [gb.add(ops.Cast, [x], {"to": to})[0]
                for to in NARROW_TARGETS + [DType.float32]
                if to is not src and _numpy_casts(src, to)]
        gb.output(*outs)
        prog = compile_program(lower_graph(gb.graph))
        for v in (-3.0, 0.0, 500.0, np.nan):
            data = np.array(v, dtype=np.float32).astype(src.np)
            want = interpret(gb.graph, {"x": data})
            got = prog.run({"x": data})
            for g, w in zip(got, want):
                assert (_bits(g) == _bits(w)).all(), (src, v, g, w)


@pytest.mark.parametrize("src", [DType.float32, DType.float64, DType.float16, DType.int32],
                         ids=lambda d: d.short)
def test_to_e8m0_round_modes(src):
    """Cast to float8e8m0 by every round_mode and both saturate settings."""
    data = _source(src)
    gb = GraphBuilder("e8m0")
    x = gb.input("x", TensorType(src, (len(data),)))
    cases = [(mode, sat) for mode in ("up", "down", "nearest") for sat in (0, 1)]
    gb.output(*[gb.add(ops.Cast, [x], {"to": DType.float8e8m0, "round_mode": mode,
                                       "saturate": sat})[0] for mode, sat in cases])
    want = interpret(gb.graph, {"x": data})
    got = compile_program(lower_graph(gb.graph)).run({"x": data})
    for case, g, w in zip(cases, got, want):
        bad = np.flatnonzero(_bits(g) != _bits(w))
        assert bad.size == 0, (case, data[bad[:5]], _bits(g)[bad[:5]], _bits(w)[bad[:5]])


QUANT_TARGETS = [DType.float8e4m3fn, DType.float8e4m3fnuz, DType.float8e5m2, DType.float8e5m2fnuz,
                 DType.float4e2m1, DType.int4, DType.uint4, DType.int2, DType.uint2]


def test_quantize_dequantize_narrow():
    """QuantizeLinear to every narrow type (both saturate settings, per axis scales, a zero
    point where the type takes one) and DequantizeLinear back, in one graph."""
    rng = np.random.default_rng(1)
    data = np.concatenate([rng.standard_normal(3 * 41) * 300,
                           [np.inf, -np.inf, np.nan, 0.0, -0.0, 1e9]]).astype(np.float32)
    data = np.resize(data, (3, 43)).astype(np.float32)
    gb = GraphBuilder("quant")
    x = gb.input("x", TensorType(DType.float32, (3, 43)))
    scale = gb.constant(np.array([0.5, 3.0, 70.0], np.float32), "scale")
    outs = []
    for to in QUANT_TARGETS:
        zp_value = {DType.float4e2m1: 1.0, DType.int4: -2, DType.uint4: 3}.get(to)
        zp = None if zp_value is None else \
            gb.constant(np.full(3, zp_value).astype(to.np), f"zp_{to.short}")
        for sat in (0, 1):
            attrs = {"axis": 0, "saturate": sat}
            if zp is None:
                attrs["output_dtype"] = to
            q = gb.add(ops.QuantizeLinear, [x, scale, zp], attrs)[0]
            outs.append(q)
            outs.append(gb.add(ops.DequantizeLinear, [q, scale, zp], {"axis": 0})[0])
    gb.output(*outs)
    want = interpret(gb.graph, {"x": data})
    got = compile_program(lower_graph(gb.graph)).run({"x": data})
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.dtype == w.dtype, i
        differ = _bits(g) != _bits(w)
        if QUANT_TARGETS[i // 4] in NARROW_INTS:
            # ±Inf to an integer: the reference wraps int32 overflow adding the zero point
            differ &= np.isfinite(data)
        bad = np.flatnonzero(differ)
        assert bad.size == 0, (outs[i].name, w.dtype, data.reshape(-1)[bad[:5]],
                               g.reshape(-1)[bad[:5]], w.reshape(-1)[bad[:5]])


def test_strided_loads_and_stores():
    """Narrow tensors moved through transposes, concatenation and Where (gathers, scatters,
    masked tails), with a symbolic size, byte for byte."""
    rng = np.random.default_rng(2)
    gb = GraphBuilder("moves")
    feeds, outs = {}, []
    for k, dtype in enumerate(NARROW_SOURCES):
        a = gb.input(f"a{k}", TensorType(dtype, ("n", 7)))
        b = gb.input(f"b{k}", TensorType(dtype, ("n", 7)))
        cond = gb.input(f"c{k}", TensorType(DType.bool, ("n", 7)))
        t = gb.add(ops.Transpose, [a], {"perm": (1, 0)})[0]
        cat = gb.add(ops.Concat, [t, gb.add(ops.Transpose, [b], {"perm": (1, 0)})[0]],
                     {"axis": 1})[0]
        outs += [cat, gb.add(ops.Where, [cond, a, b])[0]]
        codes = _all_bytes(dtype).view(np.uint8)
        for name in (f"a{k}", f"b{k}"):
            feeds[name] = rng.choice(codes, size=(13, 7)).view(dtype.np)
        feeds[f"c{k}"] = rng.random((13, 7)) < 0.5
    gb.output(*outs)
    want = interpret(gb.graph, feeds)
    got = compile_program(lower_graph(gb.graph)).run(feeds)
    for i, (v, g, w) in enumerate(zip(outs, got, want)):
        assert g.dtype == w.dtype and g.shape == w.shape, v.name
        wb = _bits(w)
        if i % 2 == 1 and NARROW_SOURCES[i // 2] is DType.float8e5m2:
            # Where computes through float32: an e5m2 NaN leaves as the canonical 0x7E / 0xFE
            # (copies, as Concat and Transpose, keep its payload)
            wb = np.where((wb & 0x7C) == 0x7C, np.where(wb & 3, (wb & 0x80) | 0x7E, wb), wb)
        bad = np.flatnonzero(_bits(g) != wb)
        assert bad.size == 0, (v.name, g.dtype, _bits(g).reshape(-1)[bad[:6]],
                               _bits(w).reshape(-1)[bad[:6]])
