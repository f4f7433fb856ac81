"""Loop IR buffers: typed, shaped memory with strides, and where it lives.

A buffer's shape and strides are index expressions, so symbolic sizes (batch, seq) are allowed.
A *view* (`base` set) reinterprets another buffer's memory with its own shape, strides and offset
(reshape, squeeze, a transpose the consumer can index through): it costs no copy. A view's
strides and offset are always in elements of its *root* buffer's memory, so an element's
address is `offset + sum(index[d] * strides[d])` for every buffer, view or not.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from ..ir.dtypes import DType
from .expr import Const, Expr, Load, lift


class BufferKind(enum.Enum):
    INPUT = "in"        # a model input, owned by the caller
    OUTPUT = "out"      # a model output, owned by the caller
    CONSTANT = "const"  # weights, baked into the module
    TEMP = "temp"       # an intermediate: placed in the arena by the memory planner
    LOCAL = "local"     # a small per-thread tile (stack), e.g. packing or accumulators


@dataclass(eq=False)
class Buffer:
    name: str
    dtype: DType
    shape: tuple
    kind: BufferKind = BufferKind.TEMP
    strides: tuple | None = None        # in elements; None = row-major over `shape`
    offset: Expr = field(default_factory=lambda: Const(0))
    base: "Buffer | None" = None        # set for a view of another buffer's memory
    data: np.ndarray | None = None      # CONSTANT buffers only

    def __post_init__(self):
        self.shape = tuple(lift(d) for d in self.shape)
        if self.strides is None:
            self.strides = row_major_strides(self.shape)
        else:
            self.strides = tuple(lift(s) for s in self.strides)
        self.offset = lift(self.offset)

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"<Buffer {self.name} {self.dtype.short}{list(self.shape)} {self.kind.value}>"

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def root(self) -> "Buffer":
        """The buffer whose memory this one reads (itself unless it is a view)."""
        b = self
        while b.base is not None:
            b = b.base
        return b

    def __getitem__(self, index) -> Load:
        if not isinstance(index, tuple):
            index = (index,)
        return Load(self, tuple(lift(i) for i in index))

    def view(self, name: str, shape, strides=None, offset=0) -> "Buffer":
        return Buffer(name, self.dtype, tuple(shape), self.kind, strides, lift(offset), base=self)


def row_major_strides(shape) -> tuple:
    strides = []
    acc: Expr = Const(1)
    for d in reversed(shape):
        strides.append(acc)
        acc = _mul(acc, d)
    return tuple(reversed(strides))


def _mul(a: Expr, b: Expr) -> Expr:
    if isinstance(a, Const) and isinstance(b, Const):
        return Const(a.value * b.value)
    if a == Const(1):
        return b
    if b == Const(1):
        return a
    return a * b
