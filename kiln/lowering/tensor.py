"""The lazily defined tensor that lowerings pass around, and how one becomes memory.

A `Tensor` is a shape (index expressions, symbolic sizes allowed), a dtype and `at`: the function
from an index (one i64 Expr per axis) to the element's scalar Expr. A tensor in memory is
`Tensor.of(buffer)`, whose `at` is a Load; an op's result is usually a new `at` built from its
inputs' `at`s, so composing lowerings composes index mappings and arithmetic with no buffer in
between. `materialize` writes a tensor into a buffer with one loop nest; the one function that
picks that nest's loop kinds is `loop_kinds`.

Narrow floats (float16, bfloat16) are computed in float32: `widen` on the way in, `narrow` on the
way out, and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..ir.dtypes import DType
from ..loops.buffer import Buffer, row_major_strides
from ..loops.expr import Const, Expr, Load, children, simplify_index
from ..loops.stmt import Kernel, Loop, LoopKind, Store, exprs_of, walk
from . import exprs as E

Index = tuple


@dataclass(eq=False)
class Tensor:
    shape: tuple                       # one i64 Expr per axis
    dtype: DType
    at: Callable[[Index], Expr]        # the element at an index
    buffer: Buffer | None = None       # set when the elements are in memory and `at` loads them
    # a better way to write this tensor into a buffer than one loop nest over `at` (Concat)
    write: Callable[["object", Buffer], list] | None = None

    @property
    def rank(self) -> int:
        return len(self.shape)

    @staticmethod
    def of(buffer: Buffer) -> "Tensor":
        """The elements of a buffer (or of a view of one)."""
        def at(idx):
            assert len(idx) == buffer.rank, (buffer, idx)
            return Load(buffer, tuple(simplify_index(E.index(i)) for i in idx))
        return Tensor(buffer.shape, buffer.dtype, at, buffer=buffer)

    @staticmethod
    def holding(buffer: Buffer, definition: "Tensor") -> "Tensor":
        """A materialized tensor that still knows how it was computed: read at a constant index,
        it gives the defining expression when that needs no memory (a shape computed from
        symbolic sizes, say), so compile-time values flow through materialized nodes."""
        known: dict = {}

        def at(idx):
            idx = tuple(simplify_index(E.index(i)) for i in idx)
            if all(isinstance(i, Const) for i in idx):
                if idx not in known:
                    v = E.fold(definition.at(idx))
                    known[idx] = None if E.has_loads(v) else v
                if known[idx] is not None:
                    return known[idx]
            return Load(buffer, idx)
        return Tensor(buffer.shape, buffer.dtype, at, buffer=buffer)

    @staticmethod
    def fill(shape, value: Expr) -> "Tensor":
        """Every element is `value` (an expression without loop indices)."""
        return Tensor(tuple(shape), value.dtype, lambda idx: value)

    def remap(self, shape, to_source: Callable[[Index], Index]) -> "Tensor":
        """A tensor of `shape` whose element at idx is this tensor's at to_source(idx)."""
        return Tensor(tuple(shape), self.dtype, lambda idx: self.at(to_source(tuple(idx))))

    def static_shape(self) -> tuple | None:
        """The shape as ints when every dim is a compile-time constant."""
        if all(isinstance(d, Const) for d in self.shape):
            return tuple(d.value for d in self.shape)
        return None


# --- computing in a wider float ------------------------------------------------------------------

NARROW_FLOATS = frozenset({DType.float16, DType.bfloat16, DType.float8e4m3fn,
                           DType.float8e4m3fnuz, DType.float8e5m2, DType.float8e5m2fnuz,
                           DType.float4e2m1, DType.float8e8m0})
NARROW_INTS = frozenset({DType.int4, DType.uint4, DType.int2, DType.uint2})


def compute_dtype(dtype: DType) -> DType:
    """The dtype arithmetic on `dtype` values is done in."""
    if dtype in NARROW_INTS:
        return DType.int32
    return DType.float32 if dtype in NARROW_FLOATS else dtype


def widen(e: Expr) -> Expr:
    return E.cast(e, compute_dtype(e.dtype))


def narrow(e: Expr, dtype: DType) -> Expr:
    """A computed value stored as `dtype` (rounded to nearest even when narrower)."""
    return E.cast(e, dtype)


# --- broadcasting --------------------------------------------------------------------------------

def broadcast_shape(*shapes) -> tuple:
    """NumPy broadcasting of Expr shapes. A dim that is not 1 wins over 1; a constant wins over a
    symbol (which must then be 1 or equal to it); two different symbols give their max."""
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for k in range(rank):
        column = [s[k - rank + len(s)] for s in shapes if k - rank + len(s) >= 0]
        dims = []
        for d in column:
            if not E.is_const(d, 1) and d not in dims:
                dims.append(d)
        consts = {d.value for d in dims if isinstance(d, Const)}
        if len(consts) > 1:
            raise ValueError(f"cannot broadcast dims {sorted(consts)}")
        if consts:
            out.append(Const(consts.pop()))
        elif not dims:
            out.append(E.ONE)
        else:
            d = dims[0]
            for other in dims[1:]:
                d = E.maximum(d, other)
            out.append(d)
    return tuple(out)


def broadcast_index(shape, out_shape, idx) -> Index:
    """The index into a tensor of `shape` that broadcasts to `out_shape`, at output index idx.
    A dim of 1 is read at 0; a symbolic dim that may be 1 at run time is read at min(i, d - 1)."""
    lead = len(out_shape) - len(shape)
    out = []
    for d, big, i in zip(shape, out_shape[lead:], idx[lead:]):
        if E.is_const(d, 1):
            out.append(E.ZERO)
        elif d == big or (isinstance(d, Const) and isinstance(big, Const)):
            out.append(i)
        else:
            out.append(E.minimum(i, E.sub(d, 1)))
    return tuple(out)


def broadcast_to(t: Tensor, out_shape) -> Tensor:
    if tuple(t.shape) == tuple(out_shape):
        return t
    return t.remap(out_shape, lambda idx: broadcast_index(t.shape, out_shape, idx))


def apply(fn: Callable[..., Expr], inputs, out_dtype: DType) -> Tensor:
    """The broadcasting elementwise tensor out[i] = fn(*inputs[i]). fn sees each operand in its
    compute dtype (None for an absent optional input); its result is stored as `out_dtype`."""
    present = [t for t in inputs if t is not None]
    shape = broadcast_shape(*(t.shape for t in present))

    def at(idx):
        args = [None if t is None else widen(t.at(broadcast_index(t.shape, shape, idx)))
                for t in inputs]
        return narrow(fn(*args), out_dtype)
    return Tensor(shape, out_dtype, at)


# --- materializing -------------------------------------------------------------------------------

VECTOR_BYTES = 64                  # one AVX-512 register
MIN_VECTOR_TRIP = 4                # a shorter innermost loop is not worth vectorizing
PARALLEL_MIN_ELEMENTS = 1 << 15    # fewer elements than this are not worth waking the pool


def loop_kinds(shape, buffer: Buffer) -> list[tuple[LoopKind, int]]:
    """The default schedule of a nest writing `buffer` over `shape`: (kind, width) per loop,
    outermost first. The innermost loop is VECTORIZED when the stores are contiguous along it
    (lanes of at least 4 bytes, 64 bytes a vector); the outermost loop that is not statically 1
    is PARALLEL when it is not that innermost loop and there are enough elements (any symbolic
    dim counts as enough). Schedule transforms refine this; this is only the starting point."""
    kinds = [(LoopKind.SERIAL, 0)] * len(shape)
    if not shape:
        return kinds
    inner = shape[-1]
    contiguous = buffer.strides[-1] == Const(1)
    if contiguous and not (isinstance(inner, Const) and inner.value < MIN_VECTOR_TRIP):
        kinds[-1] = (LoopKind.VECTORIZED, VECTOR_BYTES // max(buffer.dtype.itemsize, 4))
    static = [d.value for d in shape if isinstance(d, Const)]
    total = 1
    for n in static:
        total *= n
    big = len(static) < len(shape) or total >= PARALLEL_MIN_ELEMENTS
    outer = next((k for k, d in enumerate(shape) if not E.is_const(d, 1)), None)
    if big and outer is not None and (outer < len(shape) - 1 or kinds[-1][0] is LoopKind.SERIAL):
        kinds[outer] = (LoopKind.PARALLEL, 0)
    return kinds


def loop_nest(ctx, shape, buffer: Buffer, body: Callable[[Index], list]) -> list:
    """Loops over `shape` (kinds from `loop_kinds` for stores into `buffer`) around body(index)."""
    vars_ = ctx.index_vars(len(shape))
    stmts = body(tuple(vars_))
    for v, stop, (kind, width) in reversed(list(zip(vars_, shape, loop_kinds(shape, buffer)))):
        stmts = [Loop(v, E.ZERO, stop, stmts, kind, width)]
    return stmts


def store_all(ctx, t: Tensor, buffer: Buffer) -> list:
    """Statements writing every element of t into buffer (of t's shape)."""
    if t.write is not None:
        return t.write(ctx, buffer)
    from .conv_epilogue import anchored_write     # a blocked conv with its epilogue
    blocked = anchored_write(ctx, t, buffer)
    if blocked is not None:
        return blocked
    return loop_nest(ctx, t.shape, buffer, lambda idx: [Store(buffer, idx, t.at(idx))])


def materialize(ctx, t: Tensor, buffer: Buffer, name: str) -> Kernel:
    """Emit a kernel writing t into buffer; returns it."""
    return ctx.emit(kernel(name, store_all(ctx, t, buffer)))


def kernel(name: str, body: list) -> Kernel:
    return Kernel(name, body, buffers_used(body))


# --- which buffers a body touches ----------------------------------------------------------------

def _expr_buffers(e: Expr, out: dict) -> None:
    if isinstance(e, Load):
        out.setdefault(e.buffer, None)
    for c in children(e):
        _expr_buffers(c, out)


def buffers_used(body: list) -> list:
    """Every buffer a body reads or writes (views as themselves), in order of first use."""
    out: dict = {}
    for s in walk(body):
        if isinstance(s, Store):
            out.setdefault(s.buffer, None)
        for e in exprs_of(s):
            _expr_buffers(e, out)
    return list(out)


def buffers_read(body: list) -> set:
    out: dict = {}
    for s in walk(body):
        for e in exprs_of(s):
            _expr_buffers(e, out)
    return set(out)


def buffers_written(body: list) -> set:
    return {s.buffer for s in walk(body) if isinstance(s, Store)}


def is_contiguous(buffer: Buffer) -> bool:
    """Row-major over its own shape (size-1 dims may have any stride)."""
    expected = row_major_strides(buffer.shape)
    return all(E.is_const(d, 1) or E.same(s, x)
               for d, s, x in zip(buffer.shape, buffer.strides, expected))

