"""Sampling and detection ops on images: GridSample, AffineGrid, RoiAlign, NonMaxSuppression.

Resize lives in resize.py. ImageDecoder is not defined: decoding JPEG/PNG/... needs an image
codec, and kiln's dependencies (numpy, onnx, llvmlite) include none.

Kinds: GridSample reads a stencil of input pixels at addresses computed from another tensor's
values, RoiAlign pools a data-dependent window, NonMaxSuppression has a data-dependent output
size and AffineGrid is a small batched matmul: all OPAQUE, each gets a kernel of its own.
"""

from __future__ import annotations

import itertools

import numpy as np

from ...errors import ExecutionError
from ..dtypes import DType
from ..opdef import FusionKind, InferContext
from ..types import TensorType
from .common import FLOAT, INT, STRING
from .registry import define

K = FusionKind


def _need_float(ctx: InferContext, i: int) -> DType:
    dtype = ctx.tensor(i).dtype
    if not dtype.is_float or dtype.itemsize < 2:
        ctx.fail(f"input '{ctx.op.inputs[i].name}' must be float16, bfloat16, float32 or float64, "
                 f"got {dtype.short}", hint="insert a Cast")
    return dtype


def _need_rank(ctx: InferContext, i: int, ranks) -> tuple | None:
    shape = ctx.tensor(i).shape
    if shape is not None and len(shape) not in ranks:
        ctx.fail(f"input '{ctx.op.inputs[i].name}' must have rank {' or '.join(map(str, ranks))}, "
                 f"got shape {shape}")
    return shape


def _same(ctx: InferContext, a, b, what: str) -> None:
    if isinstance(a, int) and isinstance(b, int) and a != b:
        ctx.fail(f"{what}: {a} != {b}")


def _scalar(a) -> float | int:
    return np.asarray(a).reshape(-1)[0].item()


# --- GridSample ----------------------------------------------------------------------------------

def _infer_grid_sample(ctx: InferContext):
    x, grid = ctx.tensor(0), ctx.tensor(1)
    _need_float(ctx, 1)
    if x.dtype is DType.string or (ctx.attrs.mode != "nearest" and x.dtype is DType.bool):
        ctx.fail(f"GridSample mode '{ctx.attrs.mode}' does not take {x.dtype.short} input")
    if x.shape is not None and len(x.shape) < 3:
        ctx.fail(f"X must be (N, C, D1, ..., Dr) with r >= 1, got shape {x.shape}")
    if grid.shape is not None and len(grid.shape) < 3:
        ctx.fail(f"grid must be (N, D1_out, ..., Dr_out, r), got shape {grid.shape}")
    if x.shape is None or grid.shape is None:
        rank = len(x.shape) if x.shape is not None else \
            len(grid.shape) if grid.shape is not None else None
        return [TensorType(x.dtype, None if rank is None else [None] * rank)]
    r = len(x.shape) - 2
    if len(grid.shape) != r + 2:
        ctx.fail(f"grid of shape {grid.shape} does not fit X of shape {x.shape}",
                 hint=f"for {r} spatial dims grid is (N, D1_out, ..., D{r}_out, {r})")
    _same(ctx, grid.shape[-1], r, "grid's last dim must equal the number of spatial dims")
    _same(ctx, x.shape[0], grid.shape[0], "X and grid batch sizes differ")
    n = x.shape[0] if x.shape[0] is not None else grid.shape[0]
    return [TensorType(x.dtype, (n, x.shape[1], *grid.shape[1:-1]))]


def _reflect(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Reflect coordinates off the borders [lo, hi] until they land inside."""
    span = hi - lo
    if span <= 0:
        return np.full_like(v, lo)
    below, above = v < lo, v > hi
    dist = np.where(below, lo - v, np.where(above, v - hi, 0.0))
    flips = np.trunc(dist / span)
    rest = dist - flips * span
    even = flips % 2 == 0
    return np.where(below, np.where(even, lo + rest, hi - rest),
                    np.where(above, np.where(even, hi - rest, lo + rest), v))


def _cubic_weights(t: np.ndarray, a: float = -0.75) -> list[np.ndarray]:
    """Keys' cubic weights for the taps at -1, 0, 1, 2 from floor(x), t = x - floor(x)."""
    def near(d):
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _grid_taps(attrs, pos: np.ndarray, size: int):
    """Per spatial axis: a list of (index, weight, valid) per tap, each shaped like pos."""
    lo, hi = (0.0, size - 1.0) if attrs.align_corners else (-0.5, size - 0.5)
    if attrs.mode == "nearest":
        pos = np.rint(pos)
    # nearest and linear pad the coordinate itself; cubic pads each of its four taps only
    # (as PyTorch and ONNX Runtime do: clamping the coordinate would flatten the kernel)
    out = (pos < lo) | (pos > hi)
    if attrs.padding_mode == "border" and attrs.mode != "cubic":
        pos = np.where(out, np.clip(pos, 0, size - 1), pos)
    elif attrs.padding_mode == "reflection" and attrs.mode != "cubic":
        pos = np.where(out, _reflect(pos, lo, hi), pos)
    if attrs.mode == "nearest":
        taps = [(np.trunc(pos), np.ones_like(pos))]
    else:
        base = np.floor(pos)
        t = pos - base
        weights = [1 - t, t] if attrs.mode == "linear" else _cubic_weights(t)
        first = 0 if attrs.mode == "linear" else -1
        taps = [(base + first + k, w) for k, w in enumerate(weights)]
    result = []
    for idx, w in taps:
        if attrs.padding_mode == "zeros":
            valid = (idx >= 0) & (idx < size)
        else:
            if attrs.padding_mode == "reflection":
                idx = np.trunc(_reflect(idx, lo, hi))
            valid = np.ones(idx.shape, bool)
        result.append((np.clip(idx, 0, size - 1).astype(np.intp), w, valid))
    return result


def _grid_sample(ctx, x, grid):
    a = ctx.attrs
    n, c, *dims = x.shape
    out_spatial = grid.shape[1:-1]
    if grid.shape[0] != n or grid.shape[-1] != len(dims):
        raise ExecutionError(f"grid of shape {grid.shape} does not fit X of shape {x.shape}")
    if x.size == 0 or grid.size == 0 or 0 in dims:
        return np.zeros((n, c, *out_spatial), x.dtype)
    g = grid.reshape(n, -1, len(dims)).astype(np.float32)   # points; last axis is (x, y, ...)
    per_axis = []
    for k, size in enumerate(dims):                          # axis k of X is grid entry r-1-k
        norm = g[..., len(dims) - 1 - k]
        pos = (norm + 1) / 2 * (size - 1) if a.align_corners else ((norm + 1) * size - 1) / 2
        per_axis.append(_grid_taps(a, pos.astype(np.float64), size))
    strides = np.cumprod([1, *dims[::-1]])[::-1][1:]
    flat = x.reshape(n, c, -1)
    exact = a.mode == "nearest"
    acc = np.zeros((n, c, g.shape[1]), x.dtype if exact else
                   np.complex128 if x.dtype.kind == "c" else np.float64)
    for combo in itertools.product(*per_axis):
        index = sum(idx * s for (idx, _, _), s in zip(combo, strides))
        valid = np.logical_and.reduce([v for _, _, v in combo])
        vals = np.take_along_axis(flat, index[:, None, :], axis=2)
        if exact:
            acc = np.where(valid[:, None, :], vals, acc)
        else:
            weight = np.prod([w for _, w, _ in combo], axis=0) * valid
            acc = acc + vals * weight[:, None, :]
    y = acc.reshape(n, c, *out_spatial)
    if exact:
        return y
    if x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        y = np.clip(np.round(y), info.min, info.max)
    return y.astype(x.dtype)


GridSample = define(
    "GridSample", ["X", "grid"], ["Y"], kind=K.OPAQUE, since_version=22,
    attrs=[INT("align_corners", 0, choices=(0, 1)),
           STRING("mode", "linear", choices=("nearest", "linear", "cubic")),
           STRING("padding_mode", "zeros", choices=("zeros", "border", "reflection"))],
    infer=_infer_grid_sample, reference=_grid_sample,
    doc="Sample X at the normalized positions in grid (nearest, N-linear or N-cubic).")


# --- AffineGrid ----------------------------------------------------------------------------------

def _infer_affine_grid(ctx: InferContext):
    dtype = _need_float(ctx, 0)
    theta = _need_rank(ctx, 0, (3,))
    size_t = ctx.tensor(1)
    if size_t.dtype is not DType.int64:
        ctx.fail(f"size must be int64, got {size_t.dtype.short}")
    size = ctx.const(1)
    r = None
    if size is not None:
        if size.ndim != 1 or size.size not in (4, 5):
            ctx.fail(f"size must be (N, C, H, W) or (N, C, D, H, W), got {size.tolist()}")
        r = size.size - 2
    elif size_t.shape is not None and len(size_t.shape) == 1 and size_t.shape[0] in (4, 5):
        r = size_t.shape[0] - 2
    elif theta is not None and theta[1] in (2, 3):
        r = theta[1]
    if theta is not None and r is not None:
        _same(ctx, theta[1], r, f"theta must be (N, {r}, {r + 1}) for a {r}-D grid")
        _same(ctx, theta[2], r + 1, f"theta must be (N, {r}, {r + 1}) for a {r}-D grid")
    if r is None:
        return [TensorType(dtype, None)]
    n = theta[0] if theta is not None else None
    if size is not None:
        _same(ctx, n, int(size[0]), "theta's batch size differs from size[0]")
        return [TensorType(dtype, (int(size[0]), *(int(s) for s in size[2:]), r))]
    return [TensorType(dtype, (n, *([None] * r), r))]


def _base_coords(size: int, align_corners: int) -> np.ndarray:
    """Normalized centres of `size` pixels along one axis, in [-1, 1] (one pixel: -1 when
    aligned to corners, as ONNX's function body defines it; 0 otherwise)."""
    if align_corners:
        return np.linspace(-1.0, 1.0, size)
    return (2 * np.arange(size) + 1) / size - 1


def _affine_grid(ctx, theta, size):
    size = [int(s) for s in size]
    if len(size) not in (4, 5) or theta.shape[1:] != (len(size) - 2, len(size) - 1) \
            or theta.shape[0] != size[0]:
        raise ExecutionError(f"theta of shape {theta.shape} does not fit size {size}")
    spatial = size[2:]
    axes = [_base_coords(s, ctx.attrs.align_corners) for s in spatial]
    mesh = np.meshgrid(*axes, indexing="ij")             # one array per spatial axis (D, H, W)
    points = np.stack([*mesh[::-1], np.ones(spatial)], axis=-1).reshape(-1, len(spatial) + 1)
    grid = np.einsum("nij,pj->npi", theta.astype(np.float64), points)
    return grid.reshape(size[0], *spatial, len(spatial)).astype(theta.dtype)


AffineGrid = define(
    "AffineGrid", ["theta", "size"], ["grid"], kind=K.OPAQUE, since_version=20,
    attrs=[INT("align_corners", 0, choices=(0, 1))],
    infer=_infer_affine_grid, reference=_affine_grid,
    doc="The sampling grid (for GridSample) of a batch of 2-D or 3-D affine transforms.")


# --- RoiAlign ------------------------------------------------------------------------------------

def _infer_roi_align(ctx: InferContext):
    dtype = _need_float(ctx, 0)
    if ctx.tensor(1).dtype is not dtype:
        ctx.fail(f"rois must have X's element type {dtype.short}, got {ctx.tensor(1).dtype.short}")
    if ctx.tensor(2).dtype is not DType.int64:
        ctx.fail(f"batch_indices must be int64, got {ctx.tensor(2).dtype.short}")
    x = _need_rank(ctx, 0, (4,))
    rois = _need_rank(ctx, 1, (2,))
    idx = _need_rank(ctx, 2, (1,))
    if rois is not None:
        _same(ctx, rois[1], 4, "rois must be (num_rois, 4)")
    num = rois[0] if rois is not None else None
    if idx is not None:
        _same(ctx, num, idx[0], "rois and batch_indices disagree on the number of rois")
        num = idx[0] if num is None else num
    for name in ("output_height", "output_width"):
        if ctx.attrs[name] < 1:
            ctx.fail(f"{name} must be >= 1, got {ctx.attrs[name]}")
    c = x[1] if x is not None else None
    return [TensorType(dtype, (num, c, ctx.attrs.output_height, ctx.attrs.output_width))]


def _roi_samples(start, bin_size, grid: int, pooled: int, limit: int):
    """Sample positions along one axis of one roi, as bilinear taps over the pooled bins.

    Returns low/high indices, low/high weights and validity, each (pooled, grid)."""
    k = np.arange(pooled, dtype=start.dtype)[:, None]
    i = np.arange(grid, dtype=start.dtype)[None, :]
    pos = start + k * bin_size + (i + start.dtype.type(0.5)) * bin_size / start.dtype.type(grid)
    valid = (pos >= -1.0) & (pos <= limit)
    pos = np.maximum(pos, 0)
    low = np.floor(pos).astype(np.int64)
    at_edge = low >= limit - 1
    low = np.where(at_edge, limit - 1, low)
    high = np.where(at_edge, limit - 1, low + 1)
    frac = np.where(at_edge, 0, pos - low)
    return low, high, 1 - frac, frac, valid


def _roi_align(ctx, x, rois, batch_indices):
    a = ctx.attrs
    n, c, height, width = x.shape
    ph, pw = a.output_height, a.output_width
    out = np.zeros((rois.shape[0], c, ph, pw), x.dtype)
    shift = 0.5 if a.coordinate_transformation_mode == "half_pixel" else 0.0
    scale = rois.dtype.type(a.spatial_scale)
    for r, (roi, b) in enumerate(zip(rois, batch_indices)):     # one vectorized step per roi
        if not 0 <= b < n:
            raise ExecutionError(f"batch index {b} of roi {r} is out of range for {n} images")
        x0, y0, x1, y1 = (v * scale - rois.dtype.type(shift) for v in roi)
        roi_w, roi_h = x1 - x0, y1 - y0
        if not shift:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        bin_h, bin_w = roi_h / ph, roi_w / pw
        gh = a.sampling_ratio if a.sampling_ratio > 0 else int(np.ceil(roi_h / ph))
        gw = a.sampling_ratio if a.sampling_ratio > 0 else int(np.ceil(roi_w / pw))
        if gh <= 0 or gw <= 0:
            continue
        yl, yh, wyl, wyh, vy = _roi_samples(np.asarray(y0, rois.dtype), bin_h, gh, ph, height)
        xl, xh, wxl, wxh, vx = _roi_samples(np.asarray(x0, rois.dtype), bin_w, gw, pw, width)
        img = x[b].astype(np.float64)
        if a.mode == "avg":        # separable: one weight matrix per axis, then two matmuls
            wy = np.zeros((ph, height))
            wx = np.zeros((pw, width))
            rows, cols = np.arange(ph)[:, None], np.arange(pw)[:, None]
            np.add.at(wy, (rows, yl), wyl * vy)
            np.add.at(wy, (rows, yh), wyh * vy)
            np.add.at(wx, (cols, xl), wxl * vx)
            np.add.at(wx, (cols, xh), wxh * vx)
            out[r] = (wy @ img @ wx.T) / max(gh * gw, 1)
        else:                      # max over samples of the largest weighted corner (as ONNX's
                                   # reference and ONNX Runtime define max mode)
            valid = vy[:, :, None, None] & vx[None, None]
            corners = [img[:, ya[:, :, None, None], xa[None, None]] * (wa[:, :, None, None] * wb[None, None])
                       for ya, wa in ((yl, wyl), (yh, wyh)) for xa, wb in ((xl, wxl), (xh, wxh))]
            best = np.where(valid, np.maximum.reduce(corners), 0.0)
            out[r] = best.max(axis=(2, 4))
    return out


RoiAlign = define(
    "RoiAlign", ["X", "rois", "batch_indices"], ["Y"], kind=K.OPAQUE, since_version=22,
    attrs=[STRING("coordinate_transformation_mode", "half_pixel",
                  choices=("half_pixel", "output_half_pixel")),
           STRING("mode", "avg", choices=("avg", "max")), INT("output_height", 1),
           INT("output_width", 1), INT("sampling_ratio", 0), FLOAT("spatial_scale", 1.0)],
    infer=_infer_roi_align, reference=_roi_align,
    doc="Pool each region of interest of X into an output_height x output_width grid (Mask R-CNN).")


# --- NonMaxSuppression ---------------------------------------------------------------------------

def _infer_nms(ctx: InferContext):
    for i in (0, 1, 3, 4):
        if ctx.has_input(i):
            _need_float(ctx, i)
    if ctx.has_input(2) and not ctx.tensor(2).dtype.is_int:
        ctx.fail(f"max_output_boxes_per_class must be int64, got {ctx.tensor(2).dtype.short}")
    boxes = _need_rank(ctx, 0, (3,))
    scores = _need_rank(ctx, 1, (3,))
    if boxes is not None:
        _same(ctx, boxes[2], 4, "boxes must be (num_batches, num_boxes, 4)")
    if boxes is not None and scores is not None:
        _same(ctx, boxes[0], scores[0], "boxes and scores disagree on num_batches")
        _same(ctx, boxes[1], scores[2], "boxes and scores disagree on num_boxes")
    return [TensorType(DType.int64, (None, 3))]


def _corners(boxes: np.ndarray, center_point_box: int) -> tuple[np.ndarray, ...]:
    """(y_min, x_min, y_max, x_max) of every box."""
    if center_point_box:
        xc, yc, w, h = np.moveaxis(boxes, -1, 0)
        return yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2
    y1, x1, y2, x2 = np.moveaxis(boxes, -1, 0)
    return np.minimum(y1, y2), np.minimum(x1, x2), np.maximum(y1, y2), np.maximum(x1, x2)


def _suppressed_by(corners, i: int, threshold: float) -> np.ndarray:
    """Which boxes overlap box i with IoU > threshold (degenerate boxes never do)."""
    y0, x0, y1, x1 = corners
    ih = np.minimum(y1, y1[i]) - np.maximum(y0, y0[i])
    iw = np.minimum(x1, x1[i]) - np.maximum(x0, x0[i])
    inter = np.where((ih > 0) & (iw > 0), ih * iw, 0.0)
    area = (y1 - y0) * (x1 - x0)
    union = area + area[i] - inter
    ok = (inter > 0) & (area > 0) & (area[i] > 0) & (union > 0)
    with np.errstate(all="ignore"):
        return ok & (inter / np.where(ok, union, 1) > threshold)


def _nms(ctx, boxes, scores, max_out=None, iou_threshold=None, score_threshold=None):
    limit = max(int(_scalar(max_out)), 0) if max_out is not None and max_out.size else 0
    iou = float(_scalar(iou_threshold)) if iou_threshold is not None and iou_threshold.size else 0.0
    min_score = float(_scalar(score_threshold)) \
        if score_threshold is not None and score_threshold.size else None
    picked = []
    for b in range(boxes.shape[0]):
        corners = _corners(boxes[b], ctx.attrs.center_point_box)   # in the boxes' own type
        for c in range(scores.shape[1]):
            s = scores[b, c]
            order = np.argsort(-s.astype(np.float64), kind="stable")  # ties: lower index first
            if min_score is not None:
                order = order[s[order] > min_score]
            suppressed = np.zeros(s.shape, bool)
            chosen = 0
            for i in order:       # greedy by nature: each pick depends on the earlier ones
                if chosen >= limit:
                    break
                if suppressed[i]:
                    continue
                picked.append((b, c, i))
                chosen += 1
                suppressed |= _suppressed_by(corners, i, iou)
    return np.array(picked, np.int64).reshape(-1, 3)


NonMaxSuppression = define(
    "NonMaxSuppression", ["boxes", "scores", "max_output_boxes_per_class?", "iou_threshold?",
                          "score_threshold?"], ["selected_indices"],
    kind=K.OPAQUE, since_version=11, attrs=[INT("center_point_box", 0, choices=(0, 1))],
    infer=_infer_nms, reference=_nms,
    doc="Greedy per-class box selection by score, dropping boxes that overlap a kept one.")
