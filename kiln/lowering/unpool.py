"""MaxUnpool: zeros everywhere, then every X element written at the flat output position its
index names (MaxPool's Indices address the whole flattened tensor, N and C included).

Two kernels: a fill of zeros, then one serial nest over X in index order storing through a flat
view of the output, so repeated indices end as the last write, as NumPy's scatter does. Indices
are clamped into the output (native code cannot raise; the interpreter reports them). The output
size is output_shape when given (it must be known when compiling), else (n - 1) * stride -
pads + kernel per spatial axis, symbolic n allowed.
"""

from __future__ import annotations

from ..ir import ops
from ..ir.ops.window import make_window
from ..loops.expr import Const
from ..loops.stmt import Store
from . import exprs as E
from .registry import register
from .scatter import _serial_nest
from .tensor import Tensor, kernel


@register(ops.MaxUnpool)
def lower_max_unpool(ctx, node, inputs):
    x, indices = inputs[0], inputs[1]
    a = ctx.attrs(node)
    win = make_window(a, x.rank - 2, a.kernel_shape, node)
    if len(inputs) > 2 and inputs[2] is not None:
        shape = tuple(Const(d) for d in ctx.static_ints(node, 2))
        if len(shape) != x.rank:
            ctx.fail(node, f"output_shape {[d.value for d in shape]} must have {x.rank} entries")
    else:
        shape = tuple(x.shape[:2]) + tuple(
            E.add(E.sub(E.mul(E.sub(n, 1), win.strides[i]),
                        win.pads[i] + win.pads[win.rank + i]), win.kernel[i])
            for i, n in enumerate(x.shape[2:]))
    out = ctx.buffer_for(node.outputs[0], shape, x.dtype)
    ctx.materialize(Tensor.fill(shape, E.const(0, x.dtype)), out, "max_unpool_zeros")
    size = E.product(shape)
    flat = out.view(ctx.fresh_name(out.name + "_flat"), (size,), (Const(1),))

    def body(idx):
        where = E.clamp(E.index(indices.at(idx)), 0, E.sub(size, 1))
        return [Store(flat, (where,), x.at(idx))]
    ctx.emit(kernel(ctx.fresh_name("max_unpool", kernel=True),
                    _serial_nest(ctx, x.shape, body)))
    return [Tensor.of(out)]
