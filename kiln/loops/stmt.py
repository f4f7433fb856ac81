"""Loop IR statements, kernels and programs.

A Kernel is one loop nest (or a few) over buffers: Loops (serial, parallel, vectorized or
unrolled), Stores of expressions into buffers, local scalars (Local / Assign, for accumulators
made explicit) and Ifs. A Program is what one model compiles to: its buffers and its kernels
in execution order, run by one native entry point.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .buffer import Buffer, BufferKind
from .expr import Const, Expr, Var, lift


class LoopKind(enum.Enum):
    SERIAL = "for"
    PARALLEL = "parallel for"      # iterations split across the thread pool
    VECTORIZED = "vector for"      # `width` lanes at a time; the tail handled by codegen
    UNROLLED = "unrolled for"      # body repeated `width` times (0: fully)


class Stmt:
    pass


@dataclass(eq=False)
class Loop(Stmt):
    var: Var
    start: Expr
    stop: Expr
    body: list
    kind: LoopKind = LoopKind.SERIAL
    width: int = 0          # vector lanes (VECTORIZED) or unroll factor (UNROLLED)

    def __post_init__(self):
        self.start, self.stop = lift(self.start), lift(self.stop)


@dataclass(eq=False)
class Store(Stmt):
    buffer: Buffer
    index: tuple
    value: Expr

    def __post_init__(self):
        self.index = tuple(lift(i) for i in self.index)


@dataclass(eq=False)
class Local(Stmt):
    """Declare a scalar local variable with an initial value (an accumulator, say)."""

    var: Var
    init: Expr


@dataclass(eq=False)
class Assign(Stmt):
    var: Var
    value: Expr


@dataclass(eq=False)
class If(Stmt):
    cond: Expr
    then: list
    orelse: list = field(default_factory=list)


@dataclass(eq=False)
class Kernel:
    """One unit of generated code. `buffers` are the ones it touches (read or written)."""

    name: str
    body: list
    buffers: list = field(default_factory=list)

    def stores(self) -> list:
        return [s for s in walk(self.body) if isinstance(s, Store)]


@dataclass(eq=False)
class ComputedSize:
    """A symbolic size that a kernel computes at run time (the count NonZero finds): the kernel
    stores it into `buffer` (i64[1], an OUTPUT buffer listed after the graph's own outputs);
    kernels after it read the size as a Var of that name. `upper` bounds it in terms of the
    input sizes (and earlier computed sizes): memory is planned and allocated for the bound.
    kiln/lowering/dynamic_shape.py says how this works from end to end."""

    buffer: Buffer
    upper: Expr


@dataclass(eq=False)
class Program:
    """A whole model: inputs, outputs, every buffer, the kernels in order, the symbolic sizes
    the inputs bind (name -> (input buffer, axis)) and the sizes kernels compute (name ->
    ComputedSize; their count buffers are the last `len(computed)` outputs)."""

    name: str
    inputs: list
    outputs: list
    kernels: list
    buffers: list = field(default_factory=list)
    sizes: dict = field(default_factory=dict)
    computed: dict = field(default_factory=dict)

    def graph_outputs(self) -> list:
        """The outputs without the count buffers of computed sizes."""
        return self.outputs[:len(self.outputs) - len(self.computed)]

    def temps(self) -> list:
        return [b for b in self.buffers if b.kind is BufferKind.TEMP and b.base is None]


def walk(body: list):
    """Every statement in a body, depth first (loops' and ifs' bodies included)."""
    for s in body:
        yield s
        if isinstance(s, Loop):
            yield from walk(s.body)
        elif isinstance(s, If):
            yield from walk(s.then)
            yield from walk(s.orelse)


def exprs_of(s) -> list:
    """The expressions a statement holds itself (not those of nested statements)."""
    if isinstance(s, Loop):
        return [s.start, s.stop]
    if isinstance(s, Store):
        return [*s.index, s.value]
    if isinstance(s, Local):
        return [s.init]
    if isinstance(s, Assign):
        return [s.value]
    if isinstance(s, If):
        return [s.cond]
    raise TypeError(f"not a Loop IR statement: {s!r}")


def loop_nest(vars_and_stops, body: list, kind: LoopKind = LoopKind.SERIAL) -> list:
    """Perfectly nested loops `for v in 0..stop` around `body`, outermost first."""
    for v, stop in reversed(list(vars_and_stops)):
        body = [Loop(v, Const(0), stop, body, kind)]
    return body
