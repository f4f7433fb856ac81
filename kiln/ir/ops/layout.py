"""Block and window rearrangements: DepthToSpace, SpaceToDepth, Trilu, ReverseSequence,
CenterCropPad and Col2Im.

They are data movement like movement.py's ops, but each moves elements in blocks or windows
defined by attributes (a block size, a diagonal, per-batch lengths, a kernel).
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import ExecutionError
from ..dtypes import DType
from ..opdef import FusionKind, InferContext
from ..shapes import dim_mul, normalize_axes
from ..types import TensorType
from .common import INT, INTS, STRING
from .registry import define
from .shape import INDEX_DTYPES, check_dtype, const_ints, fill_value, scalar_of, vector_length

K = FusionKind


# --- DepthToSpace, SpaceToDepth ------------------------------------------------------------------

def _blocksize(ctx: InferContext) -> int:
    b = ctx.attrs.blocksize
    if b < 1:
        ctx.fail(f"{ctx.op.name} blocksize must be >= 1, got {b}")
    return b


def _require_rank4(ctx: InferContext) -> TensorType:
    x = ctx.tensor(0)
    if x.shape is not None and len(x.shape) != 4:
        ctx.fail(f"{ctx.op.name} takes an NCHW (rank-4) input, got shape {list(x.shape)}")
    return x


def _infer_depth_to_space(ctx: InferContext):
    x, b = _require_rank4(ctx), _blocksize(ctx)
    if x.shape is None:
        return [x.with_shape((None,) * 4)]
    n, c, h, w = x.shape
    if isinstance(c, int) and c % (b * b):
        ctx.fail(f"DepthToSpace needs channels divisible by blocksize^2 = {b * b}, got {c}")
    c_out = c // (b * b) if isinstance(c, int) else (c if b == 1 else None)
    return [x.with_shape((n, c_out, dim_mul(h, b), dim_mul(w, b)))]


def _depth_to_space(ctx, x):
    b = ctx.attrs.blocksize
    n, c, h, w = x.shape
    if ctx.attrs.mode == "DCR":
        t = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    else:
        t = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    return t.reshape(n, c // (b * b), h * b, w * b)


DepthToSpace = define(
    "DepthToSpace", ["input"], ["output"], kind=K.INJECTIVE, since_version=28,
    attrs=[INT("blocksize"), STRING("mode", "DCR", choices=("DCR", "CRD"))],
    infer=_infer_depth_to_space, reference=_depth_to_space,
    doc="Moves channel blocks into blocksize x blocksize spatial tiles (NCHW).")


def _infer_space_to_depth(ctx: InferContext):
    x, b = _require_rank4(ctx), _blocksize(ctx)
    if x.shape is None:
        return [x.with_shape((None,) * 4)]
    n, c, h, w = x.shape
    for name, d in (("height", h), ("width", w)):
        if isinstance(d, int) and d % b:
            ctx.fail(f"SpaceToDepth needs {name} divisible by blocksize {b}, got {d}")
    spatial = [d // b if isinstance(d, int) else (d if b == 1 else None) for d in (h, w)]
    return [x.with_shape((n, dim_mul(c, b * b), *spatial))]


def _space_to_depth(ctx, x):
    b = ctx.attrs.blocksize
    n, c, h, w = x.shape
    t = x.reshape(n, c, h // b, b, w // b, b)
    perm = (0, 3, 5, 1, 2, 4) if ctx.attrs.mode == "DCR" else (0, 1, 3, 5, 2, 4)
    return t.transpose(perm).reshape(n, c * b * b, h // b, w // b)


SpaceToDepth = define(
    "SpaceToDepth", ["input"], ["output"], kind=K.INJECTIVE, since_version=28,
    attrs=[INT("blocksize"), STRING("mode", "DCR", choices=("DCR", "CRD"))],
    infer=_infer_space_to_depth, reference=_space_to_depth,
    doc="Moves blocksize x blocksize spatial tiles into channels (NCHW); inverse of DepthToSpace.")


# --- Trilu -------------------------------------------------------------------------------------

def _infer_trilu(ctx: InferContext):
    x = ctx.tensor(0)
    if x.shape is not None and len(x.shape) < 2:
        ctx.fail(f"Trilu takes a matrix or a batch of them, got shape {list(x.shape)}")
    if ctx.has_input(1):
        check_dtype(ctx, 1, {DType.int64}, "Trilu's k")
        k = ctx.tensor(1)
        if k.shape is not None and k.numel() not in (1, None):
            ctx.fail(f"Trilu k must be a scalar, got shape {list(k.shape)}")
    return [x]


def _trilu(ctx, x, k=None):
    k = 0 if k is None else int(scalar_of(k, "Trilu k"))
    rows, cols = x.shape[-2:]
    # clamp k so huge values do not overflow the index arithmetic
    k = min(max(k, -rows - 1), cols + 1)
    keep = np.triu(np.ones((rows, cols), bool), k) if ctx.attrs.upper else \
        np.tril(np.ones((rows, cols), bool), k)
    return np.where(keep, x, np.array(fill_value(x.dtype), dtype=x.dtype))


Trilu = define(
    "Trilu", ["input", "k?"], ["output"], kind=K.INJECTIVE, since_version=14,
    attrs=[INT("upper", 1, choices=(0, 1))], infer=_infer_trilu, reference=_trilu,
    doc="Keeps the upper/lower triangle from diagonal k of the last two dims, zeroes the rest.")


# --- ReverseSequence ---------------------------------------------------------------------------

def _infer_reverse_sequence(ctx: InferContext):
    x = ctx.tensor(0)
    batch_axis, time_axis = ctx.attrs.batch_axis, ctx.attrs.time_axis
    if batch_axis == time_axis:
        ctx.fail(f"ReverseSequence batch_axis and time_axis are both {batch_axis}")
    if x.shape is not None and len(x.shape) < 2:
        ctx.fail(f"ReverseSequence takes a tensor of rank >= 2, got shape {list(x.shape)}")
    check_dtype(ctx, 1, {DType.int64}, "ReverseSequence's sequence_lens")
    n = vector_length(ctx, 1, "ReverseSequence's sequence_lens")
    if x.shape is not None and isinstance(x.shape[batch_axis], int) and n is not None \
            and n != x.shape[batch_axis]:
        ctx.fail(f"ReverseSequence has {n} sequence_lens for a batch of {x.shape[batch_axis]}")
    return [x]


def _reverse_sequence(ctx, x, lens):
    out = x.copy()
    src = np.moveaxis(x, (ctx.attrs.batch_axis, ctx.attrs.time_axis), (0, 1))
    dst = np.moveaxis(out, (ctx.attrs.batch_axis, ctx.attrs.time_axis), (0, 1))
    steps = src.shape[1]
    if len(lens) != src.shape[0]:
        raise ExecutionError(f"{len(lens)} sequence_lens for a batch of {src.shape[0]}")
    for b, n in enumerate(int(v) for v in lens):
        if not 0 <= n <= steps:
            raise ExecutionError(f"sequence_lens[{b}] = {n} is outside [0, {steps}]")
        dst[b, :n] = src[b, :n][::-1]
    return out


ReverseSequence = define(
    "ReverseSequence", ["input", "sequence_lens"], ["Y"], kind=K.INJECTIVE, since_version=28,
    attrs=[INT("batch_axis", 1, choices=(0, 1)), INT("time_axis", 0, choices=(0, 1))],
    infer=_infer_reverse_sequence, reference=_reverse_sequence,
    doc="Reverses the first sequence_lens[b] time steps of each batch entry b.")


# --- CenterCropPad -----------------------------------------------------------------------------

def _infer_center_crop_pad(ctx: InferContext):
    x = ctx.tensor(0)
    check_dtype(ctx, 1, INDEX_DTYPES, "CenterCropPad's shape")
    n = vector_length(ctx, 1, "CenterCropPad's shape")
    if x.shape is None:
        return [x]
    rank = len(x.shape)
    axes = list(range(rank)) if ctx.attrs.axes is None else \
        normalize_axes(ctx.attrs.axes, rank, ctx.node)
    if len(set(axes)) != len(axes):
        ctx.fail(f"CenterCropPad axes {list(ctx.attrs.axes)} repeat an axis")
    if n is not None and n != len(axes):
        ctx.fail(f"CenterCropPad shape has {n} entries for {len(axes)} axes")
    sizes = const_ints(ctx, 1)
    if sizes is not None and any(s < 0 for s in sizes):
        ctx.fail(f"CenterCropPad shape {sizes} has a negative size")
    out = list(x.shape)
    for i, a in enumerate(axes):
        out[a] = None if sizes is None else sizes[i]
    return [x.with_shape(out)]


def _center_crop_pad(ctx, x, shape):
    axes = range(x.ndim) if ctx.attrs.axes is None else [a % x.ndim for a in ctx.attrs.axes]
    src = [slice(None)] * x.ndim
    dst = [slice(None)] * x.ndim
    out_shape = list(x.shape)
    for a, size in zip(axes, (int(s) for s in shape.reshape(-1))):
        dim = x.shape[a]
        out_shape[a] = size
        if size < dim:      # crop: the window starts rounded down
            start = (dim - size) // 2
            src[a] = slice(start, start + size)
        elif size > dim:    # pad: the odd pixel goes to the end
            start = (size - dim) // 2
            dst[a] = slice(start, start + dim)
    out = np.full(out_shape, fill_value(x.dtype), dtype=x.dtype)
    out[tuple(dst)] = x[tuple(src)]
    return out


CenterCropPad = define(
    "CenterCropPad", ["input_data", "shape"], ["output_data"], kind=K.INJECTIVE, since_version=18,
    attrs=[INTS("axes", None)], infer=_infer_center_crop_pad, reference=_center_crop_pad,
    doc="Center-crops or zero-pads the listed axes (default all) to the given sizes.")


# --- Col2Im ------------------------------------------------------------------------------------

def _col2im_params(n: int, attrs) -> tuple[list[int], list[int], list[int]]:
    """dilations, pads (begins then ends) and strides, defaults filled for n spatial dims."""
    dil = list(attrs.dilations) if attrs.dilations is not None else [1] * n
    pads = list(attrs.pads) if attrs.pads is not None else [0] * (2 * n)
    strides = list(attrs.strides) if attrs.strides is not None else [1] * n
    return dil, pads, strides


def _col2im_blocks(image, block, dil, pads, strides) -> list[int]:
    """Number of sliding-block positions along each spatial dim."""
    n = len(image)
    return [(image[i] + pads[i] + pads[i + n] - dil[i] * (block[i] - 1) - 1) // strides[i] + 1
            for i in range(n)]


def _infer_col2im(ctx: InferContext):
    x = ctx.tensor(0)
    if x.shape is not None and len(x.shape) != 3:
        ctx.fail(f"Col2Im takes an (N, C*prod(block_shape), L) input, got shape {list(x.shape)}")
    check_dtype(ctx, 1, {DType.int64}, "Col2Im's image_shape")
    check_dtype(ctx, 2, {DType.int64}, "Col2Im's block_shape")
    n = vector_length(ctx, 1, "Col2Im's image_shape")
    image, block = const_ints(ctx, 1), const_ints(ctx, 2)
    if n is None and image is not None:
        n = len(image)
    if n is None:
        return [x.with_shape(None)]
    dil, pads, strides = _col2im_params(n, ctx.attrs)
    if not len(dil) == len(strides) == n or len(pads) != 2 * n:
        ctx.fail(f"Col2Im dilations, strides (need {n}) and pads (need {2 * n}) do not match "
                 f"the {n} spatial dims")
    if min(dil + strides, default=1) < 1:
        ctx.fail("Col2Im dilations and strides must be >= 1")
    batch, channels, length = x.shape if x.shape is not None else (None, None, None)
    if block is not None:
        if len(block) != n or min(block, default=1) < 1:
            ctx.fail(f"Col2Im block_shape {block} must hold {n} positive sizes")
        k = math.prod(block)
        if isinstance(channels, int):
            if channels % k:
                ctx.fail(f"Col2Im input dim 1 ({channels}) is not divisible by the block size {k}")
            channels //= k
        elif k != 1:
            channels = None
        if image is not None and isinstance(length, int):
            blocks = math.prod(_col2im_blocks(image, block, dil, pads, strides))
            if blocks != length:
                ctx.fail(f"Col2Im input has {length} blocks, but image_shape {image} with "
                         f"block_shape {block} gives {blocks}")
    else:
        channels = None
    spatial = tuple(image) if image is not None else (None,) * n
    return [x.with_shape((batch, channels) + spatial)]


def _col2im(ctx, x, image_shape, block_shape):
    image = [int(v) for v in image_shape]
    block = [int(v) for v in block_shape]
    n = len(image)
    dil, pads, strides = _col2im_params(n, ctx.attrs)
    counts = _col2im_blocks(image, block, dil, pads, strides)
    batch, ck, length = x.shape
    k = math.prod(block)
    if ck % k or length != math.prod(counts):
        raise ExecutionError(f"Col2Im input of shape {x.shape} does not fit image_shape {image} "
                             f"and block_shape {block}")
    cols = x.reshape(batch, ck // k, k, length)
    out = np.zeros((batch, ck // k, math.prod(image)), dtype=x.dtype)
    positions = np.indices(counts).reshape(n, -1)            # block position per spatial dim
    for kernel_index in range(k):
        offset = np.unravel_index(kernel_index, block)
        coords = [positions[i] * strides[i] - pads[i] + offset[i] * dil[i] for i in range(n)]
        inside = np.logical_and.reduce([(c >= 0) & (c < image[i]) for i, c in enumerate(coords)])
        flat = np.ravel_multi_index([c[inside] for c in coords], image)
        np.add.at(out, (slice(None), slice(None), flat), cols[:, :, kernel_index, inside])
    return out.reshape(batch, ck // k, *image)


Col2Im = define(
    "Col2Im", ["input", "image_shape", "block_shape"], ["output"], kind=K.OPAQUE, since_version=18,
    attrs=[INTS("dilations", None), INTS("pads", None), INTS("strides", None)],
    infer=_infer_col2im, reference=_col2im,
    doc="Sums column blocks back into an image (the inverse of im2col; PyTorch's fold).")
