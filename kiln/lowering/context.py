"""LowerContext: what lowerings share while one graph becomes one Program.

It owns the Tensor of every Graph IR value, the buffers (inputs, outputs, constants, temps) and
their names, the symbolic sizes (one Var per named dim of the graph inputs, bound through
`Program.sizes`), the kernels emitted so far, and compile-time evaluation of shape operands.
"""

from __future__ import annotations

import re
from contextlib import contextmanager

import numpy as np

from ..errors import LoweringError
from ..ir.dtypes import DType
from ..ir.graph import Graph, Node, Value
from ..ir.opdef import Attrs
from ..ir.types import TensorType
from ..loops.buffer import Buffer, BufferKind
from ..loops.expr import Const, Expr, Load, Var
from ..loops.stmt import Kernel
from . import exprs as E
from .tensor import Tensor, materialize

# an operand this large as a Slice end (or start, stepping backwards) means "to the edge"
HUGE = 2 ** 31 - 1


class LowerContext:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.kernels: list[Kernel] = []
        self.inputs: list[Buffer] = []
        self.symbols: dict[str, Var] = {}                   # dim name -> its size Var
        self.sizes: dict[str, tuple[Buffer, int]] = {}      # dim name -> (input, axis)
        self.computed: dict = {}        # size name -> ComputedSize (lowering/dynamic_shape.py)
        self._tensors: dict[int, Tensor] = {}               # id(Value) -> Tensor
        self._names: set[str] = set()
        self._kernel_names: set[str] = set()
        self._kernel_vars: set[str] = set()         # loop variables of the kernel being built
        self._regions = 0                           # open `region`s (control-flow bodies)
        self._output_ids = {id(v) for v in graph.outputs}
        self._buffers: dict[int, Buffer] = {}               # id(Value) -> buffer written for it

    # --- names ------------------------------------------------------------------------------

    def fresh_name(self, hint: str, kernel: bool = False) -> str:
        """A buffer (or Var) name, or with `kernel` a kernel name, not used yet (the hint itself
        when it is free)."""
        taken = self._kernel_names if kernel else self._names
        base = re.sub(r"[^A-Za-z0-9_.]", "_", hint) or "t"
        name, k = base, 0
        while name in taken or name in self.symbols:
            k += 1
            name = f"{base}_{k}"
        taken.add(name)
        return name

    def fresh_var(self, hint: str = "r") -> Var:
        """An i64 Var for a lowering's own loops or Reduce axes, unique in the program."""
        return Var(self.fresh_name(hint))

    def index_vars(self, rank: int) -> list[Var]:
        """Loop variables i0, i1, ... for one loop nest, distinct from those of the other nests
        of the kernel being built (the next `emit` starts a new kernel)."""
        out = []
        for k in range(rank):
            name, n = f"i{k}", 0
            while name in self._kernel_vars or name in self.symbols:
                n += 1
                name = f"i{k}_{n}"
            self._kernel_vars.add(name)
            out.append(Var(name))
        return out

    # --- values -----------------------------------------------------------------------------

    def tensor(self, value: Value) -> Tensor:
        return self._tensors[id(value)]

    def set_tensor(self, value: Value, t: Tensor) -> None:
        self._tensors[id(value)] = t

    def bind_input(self, value: Value) -> Buffer:
        t = value.type
        if not isinstance(t, TensorType) or t.shape is None:
            raise LoweringError(f"graph input '{value.name}' has type {t}; the back end needs a "
                                "tensor of known rank", hint="declare the input's shape")
        dims = []
        for axis, d in enumerate(t.shape):
            if d is None:
                raise LoweringError(
                    f"graph input '{value.name}' ({t}) has an unknown dim {axis}",
                    hint="give every input dim a size or a name (a symbolic dim)")
            dims.append(Const(d) if isinstance(d, int) else self.symbols.setdefault(d, Var(d)))
        self._names.add(value.name)
        buf = Buffer(value.name, t.dtype, tuple(dims), BufferKind.INPUT)
        for axis, d in enumerate(t.shape):
            if isinstance(d, str):
                self.sizes.setdefault(d, (buf, axis))
        self.inputs.append(buf)
        self.set_tensor(value, Tensor.of(buf))
        return buf

    def bind_constant(self, value: Value) -> None:
        self.set_tensor(value, constant_tensor(self, value.data, value.name))

    # --- buffers and kernels ----------------------------------------------------------------

    def new_buffer(self, hint: str, shape, dtype: DType,
                   kind: BufferKind = BufferKind.TEMP) -> Buffer:
        return Buffer(self.fresh_name(hint), dtype, tuple(shape), kind)

    def buffer_for(self, value: Value, shape, dtype: DType | None = None) -> Buffer:
        """The buffer a node output is written to: the model's OUTPUT buffer when the value is
        a graph output, else a TEMP. A lowering that writes its outputs itself (an op that is
        not an index mapping) asks for them here."""
        if id(value) in self._buffers:
            return self._buffers[id(value)]
        kind = BufferKind.OUTPUT if id(value) in self._output_ids else BufferKind.TEMP
        buf = self.new_buffer(value.name, shape, dtype or value.type.dtype, kind)
        self._buffers[id(value)] = buf
        return buf

    def written_buffer(self, value: Value) -> Buffer | None:
        return self._buffers.get(id(value))

    def forget(self, value: Value) -> None:
        """Drop the Tensor and buffer recorded for a value, so lowering its node again (a loop
        body unrolled) gives it new ones."""
        self._tensors.pop(id(value), None)
        self._buffers.pop(id(value), None)

    def emit(self, kernel: Kernel) -> Kernel:
        """Append a kernel to the program (in execution order)."""
        self.kernels.append(kernel)
        if not self._regions:
            self._kernel_vars.clear()
        return kernel

    @contextmanager
    def region(self):
        """Collect the kernels emitted meanwhile into the list it yields, instead of the
        program, keeping their loop variables distinct: a control-flow lowering (If, Loop,
        Scan) puts their bodies into one kernel under its own statements."""
        saved = self.kernels
        self.kernels = []
        self._regions += 1
        try:
            yield self.kernels
        finally:
            self._regions -= 1
            self.kernels = saved

    def materialize(self, t: Tensor, buffer: Buffer, name: str) -> Kernel:
        return materialize(self, t, buffer, self.fresh_name(name, kernel=True))

    # --- node helpers -----------------------------------------------------------------------

    @staticmethod
    def attrs(node: Node) -> Attrs:
        """The node's attributes with defaults filled in (`a.axis`)."""
        return Attrs(node.op.full_attrs(node.attrs, node))

    @staticmethod
    def out_dtype(node: Node, i: int = 0) -> DType:
        return node.outputs[i].type.dtype

    @staticmethod
    def fail(node: Node, message: str, hint: str | None = None):
        raise LoweringError(message, node=node, ops=[node.op.name], hint=hint)

    # --- compile-time values ----------------------------------------------------------------

    def static_values(self, node: Node, i: int) -> list[Expr]:
        """The elements of input i (flattened) as index expressions known at compile time:
        constants, or values computed from shapes (so symbolic sizes are allowed)."""
        value = node.inputs[i] if i < len(node.inputs) else None
        what = f"input '{_operand_name(node, i)}'"
        if value is None:
            self.fail(node, f"{what} is absent")
        t = self.tensor(value)
        shape = t.static_shape()
        out = []
        if shape is not None and int(np.prod(shape)) <= 1 << 16:
            for flat in range(int(np.prod(shape))):
                v = E.fold(t.at(tuple(Const(int(k)) for k in np.unravel_index(flat, shape))))
                if E.has_loads(v):
                    break
                out.append(v)
            else:
                return out
        self.fail(node, f"{what} must be known when compiling (it decides shapes or positions)",
                  hint="make it a constant, or run constant folding (kiln opt -O1) first")

    def static_ints(self, node: Node, i: int) -> list[int]:
        """Input i's elements as Python numbers; they must not depend on symbolic sizes."""
        vals = self.static_values(node, i)
        if not all(isinstance(v, Const) for v in vals):
            self.fail(node, f"input '{_operand_name(node, i)}' depends on a symbolic size here, "
                      "and the back end needs its value", hint="give the model static sizes")
        return [v.value for v in vals]

    def static_scalar(self, node: Node, i: int) -> Expr:
        vals = self.static_values(node, i)
        if len(vals) != 1:
            self.fail(node, f"input '{_operand_name(node, i)}' must hold one element")
        return vals[0]


def _operand_name(node: Node, i: int) -> str:
    slots = node.op.inputs
    return slots[min(i, len(slots) - 1)].name if slots else str(i)


def constant_tensor(ctx: LowerContext, data: np.ndarray, name: str) -> Tensor:
    """A constant's Tensor: a CONSTANT buffer holding the data by reference (in the program only
    if a kernel reads it). Read at a constant index, or when every element is the same, it is a
    Const instead of a Load."""
    data = np.asarray(data)
    dtype = DType.from_numpy(data.dtype)
    shape = tuple(Const(d) for d in data.shape)
    flat = data.reshape(-1)
    if flat.size and np.all(flat == flat[0]):
        return Tensor.fill(shape, E.const(flat[0], dtype))
    buf = Buffer(ctx.fresh_name(name), dtype, shape, BufferKind.CONSTANT, data=data)

    def at(idx):
        idx = tuple(E.index(i) for i in idx)
        if all(isinstance(i, Const) for i in idx):
            return E.const(data[tuple(i.value for i in idx)], dtype)
        return Load(buf, idx)
    return Tensor(shape, dtype, at, buffer=buf)
