"""Graph IR -> Loop IR.

    from kiln.lowering import lower_graph
    program = lower_graph(graph)          # a kiln.loops.Program: buffers + kernels

The framework
-------------
**Tensor** (tensor.py): a lazily defined tensor, `Tensor(shape, dtype, at)`. `shape` is one i64
Loop IR expression per axis (a `Const`, or built from the `Var`s of symbolic dims); `at(index)`
returns the scalar Expr of the element at `index` (one i64 Expr per axis). A tensor in memory
is `Tensor.of(buffer)` (its `at` is a Load). Ops build new `at`s from their inputs' `at`s, so a
chain of ops is one expression per element: that is how fused groups will lower to one loop nest
with no intermediate buffer.

**A lowering** (registry.py) is a function registered for one or more OpDefs (never strings):

    @register(ops.Transpose, lazy=True)
    def lower_transpose(ctx, node, inputs: list[Tensor | None]) -> list[Tensor]: ...

It gets the LowerContext, the node, and one Tensor per node input (None for an absent optional
input), and returns one Tensor per node output, whose dtype is the output value's dtype.
`lowering_for(op)` finds it. The modules that register lowerings are imported below; a new op
family is a new module added to that import list.

**LowerContext** (context.py) is what lowerings share: `ctx.attrs(node)` (attributes with
defaults, `a.axis`), `ctx.out_dtype(node, i)`, `ctx.static_values(node, i)` /
`static_ints` / `static_scalar` (an operand that decides shapes or positions, evaluated at
compile time: a constant, or computed from (symbolic) sizes; otherwise a LoweringError naming
the node), `ctx.fail(node, message, hint)` (raises LoweringError), `ctx.fresh_var(hint)` (Vars
for a lowering's own loops and Reduce axes), `ctx.buffer_for(value, shape)` and `ctx.emit(kernel)`
(for ops that write their outputs themselves) and `ctx.materialize(tensor, buffer, name)`.

**Modules**: elementwise.py (SCALAR table: arithmetic, comparisons, logic, bitwise, math,
activations, Cast, Clip, Where, variadic Max/Min/Sum/Mean), views.py, movement.py (Concat, Pad,
Tile, Gather, GatherElements, DepthToSpace, SpaceToDepth, Trilu), creation.py (Shape, Size,
Range, ConstantOfShape, EyeLike), and the families below the import list.

**Expressions** (exprs.py): index arithmetic and scalar constructors that fold constants as they
build (`E.add`, `E.mul`, `E.floordiv`, `E.clamp`, `E.select`, `E.lt`, `E.cast`, ...). Use them
for index math so constant indices fold; the `+ - * /` sugar on Exprs is fine for float math.

Writing a lowering
------------------
* Elementwise/broadcast op: a row in elementwise.SCALAR, `op: lambda a, *xs: <Expr>`. The
  operands arrive broadcast and in their compute dtype; `tensor.apply` does the rest.
* Index mapping (view, movement): `t.remap(shape, to_source)` or `Tensor(shape, dtype, at)`.
  Every Load must stay in bounds for every output index, even inside a Select arm that is not
  taken (clamp the index): code generators may evaluate both arms.
* Reductions: `at` may return `Reduce(combiner, init, ((var, 0, n), ...), body)` with axis Vars
  from `ctx.fresh_var`. Accumulate narrow floats in float32: `widen` the body, `narrow` at the
  end (tensor.widen/narrow/compute_dtype are the one place that rule lives).
* Ops that cannot be `at(index)` (matmul with packing, sort, TopK, scans): build Kernels
  yourself, writing `ctx.buffer_for(node.outputs[i], shape)`, `ctx.emit` them and return
  `Tensor.of(buffer)`. `tensor.loop_nest(ctx, shape, buffer, body)` builds a default nest;
  `Tensor(..., write=fn)` lets a tensor that is an `at` say how to be written better (Concat
  writes one nest per input).
* f16/bf16: load, compute in f32, store rounded. `tensor.apply` does it for elementwise ops.

What lower_graph writes to memory (graph.py)
--------------------------------------------
Graph inputs are INPUT buffers; named dims become Loop IR Vars bound by `Program.sizes`.
Constants are CONSTANT buffers (data by reference), read as Consts at constant indices or when
every element is equal. Lowering is unfused: every node's outputs are written to a buffer by one
kernel (a TEMP, or the OUTPUT buffer when the value is a graph output), except for ops
registered `lazy`, which stay index mappings composed into their consumers:

* lazy: Identity, Dropout (inference), Reshape, Flatten, Squeeze, Unsqueeze, Transpose,
  Expand, Slice, Split (views: over a buffer they are Buffer views, strided, no copy) and Shape,
  Size, Range, ConstantOfShape, EyeLike (pure index arithmetic).
* written: every elementwise/broadcast op, Concat, Pad, Tile, Gather, GatherElements,
  DepthToSpace, SpaceToDepth, Trilu, and whatever other families register.

A graph output that no kernel wrote for itself (a view, an input, a constant, a repeated
output) is copied into its OUTPUT buffer, except a reshaping view of all of a temp: that temp
becomes a view of the OUTPUT buffer and its kernel writes the output. Kernels nobody reads are
dropped. A written node output still remembers its definition (`Tensor.holding`), so a shape
computed by written nodes (Shape -> Gather -> Concat -> Reshape) is still known when compiling.
The default loop nest is `tensor.loop_kinds`: innermost VECTORIZED when the stores are
contiguous, outermost PARALLEL when big enough.

Native code cannot raise: Gather/GatherElements indices outside [-n, n) are clamped into the
axis (the interpreter reports them), and a symbolic dim broadcast against another dim is read
at min(i, d - 1), which is right whenever the inputs broadcast at all.

Errors: a graph with ops that have no lowering (unlowered.py lists them, each with its reason),
or dtypes the back end lacks (strings, complex), raises one LoweringError naming all of them
(`.ops` lists the op names).
"""

# each module registers its lowerings
from . import (creation, conv, elementwise, fused, linalg, movement, normalization, pool,  # noqa: F401
               reduce, resize, scatter, sort, views, compress, quantize, det, col2im, bitcast, dft)
from . import channel_norms, optimizers  # noqa: F401
from . import dynamic_shape_sequences, nms, nonzero, unique  # noqa: F401
from . import random  # noqa: F401
from . import unpool  # noqa: F401
from . import roialign  # noqa: F401
from . import control, recurrent  # noqa: F401
from . import qlinear_conv  # noqa: F401
from . import deform_conv  # noqa: F401
from . import spectral  # noqa: F401
from . import tree_ensemble  # noqa: F401
from . import label_encoder  # noqa: F401
from . import tfidf  # noqa: F401
from . import flex_attention  # noqa: F401
from . import losses  # noqa: F401
from . import rotary  # noqa: F401
from . import sequence_mixers  # noqa: F401
from . import attention  # noqa: F401
from .context import LowerContext
from .graph import lower_graph
from .registry import LOWERINGS, Lowering, lowering_for, register
from .tensor import Tensor, materialize

__all__ = ["lower_graph", "LowerContext", "Tensor", "materialize", "LOWERINGS", "Lowering",
           "lowering_for", "register"]
