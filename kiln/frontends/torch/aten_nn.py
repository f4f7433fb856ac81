"""Neural-network ATen ops: convolution, matrix products, normalization, softmax, pooling and
scaled dot-product attention.

Matrix products become MatMul (+ Add for a bias) rather than Gemm: the form kiln's fusion
passes fold a bias and an activation into. Attention is written out as MatMul / Softmax /
MatMul, which the native back end lowers (it has no lowering for the fused Attention op).
"""

from __future__ import annotations

import math
import operator

import numpy as np
import torch

from ...errors import UnsupportedOpError
from ...ir.dtypes import DType
from ...ir.graph import Value

aten = torch.ops.aten


def _unsupported(cx, what: str, hint: str | None = None):
    return UnsupportedOpError(f"node '{cx.node.name}': {what}", ops=[str(cx.node.target)],
                              hint=hint)


def _used_outputs(cx) -> set[int]:
    """Which outputs of the current (multi-output) node are read (through a getitem that has
    users of its own)."""
    return {u.args[1] for u in cx.node.users if u.target is operator.getitem and u.users}


# --- convolution and matrix products --------------------------------------------------------

def convolution(cx, x, w, bias, stride, padding, dilation, transposed, output_padding, groups,
                *_):
    spatial = cx.rank(w) - 2
    stride = list(stride) * (spatial if len(stride) == 1 else 1)
    padding = list(padding) * (spatial if len(padding) == 1 else 1)
    dilation = list(dilation) * (spatial if len(dilation) == 1 else 1)
    kernel = [int(d) for d in cx.fake(w).shape[2:]]
    attrs = dict(kernel_shape=kernel, strides=stride, pads=padding + padding,
                 dilations=dilation, group=int(groups))
    inputs = [cx.tensor(x), cx.tensor(w)] + ([cx.tensor(bias)] if bias is not None else [])
    if transposed:
        output_padding = list(output_padding) * (spatial if len(output_padding) == 1 else 1)
        if any(output_padding):
            attrs["output_padding"] = output_padding
        return cx.b.ConvTranspose(*inputs, **attrs, name=cx.node.name)
    return cx.b.Conv(*inputs, **attrs, name=cx.node.name)


def conv(cx, x, w, bias=None, stride=(1,), padding=(0,), dilation=(1,), groups=1, *_):
    """conv1d/2d/3d as torch.export records them (padding a list, or "valid"/"same")."""
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0,)
        else:
            kernel = [int(d) for d in cx.fake(w).shape[2:]]
            dilation = list(dilation) * (len(kernel) if len(dilation) == 1 else 1)
            total = [d * (k - 1) for d, k in zip(dilation, kernel)]
            if any(t % 2 for t in total):
                raise _unsupported(cx, "padding='same' with an odd total padding")
            padding = [t // 2 for t in total]
    return convolution(cx, x, w, bias, stride, padding, dilation, False, (0,), groups)


def conv_transpose(cx, x, w, bias=None, stride=(1,), padding=(0,), output_padding=(0,),
                   groups=1, dilation=(1,), *_):
    return convolution(cx, x, w, bias, stride, padding, dilation, True, output_padding, groups)


def _scaled(cx, v, factor, what):
    if factor == 1:
        return v
    return cx.b.Mul(v, cx.tensor(factor, v.type.dtype), name=cx.name(what))


def addmm(cx, bias, a, b, beta=1, alpha=1, *_):
    prod = _scaled(cx, cx.b.MatMul(cx.tensor(a), cx.tensor(b), name=cx.name("mm")), alpha,
                   "alpha")
    if beta == 0:
        return prod
    return cx.b.Add(prod, _scaled(cx, cx.tensor(bias), beta, "beta"), name=cx.node.name)


def matmul(cx, a, b, *_):
    return cx.b.MatMul(cx.tensor(a), cx.tensor(b), name=cx.node.name)


def linear(cx, x, w, bias=None, *_):
    wt = cx.transpose(cx.tensor(w), [1, 0])
    y = cx.b.MatMul(cx.tensor(x), wt, name=cx.name("mm") if bias is not None else cx.node.name)
    return y if bias is None else cx.b.Add(y, cx.tensor(bias), name=cx.node.name)


# --- normalization -------------------------------------------------------------------------

def _param_or(cx, p, shape, fill, dtype: DType):
    if p is not None:
        return cx.tensor(p)
    return cx.const(np.full([int(d) for d in shape], fill, dtype.np), "default")


def native_layer_norm(cx, x, normalized_shape, weight, bias, eps, *_):
    xv = cx.tensor(x)
    dtype = xv.type.dtype
    axis = cx.rank(x) - len(normalized_shape)
    scale = _param_or(cx, weight, normalized_shape, 1, dtype)
    shift = _param_or(cx, bias, normalized_shape, 0, dtype)
    need_stats = bool(_used_outputs(cx) - {0})
    outs = cx.b.LayerNormalization(xv, scale, shift, axis=axis, epsilon=float(eps),
                                   outputs=3 if need_stats else 1, name=cx.node.name)
    return tuple(outs) if need_stats else (outs, None, None)


def layer_norm(cx, x, normalized_shape, weight=None, bias=None, eps=1e-5, *_):
    return native_layer_norm(cx, x, normalized_shape, weight, bias, eps)[0]


def batch_norm_no_training(cx, x, weight, bias, mean, var, momentum, eps, *_):
    channels = [cx.fake(mean).shape[0]]
    dtype = cx.dtype(x)
    y = cx.b.BatchNormalization(cx.tensor(x), _param_or(cx, weight, channels, 1, dtype),
                                _param_or(cx, bias, channels, 0, dtype), cx.tensor(mean),
                                cx.tensor(var), epsilon=float(eps), name=cx.node.name)
    return (y, None, None)


def native_batch_norm(cx, x, weight, bias, mean, var, training, momentum, eps, *_):
    if training or mean is None:
        return batch_stats_norm(cx, x, weight, bias, eps)
    return batch_norm_no_training(cx, x, weight, bias, mean, var, momentum, eps)


def batch_stats_norm(cx, x, weight, bias, eps, instance: bool = False):
    """Batch norm with the statistics of the batch itself (training mode, and instance norm,
    which torch writes as batch norm without running stats): (y, mean, 1 / std) per channel.
    Running statistics are not updated (kiln compiles inference). With `instance`, the
    statistics are per sample and channel (instance_norm as export records it)."""
    xv = cx.tensor(x)
    dtype = xv.type.dtype
    rank = cx.rank(x)
    channels = cx.fake(x).shape[1]
    axes = cx.ints(([] if instance else [0]) + list(range(2, rank)))
    mean = cx.b.ReduceMean(xv, axes, keepdims=1, name=cx.name("mean"))
    diff = cx.b.Sub(xv, mean, name=cx.name("diff"))
    var = cx.b.ReduceMean(cx.b.Mul(diff, diff, name=cx.name("sq")), axes, keepdims=1,
                          name=cx.name("var"))
    rstd = cx.b.Reciprocal(cx.b.Sqrt(cx.b.Add(var, cx.tensor(eps, dtype), name=cx.name("eps")),
                                     name=cx.name("std")), name=cx.name("rstd"))
    y = cx.b.Mul(diff, rstd, name=cx.name("normal"))
    per_channel = cx.ints([-1] + [1] * (rank - 2))
    if weight is not None:
        y = cx.b.Mul(y, cx.b.Reshape(cx.tensor(weight), per_channel, name=cx.name("w")),
                     name=cx.name("scaled"))
    if bias is not None:
        y = cx.b.Add(y, cx.b.Reshape(cx.tensor(bias), per_channel, name=cx.name("b")),
                     name=cx.node.name)
    if instance:
        return (y, None, None)
    flat = cx.ints([channels if isinstance(channels, int) else -1])
    return (y, cx.b.Reshape(mean, flat, name=cx.name("mean_c")),
            cx.b.Reshape(rstd, flat, name=cx.name("rstd_c")))


def batch_norm_no_stats(cx, x, weight, bias, training, momentum, eps, *_):
    return batch_stats_norm(cx, x, weight, bias, eps)


def group_norm(cx, x, groups, weight=None, bias=None, eps=1e-5, *_):
    return native_group_norm(cx, x, weight, bias, None, None, None, groups, eps)[0]


def instance_norm(cx, x, weight, bias, mean, var, use_input_stats, momentum, eps, *_):
    if not use_input_stats:
        return batch_norm_no_training(cx, x, weight, bias, mean, var, momentum, eps)[0]
    return batch_stats_norm(cx, x, weight, bias, eps, instance=True)[0]


def native_group_norm(cx, x, weight, bias, n, c, hxw, groups, eps, *_):
    if _used_outputs(cx) - {0}:
        raise _unsupported(cx, "the mean and rstd outputs of group_norm are not supported")
    dtype = cx.dtype(x)
    channels = [cx.fake(x).shape[1]]
    y = cx.b.GroupNormalization(cx.tensor(x), _param_or(cx, weight, channels, 1, dtype),
                                _param_or(cx, bias, channels, 0, dtype), num_groups=int(groups),
                                epsilon=float(eps), name=cx.node.name)
    return (y, None, None)


def batch_norm(cx, x, weight, bias, mean, var, training, momentum, eps, *_):
    return native_batch_norm(cx, x, weight, bias, mean, var, training, momentum, eps)[0]


def softmax(kiln_op: str):
    def convert(cx, x, dim, half_to_float_or_dtype=None, *_):
        v = cx.tensor(x, cx.out_dtype())
        return getattr(cx.b, kiln_op)(v, axis=int(dim), name=cx.node.name)
    return convert


# --- pooling -------------------------------------------------------------------------------

def _pool_attrs(n: int, kernel, stride, padding, dilation=None) -> dict:
    """ONNX pooling attributes from torch's, each list widened to `n` dims."""
    def wide(v):
        return list(v) * (n if len(v) == 1 else 1)
    kernel = wide(kernel)
    padding = wide(padding)
    attrs = dict(kernel_shape=kernel, strides=wide(stride) if stride else kernel,
                 pads=padding + padding)
    if dilation:
        attrs["dilations"] = wide(dilation)
    return attrs


def _pool(cx, kiln_op: str, n: int, x, attrs: dict):
    """Pool over the last `n` dims; an unbatched input ([C, *spatial]) gets a batch of 1."""
    xv = cx.tensor(x)
    unbatched = cx.rank(x) == n + 1
    if unbatched:
        xv = cx.b.Unsqueeze(xv, cx.ints([0]), name=cx.name("batch"))
    y = getattr(cx.b, kiln_op)(xv, **attrs, name=cx.name("pool") if unbatched else cx.node.name)
    return cx.b.Squeeze(y, cx.ints([0]), name=cx.node.name) if unbatched else y


def max_pool(n: int, with_indices: bool):
    """max_pool{n}d(_with_indices): (x, kernel, stride, padding, dilation, ceil_mode)."""
    def convert(cx, x, kernel, stride=(), padding=(0,), dilation=(1,), ceil_mode=False, *_):
        if with_indices and 1 in _used_outputs(cx):
            raise _unsupported(cx, "the indices of max_pool are not supported")
        attrs = _pool_attrs(n, kernel, stride, padding, dilation)
        y = _pool(cx, "MaxPool", n, x, dict(attrs, ceil_mode=int(bool(ceil_mode))))
        return (y, None) if with_indices else y
    return convert


def avg_pool(n: int):
    """avg_pool{n}d: (x, kernel, stride, padding, ceil_mode, count_include_pad, divisor)."""
    def convert(cx, x, kernel, stride=(), padding=(0,), ceil_mode=False,
                count_include_pad=True, divisor_override=None, *_):
        if divisor_override is not None:
            raise _unsupported(cx, "avg_pool with divisor_override")
        attrs = _pool_attrs(n, kernel, stride, padding)
        return _pool(cx, "AveragePool", n, x,
                     dict(attrs, ceil_mode=int(bool(ceil_mode)),
                          count_include_pad=int(bool(count_include_pad))))
    return convert


def adaptive_avg_pool(cx, x, output_size, *_):
    """Global average pooling for output 1x1; a plain AveragePool when the output size divides
    the input size."""
    xv = cx.tensor(x)
    output_size = [int(s) for s in output_size]
    if all(s == 1 for s in output_size):
        return cx.b.GlobalAveragePool(xv, name=cx.node.name)
    kernel = _even_kernel(cx, x, output_size)
    return cx.b.AveragePool(xv, kernel_shape=kernel, strides=kernel, name=cx.node.name)


def upsample(mode: str, overload: str):
    """upsample_nearest2d / upsample_bilinear2d: Resize to `output_size`, or by the scale
    factors when given (torch then maps coordinates by 1 / scale, as ONNX's Resize does).
    `.vec` takes (output_size | None, scale_factors | None); `.default` takes output_size and
    scales_h, scales_w."""
    def convert(cx, x, output_size, *rest):
        align_corners = rest[0] if mode == "linear" else None
        rest = rest[1:] if mode == "linear" else rest
        if overload == "vec":
            scale_factors = rest[0]
        else:
            scale_factors = list(rest[:2]) if all(r is not None for r in rest[:2]) else None
            output_size = None if scale_factors else output_size
        xv = cx.tensor(x)
        if mode == "nearest":
            attrs = dict(coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        else:
            attrs = dict(coordinate_transformation_mode="align_corners" if align_corners
                         else "half_pixel")
        if output_size is not None:
            lead = cx.b.Shape(xv, start=0, end=2, name=cx.name("nc"))
            sizes = cx.b.Concat(lead, cx.sizes(output_size), axis=0, name=cx.name("sizes"))
            return cx.b.Resize(xv, None, None, sizes, mode=mode, **attrs, name=cx.node.name)
        scales = cx.const(np.asarray([1, 1] + [float(f) for f in scale_factors], np.float32),
                          "scales")
        return cx.b.Resize(xv, None, scales, mode=mode, **attrs, name=cx.node.name)
    return convert


def adaptive_max_pool(cx, x, output_size, *_):
    """(values, indices): global max pooling for output 1x1, a plain MaxPool when the output
    size divides the input size; the indices are not supported."""
    if 1 in _used_outputs(cx):
        raise _unsupported(cx, "the indices of adaptive_max_pool are not supported")
    xv = cx.tensor(x)
    output_size = [int(s) for s in output_size]
    if all(s == 1 for s in output_size):
        return (cx.b.GlobalMaxPool(xv, name=cx.node.name), None)
    kernel = _even_kernel(cx, x, output_size)
    return (cx.b.MaxPool(xv, kernel_shape=kernel, strides=kernel, name=cx.node.name), None)


def _even_kernel(cx, x, output_size):
    spatial = cx.fake(x).shape[-len(output_size):]
    if not all(isinstance(d, int) or d.node.expr.is_Integer for d in spatial) or \
            any(int(d) % s for d, s in zip(spatial, output_size)):
        raise _unsupported(cx, f"adaptive pooling of {list(spatial)} to {output_size} (kiln "
                               f"needs static input sizes that the output size divides)")
    return [int(d) // s for d, s in zip(spatial, output_size)]


# --- attention -----------------------------------------------------------------------------

def attention(cx, q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
              enable_gqa=False, *_):
    """softmax(q k^T * scale + mask) v, with is_causal as a lower-triangular boolean mask.
    As in torch, a query row whose keys are all masked out gives zeros (not NaN)."""
    if dropout_p:
        raise _unsupported(cx, "attention with dropout", "call model.eval() before exporting")
    if enable_gqa:
        raise _unsupported(cx, "attention with enable_gqa")
    b = cx.b
    qv, kv, vv = cx.tensor(q), cx.tensor(k), cx.tensor(v)
    dtype = qv.type.dtype
    head_dim = cx.fake(q).shape[-1]
    scale = 1 / math.sqrt(int(head_dim)) if scale is None else scale
    rank = cx.rank(k)
    kt = _transposed_last_two(cx, k, kv, rank)
    scores = b.Mul(b.MatMul(qv, kt, name=cx.name("qk")), cx.tensor(scale, dtype),
                   name=cx.name("scores"))
    neg_inf = cx.tensor(float("-inf"), dtype)
    keep = None                        # where a query may attend (when a mask says so)
    if attn_mask is not None:
        m = cx.tensor(attn_mask)
        if m.type.dtype == DType.bool:
            keep = m
            scores = b.Where(m, scores, neg_inf, name=cx.name("masked"))
        else:
            keep = b.Not(b.Equal(m, neg_inf, name=cx.name("ninf")), name=cx.name("keep"))
            scores = b.Add(scores, cx.cast(m, dtype), name=cx.name("masked"))
    if is_causal:
        qlen = b.Shape(qv, start=rank - 2, end=rank - 1, name=cx.name("qlen"))
        klen = b.Shape(kt, start=rank - 1, end=rank, name=cx.name("klen"))
        square = b.Concat(qlen, klen, axis=0, name=cx.name("lk"))
        ones = b.ConstantOfShape(square, value=np.ones([1], np.bool_), name=cx.name("ones"))
        causal = b.Trilu(ones, upper=0, name=cx.name("causal"))
        scores = b.Where(causal, scores, neg_inf, name=cx.name("causal_masked"))
        keep = None if keep is None else b.And(keep, causal, name=cx.name("keep_causal"))
    probs = b.Softmax(scores, axis=-1, name=cx.name("probs"))
    out = b.MatMul(probs, vv, name=cx.name("out") if keep is not None else cx.node.name)
    if keep is None:
        return out
    counts = b.ReduceMax(b.Cast(keep, to=DType.int32, name=cx.name("keep_i")), cx.ints([-1]),
                         keepdims=1, name=cx.name("any_key"))
    some = b.Greater(counts, cx.tensor(0, DType.int32), name=cx.name("some_key"))
    return b.Where(some, out, cx.tensor(0, dtype), name=cx.node.name)


def _transposed_last_two(cx, k, kv, rank: int):
    """k with its last two dims swapped. When k is itself a permute read only here (heads
    split off with .transpose(1, 2)), the two permutations become one Transpose of its input,
    which fuses into the op that produces it."""
    swap = list(range(rank - 2)) + [rank - 1, rank - 2]
    if isinstance(k, torch.fx.Node) and k.target == aten.permute.default and \
            len(k.users) == 1 and isinstance(cx.env.get(k.args[0]), Value):
        inner = [d % rank for d in k.args[1]]
        return cx.b.Transpose(cx.env[k.args[0]], perm=[inner[p] for p in swap],
                              name=cx.name("kt"))
    return cx.b.Transpose(kv, perm=swap, name=cx.name("kt"))


def flash_attention_cpu(cx, q, k, v, dropout_p=0.0, is_causal=False, attn_mask=None, scale=None,
                        *_):
    if 1 in _used_outputs(cx):
        raise _unsupported(cx, "the logsumexp output of attention is not supported")
    return (attention(cx, q, k, v, attn_mask, dropout_p, is_causal, scale), None)


CONVERTERS = {
    aten.convolution.default: convolution,
    aten.conv1d.default: conv, aten.conv2d.default: conv, aten.conv3d.default: conv,
    aten.conv1d.padding: conv, aten.conv2d.padding: conv, aten.conv3d.padding: conv,
    aten.conv_transpose1d.default: conv_transpose, aten.conv_transpose2d.input: conv_transpose,
    aten.group_norm.default: group_norm, aten.instance_norm.default: instance_norm,
    aten.addmm.default: addmm, aten.mm.default: matmul, aten.bmm.default: matmul,
    aten.matmul.default: matmul, aten.linear.default: linear,
    aten.native_layer_norm.default: native_layer_norm, aten.layer_norm.default: layer_norm,
    aten._native_batch_norm_legit_no_training.default: batch_norm_no_training,
    aten.native_batch_norm.default: native_batch_norm,
    aten._native_batch_norm_legit.default: native_batch_norm,
    aten.batch_norm.default: batch_norm,
    aten._native_batch_norm_legit.no_stats: batch_norm_no_stats,
    aten.native_group_norm.default: native_group_norm,
    aten.upsample_nearest2d.vec: upsample("nearest", "vec"),
    aten.upsample_bilinear2d.vec: upsample("linear", "vec"),
    aten.upsample_nearest2d.default: upsample("nearest", "default"),
    aten.upsample_bilinear2d.default: upsample("linear", "default"),
    aten._softmax.default: softmax("Softmax"), aten._log_softmax.default: softmax("LogSoftmax"),
    aten.softmax.int: softmax("Softmax"), aten.log_softmax.int: softmax("LogSoftmax"),
    aten.max_pool2d_with_indices.default: max_pool(2, True),
    aten.max_pool3d_with_indices.default: max_pool(3, True),
    aten.max_pool2d.default: max_pool(2, False), aten.max_pool3d.default: max_pool(3, False),
    aten.avg_pool2d.default: avg_pool(2), aten.avg_pool3d.default: avg_pool(3),
    aten._adaptive_avg_pool2d.default: adaptive_avg_pool,
    aten.adaptive_avg_pool2d.default: adaptive_avg_pool,
    aten.adaptive_max_pool2d.default: adaptive_max_pool,
    aten.scaled_dot_product_attention.default: attention,
    aten._scaled_dot_product_flash_attention_for_cpu.default: flash_attention_cpu,
}
