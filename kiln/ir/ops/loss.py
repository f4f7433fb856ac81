"""Classification losses: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.

Both pick, for each sample (and each spatial position), the class named by the target from an
(N, C, d1, ..., dk) tensor, weight it, and reduce; SoftmaxCrossEntropyLoss first takes the
log-softmax over the class axis. `ignore_index` targets contribute nothing, not even weight.
"""

from __future__ import annotations

import numpy as np

from ...errors import ExecutionError
from ..dtypes import DType
from ..opdef import FusionKind, InferContext
from ..types import TensorType
from .common import INT, STRING
from .normalization import log_softmax
from .reduce import STD_FLOATS, check_dtype, compute_dtype
from .registry import define

K = FusionKind


def _infer_loss(ctx: InferContext):
    x = ctx.tensor(0)
    check_dtype(ctx, x.dtype, STD_FLOATS)
    target = ctx.tensor(1)
    check_dtype(ctx, target.dtype, {DType.int32, DType.int64}, "target")
    if x.rank is not None and x.rank < 2:
        ctx.fail(f"{ctx.op.name} takes (N, C, d1, ..., dk) scores, got {x}")
    shape = target.shape
    if x.shape is not None and target.shape is not None:
        if len(target.shape) != len(x.shape) - 1:
            ctx.fail(f"target {target} must have rank {len(x.shape) - 1} for input {x}",
                     hint="target is (N, d1, ..., dk) for input (N, C, d1, ..., dk)")
        expected = (x.shape[0],) + x.shape[2:]
        for a, b in zip(target.shape, expected):
            if isinstance(a, int) and isinstance(b, int) and a != b:
                ctx.fail(f"target {target} does not match input {x} (expected dims {expected})")
        shape = tuple(b if a is None or isinstance(b, int) else a
                      for a, b in zip(target.shape, expected))
    elif x.shape is not None:
        shape = (x.shape[0],) + x.shape[2:]
    if ctx.has_input(2):
        w = ctx.tensor(2)
        if w.dtype != x.dtype:
            ctx.fail(f"weights are {w.dtype.short} but the input is {x.dtype.short}",
                     hint="insert a Cast so the operands agree")
        if w.shape is not None and len(w.shape) != 1:
            ctx.fail(f"weights must be 1-D (one per class), got {w}")
        if w.shape is not None and x.shape is not None and isinstance(w.shape[0], int) and \
                isinstance(x.shape[1], int) and w.shape[0] != x.shape[1]:
            ctx.fail(f"{w.shape[0]} weights for {x.shape[1]} classes")
    loss = TensorType(x.dtype, shape if ctx.attrs.reduction == "none" else ())
    return [loss, x][:len(ctx.op.outputs)]


def negative_log_likelihood(ctx, log_prob: np.ndarray, target: np.ndarray,
                            weight: np.ndarray | None) -> np.ndarray:
    """The weighted, reduced loss -log_prob[n, target[n, ...], ...] (in log_prob's dtype)."""
    classes = log_prob.shape[1]
    ignore = ctx.attrs.ignore_index
    ignored = np.zeros(target.shape, bool) if ignore is None else target == ignore
    safe = np.where(ignored, 0, target).astype(np.int64)
    if np.any((safe < 0) | (safe >= classes)):
        bad = target[~ignored & ((safe < 0) | (safe >= classes))].ravel()[0]
        raise ExecutionError(f"target class {bad} is outside [0, {classes})",
                             hint="set ignore_index for padding targets")
    picked = np.take_along_axis(log_prob, np.expand_dims(safe, 1), axis=1)[:, 0]
    w = np.ones_like(picked) if weight is None else weight.astype(log_prob.dtype)[safe]
    w = np.where(ignored, 0, w).astype(log_prob.dtype)
    loss = -picked * w
    if ctx.attrs.reduction == "sum":
        return np.sum(loss)
    if ctx.attrs.reduction == "mean":
        return np.sum(loss) / np.sum(w)
    return loss


def _nll(ctx, x, target, weight=None):
    xs = x.astype(compute_dtype(x.dtype), copy=False)
    return np.asarray(negative_log_likelihood(ctx, xs, target, weight)).astype(x.dtype)


def _softmax_cross_entropy(ctx, scores, labels, weights=None):
    log_prob = log_softmax(scores.astype(compute_dtype(scores.dtype), copy=False), 1)
    loss = negative_log_likelihood(ctx, log_prob, labels, weights)
    return np.asarray(loss).astype(scores.dtype), log_prob.astype(scores.dtype)


_LOSS_ATTRS = [INT("ignore_index", None), STRING("reduction", "mean", ("none", "sum", "mean"))]

NegativeLogLikelihoodLoss = define(
    "NegativeLogLikelihoodLoss", ["input", "target", "weight?"], ["loss"], kind=K.OPAQUE,
    since_version=22, attrs=_LOSS_ATTRS, infer=_infer_loss, reference=_nll,
    doc="-input[n, target[n, ...], ...] * weight[target], reduced by `reduction` (mean divides "
        "by the sum of the applied weights).")

SoftmaxCrossEntropyLoss = define(
    "SoftmaxCrossEntropyLoss", ["scores", "labels", "weights?"], ["output", "log_prob?"],
    kind=K.OPAQUE, since_version=13, attrs=_LOSS_ATTRS, infer=_infer_loss,
    reference=_softmax_cross_entropy,
    doc="NegativeLogLikelihoodLoss of log_softmax(scores) over the class axis; optionally "
        "outputs that log_softmax.")
