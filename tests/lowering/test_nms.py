"""NonMaxSuppression against the Graph IR interpreter (Loop IR interpreter and native code): the
spec's attribute and optional-input forms (corner boxes in either order, center_point_box=1,
thresholds absent or given, max_output_boxes_per_class absent / 0 / limiting / a constant),
several batches and classes, tied and identical boxes, NaN scores."""

import numpy as np
import pytest

from .harness import check_op

SPEC_BOXES = np.array([[[0.0, 0.0, 1.0, 1.0], [0.0, 0.1, 1.0, 1.1], [0.0, -0.1, 1.0, 0.9],
                        [0.0, 10.0, 1.0, 11.0], [0.0, 10.1, 1.0, 11.1],
                        [0.0, 100.0, 1.0, 101.0]]], np.float32)
SPEC_SCORES = np.array([[[0.9, 0.75, 0.6, 0.95, 0.5, 0.3]]], np.float32)


def _i64(v):
    return np.array([v], np.int64)


def _f32(v):
    return np.array([v], np.float32)


@pytest.mark.parametrize("extra", [
    [_i64(3), _f32(0.5)], [_i64(3), _f32(0.5), _f32(0.4)], [_i64(2), _f32(0.5)],
    [_i64(0), _f32(0.5)], [_i64(-1), _f32(0.5)], [], [_i64(10), _f32(0.0)],
    [_i64(3), None, _f32(0.4)],
], ids=["iou", "iou_and_score", "limit", "limit_0", "limit_negative", "no_optional_inputs",
        "iou_0", "no_iou"])
def test_nms_spec_inputs(backend, extra):
    check_op(backend, "NonMaxSuppression", [SPEC_BOXES, SPEC_SCORES, *extra])


def test_nms_flipped_corners_and_center_format(backend):
    flipped = SPEC_BOXES[..., [2, 3, 0, 1]]
    check_op(backend, "NonMaxSuppression", [flipped, SPEC_SCORES, _i64(3), _f32(0.5)])
    y0, x0, y1, x1 = np.moveaxis(SPEC_BOXES, -1, 0)
    center = np.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], -1)
    check_op(backend, "NonMaxSuppression", [center, SPEC_SCORES, _i64(3), _f32(0.5)],
             {"center_point_box": 1})


@pytest.mark.parametrize("center", [0, 1])
def test_nms_random_batches_and_classes(backend, center):
    rng = np.random.default_rng(center)
    b, c, s = 2, 3, 9
    xy = rng.uniform(0, 4, (b, s, 2))
    wh = rng.uniform(0.5, 3, (b, s, 2))
    boxes = np.concatenate([xy, xy + wh] if not center else [xy, wh], -1).astype(np.float32)
    scores = rng.random((b, c, s)).astype(np.float32)
    scores[0, 0, :4] = 0.5                                 # ties: the lower index first
    scores[1, 2, 3] = np.nan
    check_op(backend, "NonMaxSuppression",
             [boxes, scores, np.array(4, np.int64), np.array(0.3, np.float32),
              np.array(0.2, np.float32)], {"center_point_box": center})


def test_nms_identical_and_degenerate_boxes(backend):
    boxes = np.array([[[0, 0, 1, 1]] * 5 + [[2, 2, 2, 3]] * 2], np.float32)
    scores = np.linspace(0.9, 0.2, 7, dtype=np.float32).reshape(1, 1, 7)
    check_op(backend, "NonMaxSuppression", [boxes, scores, _i64(5), _f32(0.5)])


def test_nms_constant_limit_and_single_box(backend):
    check_op(backend, "NonMaxSuppression", [SPEC_BOXES, SPEC_SCORES, _i64(2), _f32(0.5)],
             consts=[2, 3])
    check_op(backend, "NonMaxSuppression",
             [SPEC_BOXES[:, :1], SPEC_SCORES[:, :, :1], _i64(3), _f32(0.5)])


def test_nms_all_inputs_constant_folds(backend):
    program = check_op(backend, "NonMaxSuppression",
                       [SPEC_BOXES, SPEC_SCORES, _i64(3), _f32(0.5)], consts=[0, 1, 2, 3])
    assert not program.computed
