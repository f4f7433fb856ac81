"""The Loop IR interpreter: runs kernels element by element in Python.

Slow on purpose and simple on purpose: it is how lowering and schedule transforms are tested
on small sizes (its results are compared with the Graph IR interpreter, and with native code).
Buffers live as flat NumPy arrays; a view reads its root's memory through its strides and offset.
Arithmetic uses NumPy scalars of each expression's dtype, so float32 rounds like float32.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from ..errors import ExecutionError
from ..ir.dtypes import DType
from .buffer import Buffer, BufferKind
from .expr import Binary, Cast, Compare, Const, Expr, Load, Reduce, Select, Unary, Var
from .stmt import Assign, If, Kernel, Local, Loop, Program, Store


class Memory:
    """Flat storage per root buffer, and the values of symbolic sizes."""

    def __init__(self, sizes: Mapping[str, int] | None = None):
        self.arrays: dict[Buffer, np.ndarray] = {}
        self.sizes = dict(sizes or {})

    def bind(self, buffer: Buffer, array: np.ndarray) -> None:
        self.arrays[buffer.root] = np.ascontiguousarray(array, dtype=buffer.dtype.np).reshape(-1)

    def allocate(self, buffer: Buffer) -> None:
        root = buffer.root
        if root in self.arrays:
            return
        if root.kind is BufferKind.CONSTANT:
            self.bind(root, root.data)
            return
        n = int(np.prod([self.index_value(d) for d in root.shape], dtype=np.int64))
        self.arrays[root] = np.zeros(n, dtype=root.dtype.np)

    def index_value(self, e: Expr, env: Mapping | None = None) -> int:
        return int(evaluate(e, env or {}, self))

    def address(self, buffer: Buffer, index, env) -> int:
        """Element position in the root buffer's memory (a view's strides and offset are
        already expressed in it)."""
        addr = self.index_value(buffer.offset, env)
        for i, s in zip(index, buffer.strides):
            addr += int(evaluate(i, env, self)) * self.index_value(s, env)
        return addr

    def array(self, buffer: Buffer) -> np.ndarray:
        shape = tuple(self.index_value(d) for d in buffer.shape)
        flat = self.arrays[buffer.root]
        return flat[: int(np.prod(shape, dtype=np.int64))].reshape(shape).copy()


def run_program(program: Program, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """Run a whole program on NumPy inputs (by input buffer name); returns its outputs."""
    sizes = {}
    for name, (buffer, axis) in program.sizes.items():
        sizes[name] = int(np.shape(inputs[buffer.name])[axis])
    mem = Memory(with_upper_bounds(program, sizes))
    for b in program.inputs:
        mem.bind(b, inputs[b.name])
    for b in program.buffers:
        mem.allocate(b)
    for b in program.outputs:
        mem.allocate(b)
    for k in program.kernels:
        run_kernel(k, mem)
        for name, c in program.computed.items():     # a size this kernel computed
            if c.buffer in k.buffers:
                mem.sizes[name] = int(mem.arrays[c.buffer.root][0])
    return [mem.array(b) for b in program.graph_outputs()]


def with_upper_bounds(program: Program, sizes: Mapping[str, int]) -> dict:
    """`sizes` (bound by the inputs) and each size kernels compute at its upper bound: the
    binding memory is planned and allocated for."""
    out = dict(sizes)
    for name, c in program.computed.items():
        out[name] = Memory(out).index_value(c.upper)
    return out


def computed_shapes(program: Program, sizes: Mapping[str, int], counts: list) -> list:
    """The real shapes of the graph outputs, once the kernels have computed their sizes
    (`counts`: the values of `program.computed`, in order)."""
    mem = Memory({**sizes, **dict(zip(program.computed, (int(c) for c in counts)))})
    return [tuple(mem.index_value(d) for d in b.shape) for b in program.graph_outputs()]


def run_kernel(kernel: Kernel, mem: Memory) -> None:
    for b in kernel.buffers:
        mem.allocate(b)
    with np.errstate(all="ignore"):
        _exec(kernel.body, dict(mem.sizes), mem)


def _exec(stmts, env: dict, mem: Memory) -> None:
    for s in stmts:
        if isinstance(s, Loop):
            start, stop = mem.index_value(s.start, env), mem.index_value(s.stop, env)
            for i in range(start, stop):
                env[s.var.name] = i
                _exec(s.body, env, mem)
            env.pop(s.var.name, None)
        elif isinstance(s, Store):
            value = evaluate(s.value, env, mem)
            if s.buffer.dtype is not s.buffer.root.dtype:     # a view reinterpreting the bits
                value = np.asarray(value, s.buffer.dtype.np).view(s.buffer.root.dtype.np)[()]
            mem.arrays[s.buffer.root][mem.address(s.buffer, s.index, env)] = value
        elif isinstance(s, (Local, Assign)):
            env[s.var.name] = _as(evaluate(s.init if isinstance(s, Local) else s.value, env, mem),
                                  s.var.dtype)
        elif isinstance(s, If):
            _exec(s.then if evaluate(s.cond, env, mem) else s.orelse, env, mem)
        else:
            raise ExecutionError(f"unknown Loop IR statement {s!r}")


def _as(x, dtype: DType):
    return dtype.np.type(x) if dtype is not DType.string else x


def evaluate(e: Expr, env: Mapping, mem: Memory):
    if isinstance(e, Const):
        return _as(e.value, e.dtype)
    if isinstance(e, Var):
        if e.name in env:
            return env[e.name]
        if e.name in mem.sizes:
            return mem.sizes[e.name]
        raise ExecutionError(f"Loop IR variable {e.name} is not bound")
    if isinstance(e, Load):
        addr = mem.address(e.buffer, e.index, env)
        v = mem.arrays[e.buffer.root][addr]
        return v if e.buffer.dtype is e.buffer.root.dtype else v.view(e.buffer.dtype.np)  # bits
    if isinstance(e, Binary):
        return _binary(e.op, evaluate(e.a, env, mem), evaluate(e.b, env, mem), e.a.dtype)
    if isinstance(e, Compare):
        a, b = evaluate(e.a, env, mem), evaluate(e.b, env, mem)
        return np.bool_({"lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b, "eq": a == b,
                         "ne": a != b}[e.op])
    if isinstance(e, Unary):
        return _unary(e.op, evaluate(e.a, env, mem), e.a.dtype)
    if isinstance(e, Select):
        return evaluate(e.a, env, mem) if evaluate(e.cond, env, mem) else evaluate(e.b, env, mem)
    if isinstance(e, Cast):
        return np.asarray(evaluate(e.a, env, mem)).astype(e.dtype.np)[()]
    if isinstance(e, Reduce):
        acc = evaluate(e.init, env, mem)
        local = dict(env)
        for idx in _ranges(e.axes, local, mem):
            acc = _binary(e.combiner, acc, evaluate(e.body, local, mem), e.init.dtype)
        return _as(acc, e.init.dtype)
    raise ExecutionError(f"unknown Loop IR expression {e!r}")


def _ranges(axes, env, mem, k=0):
    if k == len(axes):
        yield None
        return
    v, s, t = axes[k]
    for i in range(mem.index_value(s, env), mem.index_value(t, env)):
        env[v.name] = i
        yield from _ranges(axes, env, mem, k + 1)


def _binary(op, a, b, dtype: DType):
    t = dtype.np.type
    if op == "add":
        return t(a + b)
    if op == "sub":
        return t(a - b)
    if op == "mul":
        return t(a * b)
    if op == "div":
        if dtype.is_float:
            return t(np.divide(a, b))
        return t(0) if b == 0 else t(abs(int(a)) // abs(int(b)) * (1 if (a >= 0) == (b >= 0) else -1))
    if op == "floordiv":
        if dtype.is_float:
            return t(np.floor_divide(a, b))
        return t(int(a) // int(b)) if b else t(0)
    if op == "mod":
        return t(np.mod(a, b)) if dtype.is_float else (t(int(a) % int(b)) if b else t(0))
    if op == "fmod":
        return t(np.fmod(a, b)) if dtype.is_float or b else t(0)
    if op == "max":
        return t(np.maximum(a, b))
    if op == "min":
        return t(np.minimum(a, b))
    if op == "pow":
        return t(np.power(a, b))
    if op == "atan2":
        return t(np.arctan2(a, b))
    if op in ("and", "or", "xor"):
        f = {"and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor}[op]
        return t(f(a, b))
    if op == "shl":
        return t(np.left_shift(a, b)) if 0 <= int(b) < dtype.itemsize * 8 else t(0)
    if op == "shr":
        return t(np.right_shift(a, b)) if 0 <= int(b) < dtype.itemsize * 8 else t(0)
    raise ExecutionError(f"unknown binary op {op}")


_UNARY = {
    "neg": np.negative, "abs": np.abs, "sign": np.sign, "floor": np.floor, "ceil": np.ceil,
    "round": np.rint, "trunc": np.trunc, "exp": np.exp, "log": np.log, "sqrt": np.sqrt,
    "tanh": np.tanh, "sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin,
    "acos": np.arccos, "atan": np.arctan, "sinh": np.sinh, "cosh": np.cosh, "asinh": np.arcsinh,
    "acosh": np.arccosh, "atanh": np.arctanh, "isnan": np.isnan, "isinf": np.isinf,
}


def _unary(op, a, dtype: DType):
    if op in _UNARY:
        return _UNARY[op](a)
    t = dtype.np.type
    if op == "not":
        return np.logical_not(a) if dtype is DType.bool else np.invert(a)
    if op == "rsqrt":
        return t(1) / np.sqrt(a)
    if op == "reciprocal":
        return t(1) / a
    if op == "sigmoid":
        return t(1) / (t(1) + np.exp(-a))
    if op == "erf":
        return t(math.erf(float(a)))
    raise ExecutionError(f"unknown unary op {op}")
