"""Helpers for native back end tests: sample data per dtype, one-loop kernels, and running a
program both natively and in the Loop IR interpreter to compare every output."""

from __future__ import annotations

import numpy as np

from kiln.codegen import compile_program
from kiln.ir.dtypes import DType
from kiln.loops import Buffer, BufferKind, Kernel, Loop, LoopKind, Program, Store, Var
from kiln.loops.interpreter import run_program

FLOATS = [DType.float16, DType.bfloat16, DType.float32, DType.float64]
SIGNED = [DType.int8, DType.int16, DType.int32, DType.int64]
UNSIGNED = [DType.uint8, DType.uint16, DType.uint32, DType.uint64]
INTS = SIGNED + UNSIGNED
ALL = FLOATS + INTS + [DType.bool]

SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, 1.5, 2.5, -2.5, 1e-40, 3.0e38,
           1e-8, 100.0, -7.25, 65504.0, 70000.0]


def sample(dtype: DType, n: int, rng: np.random.Generator, domain: str = "full") -> np.ndarray:
    """`n` values of `dtype` from a domain: 'full' (specials, extremes, random), 'small'
    (moderate magnitudes, no specials), 'divisor' (small, with 0 and -1), 'shift' (shift
    amounts from -2 to bits + 2), 'exponent' (0..6), 'finite' (finite floats within ±300)."""
    if dtype is DType.bool:
        return rng.integers(0, 2, n).astype(bool)
    if dtype.is_float:
        if domain == "full":
            vals = np.array(SPECIAL + list(rng.standard_normal(n) * 10))[:n]
        elif domain == "exponent":
            vals = rng.integers(-3, 4, n) + rng.choice([0.0, 0.5], n)
        else:
            vals = np.round(rng.uniform(-300, 300, n), 2)
            vals[:6] = [0.0, -0.0, 0.5, 1.5, -2.5, 2.5][:min(6, n)]
        with np.errstate(all="ignore"):
            return vals.astype(np.float32).astype(dtype.np) if dtype is not DType.float64 else vals
    info = np.iinfo(dtype.np)
    bits = dtype.itemsize * 8
    if domain == "full":
        vals = [info.min, info.max, 0, 1, -1, 2, info.min + 1, info.max - 1]
        vals += list(rng.integers(info.min, info.max, n, dtype=dtype.np, endpoint=True))
        return wrap(vals[:n], dtype)
    if domain == "divisor":
        vals = [0, -1, 1, 2, -2, 3, 7, -7] + list(rng.integers(-9, 10, n))
    elif domain == "shift":
        vals = list(range(-2, bits + 3)) + list(rng.integers(-2, bits + 3, n))
    elif domain == "exponent":
        vals = list(range(0, 7)) + list(rng.integers(0, 7, n))
    else:  # small / finite: avoid MIN (whose negation and division by -1 overflow Python ints)
        hi = min(info.max, 1000)
        lo = max(info.min + 1, -1000)
        vals = [0, 1, 5, -5, hi, lo, 100, -100] + list(rng.integers(lo, hi, n, endpoint=True))
    return wrap(vals[:n], dtype)


def wrap(values, dtype: DType) -> np.ndarray:
    """Python ints wrapped into `dtype` (two's complement), as an array."""
    bits = dtype.itemsize * 8
    unsigned = np.array([int(v) % (1 << bits) for v in values], dtype=np.uint64)
    return unsigned.astype(np.dtype(f"u{dtype.itemsize}")).view(dtype.np)


class ProgramBuilder:
    """Collects one-dimensional input buffers and elementwise kernels into one Program."""

    def __init__(self, name: str, n: int = 37, seed: int = 0):
        self.name, self.n = name, n
        self.rng = np.random.default_rng(seed)
        self.inputs: dict[str, Buffer] = {}
        self.data: dict[str, np.ndarray] = {}
        self.outputs: list[Buffer] = []
        self.kernels: list[Kernel] = []

    def input(self, dtype: DType, domain: str = "full", tag: str = "a") -> Buffer:
        name = f"{tag}_{domain}_{dtype.short}"
        if name not in self.inputs:
            self.inputs[name] = Buffer(name, dtype, (self.n,), BufferKind.INPUT)
            self.data[name] = sample(dtype, self.n, self.rng, domain)
        return self.inputs[name]

    def elementwise(self, name: str, dtype: DType, expr_of, kind: LoopKind,
                    width: int = 0) -> Buffer:
        """A kernel `out[i] = expr_of(i)` over 0..n with a loop of `kind`."""
        out = Buffer(f"{name}_{kind.name.lower()}", dtype, (self.n,), BufferKind.OUTPUT)
        i = Var("i")
        self.kernels.append(Kernel(out.name, [Loop(i, 0, self.n, [Store(out, (i,), expr_of(i))],
                                                   kind, width)]))
        self.outputs.append(out)
        return out

    def program(self) -> Program:
        ins = list(self.inputs.values())
        return Program(self.name, ins, self.outputs, self.kernels, ins + self.outputs)


def run_both(program: Program, inputs: dict, options=None):
    native = compile_program(program, options)
    return native, native.run(inputs), run_program(program, inputs)


def is_float_array(a: np.ndarray) -> bool:
    return a.dtype.kind == "f" or a.dtype == DType.bfloat16.np


def assert_same(name: str, got: np.ndarray, want: np.ndarray, rtol: float = 0.0,
                atol: float = 0.0) -> None:
    """Integers and bools bit-exact; floats exact (NaN where NaN) unless tolerances are given."""
    assert got.shape == want.shape, (name, got.shape, want.shape)
    assert got.dtype == want.dtype, (name, got.dtype, want.dtype)
    if not is_float_array(got):
        np.testing.assert_array_equal(got, want, err_msg=name)
        return
    g, w = got.astype(np.float64), want.astype(np.float64)
    if rtol == 0.0 and atol == 0.0:
        np.testing.assert_array_equal(g, w, err_msg=name)
    else:
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, equal_nan=True, err_msg=name)
