"""LabelEncoder (ai.onnx.ml) with numeric keys and values: each element becomes the value of
the last key equal to it (a repeated key: the last wins, as the reference's dict), found by a
Reduce over a constant key table, else the default. Keys are compared in the input's type (the
reference converts them to it first); a NaN input maps to the value of the last NaN key, or the
default. String keys or values have no native form: a LoweringError says so.
"""

from __future__ import annotations

import math

import numpy as np

from ..ir import ops
from ..ir.dtypes import DType
from ..ir.ops.ml import _keys_values, _label_default
from ..loops.expr import Const, Reduce
from . import exprs as E
from .context import constant_tensor
from .registry import register
from .tensor import Tensor, widen


@register(ops.LabelEncoder)
def lower_label_encoder(ctx, node, inputs):
    x = inputs[0]
    a = ctx.attrs(node)
    keys, kdt, vkind, values, vdt = _keys_values(a, node)
    if DType.string in (kdt, vdt, x.dtype):
        ctx.fail(node, "LabelEncoder with string keys or values has no native lowering "
                 "(the back end has no string type)",
                 hint="run it with the interpreter, or encode the strings as integers first")
    default = _label_default(a, vkind, vdt)
    dtype = ctx.out_dtype(node)
    if not keys:
        return [Tensor(x.shape, dtype, lambda idx: E.const(default, dtype))]
    with np.errstate(all="ignore"):
        key_data = np.asarray(keys, dtype=x.dtype.np)
    key_table = constant_tensor(ctx, key_data, "label_keys")
    value_table = constant_tensor(ctx, np.asarray(values, dtype=vdt.np), "label_values")
    nan_value = next((v for k, v in reversed(list(zip(keys, values)))
                      if isinstance(k, float) and math.isnan(k)), default)
    n = len(keys)

    def at(idx):
        v = widen(x.at(idx))
        k = ctx.fresh_var("k")
        found = Reduce("max", Const(-1), ((k, E.ZERO, Const(n)),),
                       E.select(E.eq(widen(key_table.at((k,))), v), k, Const(-1)))
        hit = E.cast(value_table.at((E.clamp(found, 0, n - 1),)), dtype)
        y = E.select(E.ge(found, 0), hit, E.const(default, dtype))
        if x.dtype.is_float:
            y = E.select(E.unary("isnan", v), E.const(nan_value, dtype), y)
        return y
    return [Tensor(x.shape, dtype, at)]
