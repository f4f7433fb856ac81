"""Sizes that kernels compute at run time: how NonZero, Unique and NonMaxSuppression lower.

These ops' output sizes depend on the values of their inputs, not only on their shapes. kiln
handles them in two ways, tried in this order:

1. **Known when compiling.** When every input is known at compile time (a constant, a value
   computed from sizes, or a graph input fixed to its fed value by the ONNX backend's
   specializing model, kiln/runtime/specialize.py), the node is evaluated with its NumPy
   reference while lowering and becomes a constant (`fold_if_static`). Its sizes are then
   static, so any consumer lowers as usual (a Reshape to a shape built from them, say).

2. **Computed by a kernel.** Otherwise the lowering makes a *computed size*
   (`computed_size`): a Loop IR Var `n` plus an i64[1] count buffer, recorded in
   `Program.computed` (kiln/loops/stmt.py, `ComputedSize`) with an upper bound `upper` in terms
   of the input sizes (NonZero: the number of elements). The op's kernels write the real count
   into the count buffer; the kernels *after* it read `n` like any symbolic size:

   * codegen (kiln/codegen/function.py `size`) loads `n` from the count buffer in each
     kernel's prologue (every kernel is its own function, called in order), where input sizes
     come from the sizes table;
   * memory (the arena plan, the allocation of outputs) uses the binding in which `n` is its
     upper bound (kiln/loops/interpreter.py `with_upper_bounds`): every buffer whose shape
     mentions `n` is allocated for the bound;
   * a buffer's strides are row-major over its *real* shape (they mention `n`), so its
     elements are the first ones of its allocation, and the runtime returns each graph output
     as that prefix, reshaped to the real shape (kiln/runtime/native_entry.py `_trimmed`,
     `computed_shapes`); the count buffers are extra OUTPUT buffers after the graph's outputs,
     never shown to the caller;
   * the Loop IR interpreter updates `n` after the kernel that writes its count.

   So consumers of such an output (a Transpose, a Gather, elementwise ops) lower unchanged:
   `n` is one more symbolic size. A consumer that needs the *value* of a size when compiling
   (a Reshape to a shape holding `n`, a Slice ending at it) reports the usual LoweringError
   naming its node ("depends on a symbolic size"); the ONNX backend then fixes the graph
   inputs upstream to their fed values and the op takes path 1.

Why not a new kind of binding in the sizes table written by kernels: the table is shared by
every call with the same input shapes (concurrent calls included), while the count buffer is
an output allocated per call; and a count buffer is an ordinary buffer every Loop IR tool
already understands. Why upper bounds rather than allocating after the count: one native call
per inference, with the arena planned before it.

Limits (each a LoweringError naming the node, never a silent wrong answer): an op computing a
size inside a control-flow body (If/Loop/Scan bodies are one kernel, whose prologue would read
`n` before it is written). Kernel reordering for memory (`reorder_kernels`) leaves programs with
computed sizes alone, since the reads of `n` are not Loads it could see.
"""

from __future__ import annotations

import numpy as np

from ..ir.dtypes import DType
from ..ir.interpreter import evaluate_node
from ..ir.graph import Node
from ..loops.buffer import Buffer, BufferKind
from ..loops.expr import Const, Expr, Var
from ..loops.stmt import ComputedSize
from . import exprs as E
from .context import constant_tensor
from .tensor import Tensor

MAX_STATIC_ELEMENTS = 1 << 16      # inputs evaluated at compile time up to this many elements


def computed_size(ctx, node: Node, hint: str, upper: Expr) -> tuple[Var, Buffer]:
    """A new size that `node`'s kernels compute: (the Var later kernels read it as, the i64[1]
    buffer the node's kernel must store it into, at index 0). `upper` must bound it."""
    if getattr(ctx, "_regions", 0):
        ctx.fail(node, f"{node.op.name}'s output size is computed at run time, which the back "
                 "end does not support inside a control-flow body (If, Loop, Scan)",
                 hint="move the op out of the body, or run the model with the interpreter")
    name = ctx.fresh_name(hint)
    var = Var(name)
    ctx.symbols[name] = var            # keeps loop variables and buffers off the name
    count = ctx.new_buffer(f"{name}.count", (Const(1),), DType.int64, BufferKind.OUTPUT)
    ctx.computed[name] = ComputedSize(count, upper)
    return var, count


def static_array(ctx, t: Tensor | None) -> np.ndarray | None:
    """The value of `t` when it is known at compile time (every element folds to a Const),
    else None."""
    if t is None:
        return None
    shape = t.static_shape()
    if shape is None or int(np.prod(shape)) > MAX_STATIC_ELEMENTS:
        return None
    b = t.buffer
    if b is not None and b.kind is BufferKind.CONSTANT and b.base is None and \
            b.data is not None and tuple(np.shape(b.data)) == shape:
        return np.asarray(b.data)                  # a constant's data, as it is
    out = np.empty(shape, dtype=t.dtype.np)
    for idx in np.ndindex(*shape):
        v = E.fold(t.at(tuple(Const(int(k)) for k in idx)))
        if not isinstance(v, Const):
            return None
        out[idx] = v.value
    return out


def fold_if_static(ctx, node: Node, inputs: list) -> list[Tensor] | None:
    """The node's outputs as constants when all its inputs are known at compile time (path 1 of
    the module docstring), else None."""
    arrays = []
    for t in inputs:
        a = static_array(ctx, t) if t is not None else None
        if t is not None and a is None:
            return None
        arrays.append(a)
    results = evaluate_node(node, arrays)
    hint = node.op.name.lower()
    return [None if r is None else constant_tensor(ctx, np.asarray(r), hint) for r in results]
