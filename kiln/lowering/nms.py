"""NonMaxSuppression: greedy per-(batch, class) box selection, [n, 3] indices, n at run time.

With every input known when compiling, the node is a constant (dynamic_shape.fold_if_static).
Otherwise n is a computed size (dynamic_shape.py) bounded by batches * classes * boxes (or
batches * classes * max_output_boxes_per_class when that is a constant), and the op is one
serial kernel, `nms`. Per (batch, class): `alive[s]` starts as "score above score_threshold"
(every box without a threshold); then, up to max_output_boxes_per_class times, the alive box
with the highest score (ties: the lower index; NaN scores last) is selected, written as the
next row (batch, class, box), and it and every alive box overlapping it with IoU above
iou_threshold are no longer alive. O(boxes^2) per class. Rows go out in order, so the output's
row stride (3) does not depend on n and one kernel both writes them and counts them.

Geometry follows the ONNX reference: center_point_box 1 means (x_center, y_center, width,
height), 0 means two corners in either order; IoU is computed in the boxes' compute type and a
box of zero area (or no intersection) never suppresses. max_output_boxes_per_class absent or
<= 0 selects nothing; iou_threshold absent is 0.
"""

from __future__ import annotations


from ..ir import ops
from ..ir.dtypes import DType
from ..loops.expr import Const, Var
from ..loops.stmt import Assign, If, Local, Loop, Store
from . import exprs as E
from .dynamic_shape import computed_size, fold_if_static, static_array
from .registry import register
from .tensor import kernel, widen, Tensor

FALSE, TRUE = Const(False, DType.bool), Const(True, DType.bool)


def _and(*xs):
    out = xs[0]
    for x in xs[1:]:
        out = E.binary("and", out, x)
    return out


def _scalar(t: Tensor | None):
    return None if t is None else widen(t.at((E.ZERO,) * t.rank))


def _corners(box, center: bool):
    """(y0, x0, y1, x1) of a box given as its four coordinates."""
    a, b, c, d = box
    if center:
        half_w, half_h = c / E.const(2, c.dtype), d / E.const(2, d.dtype)
        return b - half_h, a - half_w, b + half_h, a + half_w
    mn, mx = (lambda u, v: E.binary("min", u, v)), (lambda u, v: E.binary("max", u, v))
    return mn(a, c), mn(b, d), mx(a, c), mx(b, d)


def _suppresses(kept, other, threshold):
    """IoU(kept, other) > threshold, with the reference's rules for degenerate boxes."""
    ky0, kx0, ky1, kx1 = kept
    oy0, ox0, oy1, ox1 = other
    zero = E.const(0, ky0.dtype)
    ih = E.binary("min", oy1, ky1) - E.binary("max", oy0, ky0)
    iw = E.binary("min", ox1, kx1) - E.binary("max", ox0, kx0)
    inter = E.select(_and(E.gt(ih, zero), E.gt(iw, zero)), ih * iw, zero)
    area_k, area_o = (ky1 - ky0) * (kx1 - kx0), (oy1 - oy0) * (ox1 - ox0)
    union = area_o + area_k - inter
    ok = _and(E.gt(inter, zero), E.gt(area_o, zero), E.gt(area_k, zero), E.gt(union, zero))
    safe = E.select(ok, union, E.const(1, union.dtype))
    return _and(ok, E.gt(inter / safe, E.cast(threshold, inter.dtype)))


@register(ops.NonMaxSuppression)
def lower_nms(ctx, node, inputs):
    folded = fold_if_static(ctx, node, inputs)
    if folded is not None:
        return folded
    boxes, scores = inputs[0], inputs[1]
    extra = list(inputs[2:]) + [None] * (5 - len(inputs))
    max_out, iou, min_score = extra[0], extra[1], extra[2]
    batches, classes, nboxes = scores.shape
    per_class = nboxes
    known = static_array(ctx, max_out)
    if max_out is None or (known is not None and known.size and int(known.reshape(-1)[0]) <= 0):
        per_class = E.ZERO
    elif known is not None and known.size:
        per_class = E.minimum(nboxes, Const(int(known.reshape(-1)[0])))
    upper = E.mul(E.mul(batches, classes), per_class)
    n, count = computed_size(ctx, node, "nms_n", upper)
    out = ctx.buffer_for(node.outputs[0], (n, Const(3)), DType.int64)
    limit = E.ZERO if max_out is None else E.cast(_scalar(max_out), DType.int64)
    threshold = _scalar(iou) if iou is not None else E.const(0, DType.float32)
    center = bool(ctx.attrs(node).center_point_box)

    b, c, t = (ctx.fresh_var(h) for h in ("b", "c", "t"))
    s0, s1, s2 = (ctx.fresh_var("s") for _ in range(3))      # each loop its own variable
    total, chosen, best = (ctx.fresh_var(h) for h in ("total", "chosen", "best"))
    score = lambda j: widen(scores.at((b, c, j)))              # noqa: E731
    corners = lambda j: _corners([widen(boxes.at((b, j, Const(k)))) for k in range(4)],  # noqa
                                 center)
    alive = ctx.new_buffer("nms_alive", (nboxes,), DType.bool)
    best_score = Var(ctx.fresh_name("best_score"), score(s0).dtype)

    passes = TRUE if min_score is None else E.gt(score(s0), E.cast(_scalar(min_score),
                                                                   score(s0).dtype))
    v, w = score(s1), best_score
    beats = E.binary("or", E.lt(best, E.ZERO), E.binary("or", E.gt(v, w), _and(
        E.unary("isnan", w), E.unary("not", E.unary("isnan", v)))))
    pick = Loop(s1, E.ZERO, nboxes, [If(_and(alive[s1], beats),
                                        [Assign(best, s1), Assign(best_score, v)])])
    suppress = Loop(s2, E.ZERO, nboxes, [If(
        _and(alive[s2], _suppresses(corners(best), corners(s2), threshold)),
        [Store(alive, (s2,), FALSE)])])
    select = If(E.ge(best, E.ZERO), [
        Store(out, (total, Const(0)), b), Store(out, (total, Const(1)), c),
        Store(out, (total, Const(2)), best),
        Assign(total, E.add(total, 1)), Assign(chosen, E.add(chosen, 1)),
        Store(alive, (best,), FALSE), suppress])
    step = If(E.lt(chosen, limit), [Assign(best, Const(-1)), pick, select])
    per_pair = [Loop(s0, E.ZERO, nboxes, [Store(alive, (s0,), passes)]),
                Local(chosen, Const(0)), Local(best, Const(-1)),
                Local(best_score, E.const(0, best_score.dtype)),
                Loop(t, E.ZERO, nboxes, [step])]
    body = [Local(total, Const(0)),
            Loop(b, E.ZERO, batches, [Loop(c, E.ZERO, classes, per_pair)]),
            Store(count, (E.ZERO,), total)]
    ctx.emit(kernel(ctx.fresh_name("nms", kernel=True), body))
    return [Tensor.of(out)]
