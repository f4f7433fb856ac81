"""Views and data movement: view/reshape, permute, expand, squeeze, cat, slice, split, repeat,
pad, flip, cumsum, topk; and the SymInt arithmetic that computes sizes (sym_size,
operator.mul, ...), each SymInt an i64[1] tensor.

A reshape to sizes with symbols is emitted as Reshape with 0 ("keep this input dim") wherever the
output dim is the same expression as the input dim at that index and -1 for the one remaining
unknown dim; only when two or more dims are new expressions (s0*s1 split back into s0, s1) is
the target computed at run time from the SymInt nodes (Shape/Gather/Concat).
"""

from __future__ import annotations

import operator

import numpy as np
import torch

from ...errors import UnsupportedOpError
from .context import same_dim

aten = torch.ops.aten
INT64_MAX = 2**63 - 1


def _axis(d: int, rank: int) -> int:
    return d + rank if d < 0 else d


def _static(d) -> bool:
    return isinstance(d, int) or d.node.expr.is_Integer


# --- reshapes ------------------------------------------------------------------------------

def reshape_target(cx, src, sizes):
    """The i64 target of a Reshape of `src` (an FX node) to the node's output shape, or None
    when it must be computed at run time."""
    in_shape = list(cx.fake(src).shape)
    out_shape = list(cx.out().shape)
    if all(_static(d) for d in out_shape):
        return cx.ints([int(d) for d in out_shape])
    if any(_static(d) and int(d) == 0 for d in out_shape):
        return None                         # a 0 in the target would mean "keep this dim"
    codes, unknown = [], []
    for i, d in enumerate(out_shape):
        if _static(d):
            codes.append(int(d))
        elif i < len(in_shape) and same_dim(d, in_shape[i]):
            codes.append(0)
        else:
            codes.append(-1)
            unknown.append(i)
    return cx.ints(codes) if len(unknown) <= 1 else None


def _reshape(cx, x, target):
    """Reshape; allowzero when the target may hold a real 0 (an empty dim)."""
    zero = any(d == 0 for d in cx.out().shape if isinstance(d, int))
    if zero:
        return cx.b.Reshape(x, target, allowzero=1, name=cx.node.name)
    return cx.b.Reshape(x, target, name=cx.node.name)


def view(cx, src, sizes, *_):
    target = reshape_target(cx, src, sizes)
    return _reshape(cx, cx.tensor(src), cx.sizes(sizes) if target is None else target)


def flatten(cx, src, start_dim=0, end_dim=-1, *_):
    x = cx.tensor(src)
    target = reshape_target(cx, src, None)
    if target is None:                      # [leading dims, -1, trailing dims] at run time
        rank = cx.rank(src)
        start, end = _axis(start_dim, rank), _axis(end_dim, rank)
        lead = cx.b.Shape(x, start=0, end=start, name=cx.name("lead"))
        tail = cx.b.Shape(x, start=end + 1, name=cx.name("tail"))
        target = cx.b.Concat(lead, cx.ints([-1]), tail, axis=0, name=cx.name("target"))
    return _reshape(cx, x, target)


def permute(cx, src, dims, *_):
    rank = cx.rank(src)
    return cx.transpose(cx.tensor(src), [_axis(d, rank) for d in dims])


def transpose(cx, src, d0, d1, *_):
    rank = cx.rank(src)
    perm = list(range(rank))
    a, b = _axis(d0, rank), _axis(d1, rank)
    perm[a], perm[b] = perm[b], perm[a]
    return cx.transpose(cx.tensor(src), perm)


def t(cx, src, *_):
    if cx.rank(src) < 2:
        return cx.b.Identity(cx.tensor(src), name=cx.node.name)
    return transpose(cx, src, 0, 1)


def unsqueeze(cx, src, dim, *_):
    axis = _axis(dim, cx.rank(src) + 1)
    return cx.b.Unsqueeze(cx.tensor(src), cx.ints([axis]), name=cx.node.name)


def squeeze(cx, src, dims=None, *_):
    """squeeze(.dim/.dims): drop the listed dims that are 1 (others stay, as in torch)."""
    shape = cx.fake(src).shape
    rank = len(shape)
    if dims is None:
        axes = [i for i, d in enumerate(shape) if _static(d) and int(d) == 1]
    else:
        dims = [dims] if isinstance(dims, int) else dims
        axes = [_axis(d, rank) for d in dims]
        axes = [a for a in axes if _static(shape[a]) and int(shape[a]) == 1]
    if not axes:
        return cx.b.Identity(cx.tensor(src), name=cx.node.name)
    return cx.b.Squeeze(cx.tensor(src), cx.ints(sorted(axes)), name=cx.node.name)


def expand(cx, src, sizes, *_):
    """Expand with 1 wherever the input keeps its size (ONNX Expand broadcasts both ways)."""
    in_shape = list(cx.fake(src).shape)
    offset = len(sizes) - len(in_shape)
    target = []
    for i, s in enumerate(sizes):
        j = i - offset
        if isinstance(s, int) and s == -1:
            target.append(1)
        elif j >= 0 and isinstance(s, torch.fx.Node) and same_dim(cx.fake(s), in_shape[j]):
            target.append(1)
        else:
            target.append(s)
    return cx.b.Expand(cx.tensor(src), cx.sizes(target), name=cx.node.name)


def cat(cx, tensors, dim=0, *_):
    dtype = cx.out_dtype()
    rank = len(cx.out().shape)
    legacy_empty = [0]          # torch.cat skips 1-d empty tensors whatever the others' rank
    parts = [cx.tensor(t, dtype) for t in tensors
             if not (rank > 1 and list(cx.fake(t).shape) == legacy_empty)]
    if len(parts) == 1:
        return cx.b.Identity(parts[0], name=cx.node.name)
    return cx.b.Concat(*parts, axis=_axis(dim, rank), name=cx.node.name)


def slice_(cx, src, dim=0, start=None, end=None, step=1, *_):
    rank = cx.rank(src)
    start = 0 if start is None else start
    end = INT64_MAX if end is None else end
    x = cx.tensor(src)
    if start == 0 and end == INT64_MAX and step == 1:
        return cx.b.Identity(x, name=cx.node.name)
    end = min(end, INT64_MAX) if isinstance(end, int) else end
    return cx.b.Slice(x, cx.size(start), cx.size(end), cx.ints([_axis(dim, rank)]),
                      cx.ints([step]), name=cx.node.name)


def split_with_sizes(cx, src, sizes, dim=0, *_):
    rank = cx.rank(src)
    outs = cx.b.Split(cx.tensor(src), cx.ints(sizes), axis=_axis(dim, rank),
                      outputs=[f"{cx.node.name}_{i}" for i in range(len(sizes))])
    return outs if isinstance(outs, tuple) else (outs,)


def split(cx, src, size, dim=0, *_):
    rank = cx.rank(src)
    length = cx.fake(src).shape[_axis(dim, rank)]
    if not _static(length):
        raise UnsupportedOpError(f"node '{cx.node.name}': split of a symbolic dim",
                                 ops=[str(cx.node.target)])
    length = int(length)
    sizes = [size] * (length // size) + ([length % size] if length % size else [])
    return split_with_sizes(cx, src, sizes, dim)


def unbind(cx, src, dim=0, *_):
    rank = cx.rank(src)
    axis = _axis(dim, rank)
    n = int(cx.fake(src).shape[axis])
    x = cx.tensor(src)
    parts = cx.b.Split(x, cx.ints([1] * n), axis=axis,
                       outputs=[f"{cx.node.name}_{i}" for i in range(n)])
    parts = parts if isinstance(parts, tuple) else (parts,)
    return tuple(cx.b.Squeeze(p, cx.ints([axis]), name=f"{cx.node.name}.{i}")
                 for i, p in enumerate(parts))


def repeat(cx, src, repeats, *_):
    x = cx.tensor(src)
    extra = len(repeats) - cx.rank(src)
    if extra > 0:
        x = cx.b.Unsqueeze(x, cx.ints(list(range(extra))), name=cx.name("lead"))
    return cx.b.Tile(x, cx.sizes(repeats), name=cx.node.name)


def constant_pad_nd(cx, src, pad, value=0, *_):
    rank = cx.rank(src)
    begins, ends = [0] * rank, [0] * rank
    for k in range(len(pad) // 2):            # pad lists the last dim first
        begins[rank - 1 - k], ends[rank - 1 - k] = pad[2 * k], pad[2 * k + 1]
    x = cx.tensor(src)
    return cx.b.Pad(x, cx.ints(begins + ends), cx.tensor(value, x.type.dtype),
                    name=cx.node.name)


def flip(cx, src, dims, *_):
    rank = cx.rank(src)
    axes = [_axis(d, rank) for d in dims]
    n = len(axes)
    return cx.b.Slice(cx.tensor(src), cx.ints([-1] * n), cx.ints([-(2**63)] * n), cx.ints(axes),
                      cx.ints([-1] * n), name=cx.node.name)


def cumsum(cx, src, dim, *_):
    x = cx.tensor(src, cx.out_dtype())
    return cx.b.CumSum(x, cx.const(np.asarray(_axis(dim, cx.rank(src)), np.int64), "axis"),
                       name=cx.node.name)


def topk(cx, src, k, dim=-1, largest=True, sorted=True, *_):
    values, indices = cx.b.TopK(cx.tensor(src), cx.size(k), axis=_axis(dim, cx.rank(src)),
                                largest=int(bool(largest)), sorted=1,
                                outputs=[cx.node.name, f"{cx.node.name}_indices"])
    return (values, indices)


# --- SymInts -------------------------------------------------------------------------------

def sym_size(cx, src, dim, *_):
    val = cx.out()
    if isinstance(val, int) or _static(val):
        return cx.ints([int(val)])
    return cx.dim_size(cx.tensor(src), _axis(dim, cx.rank(src)))


def sym_arith(kiln_op: str):
    def convert(cx, a, b):
        val = cx.out()
        if isinstance(val, int) or (isinstance(val, torch.SymInt) and _static(val)):
            return cx.ints([int(val)])
        return getattr(cx.b, kiln_op)(cx.size(a), cx.size(b), name=cx.node.name)
    return convert


def sym_compare(kiln_op: str, negate: bool = False):
    """operator.ge/eq/... on SymInts (what export's runtime asserts check): bool[1]."""
    def convert(cx, a, b):
        out = getattr(cx.b, kiln_op)(cx.size(a), cx.size(b), name=cx.node.name)
        return cx.b.Not(out, name=cx.name("not")) if negate else out
    return convert


def sym_numel(cx, src, *_):
    val = cx.out()
    if isinstance(val, int) or _static(val):
        return cx.ints([int(val)])
    size = cx.b.Size(cx.tensor(src), name=cx.name("size"))
    return cx.b.Reshape(size, cx.ints([1]), name=cx.node.name)


def getitem(cx, seq, i):
    value = cx.env[seq]
    if not isinstance(value, (tuple, list)):
        raise UnsupportedOpError(f"node '{cx.node.name}': getitem on a single value",
                                 ops=["getitem"])
    if value[i] is None:
        if not cx.node.users:         # an output nobody reads
            return None
        raise UnsupportedOpError(f"node '{cx.node.name}': output {i} of '{seq.name}' "
                                 f"({seq.target}) is not supported", ops=[str(seq.target)])
    return value[i]


CONVERTERS = {
    aten.view.default: view, aten._unsafe_view.default: view, aten.reshape.default: view,
    aten.flatten.using_ints: flatten,
    aten.permute.default: permute, aten.transpose.int: transpose, aten.t.default: t,
    aten.unsqueeze.default: unsqueeze, aten.squeeze.dim: squeeze, aten.squeeze.dims: squeeze,
    aten.squeeze.default: squeeze, aten.expand.default: expand, aten.cat.default: cat,
    aten.slice.Tensor: slice_,
    aten.split_with_sizes.default: split_with_sizes, aten.split.Tensor: split,
    aten.unbind.int: unbind, aten.repeat.default: repeat,
    aten.constant_pad_nd.default: constant_pad_nd, aten.flip.default: flip,
    aten.cumsum.default: cumsum, aten.topk.default: topk,
    aten.sym_size.int: sym_size,
    operator.mul: sym_arith("Mul"), operator.add: sym_arith("Add"),
    operator.sub: sym_arith("Sub"), operator.floordiv: sym_arith("Div"),
    operator.mod: sym_arith("Mod"), torch.sym_max: sym_arith("Max"),
    torch.sym_min: sym_arith("Min"), aten.sym_numel.default: sym_numel,
    operator.ge: sym_compare("GreaterOrEqual"), operator.gt: sym_compare("Greater"),
    operator.le: sym_compare("LessOrEqual"), operator.lt: sym_compare("Less"),
    operator.eq: sym_compare("Equal"), operator.ne: sym_compare("Equal", negate=True),
    operator.getitem: getitem,
}
