"""RoiAlign against the Graph IR interpreter: avg and max, both coordinate modes, a fixed and
an adaptive sampling grid, rois partly outside the image, degenerate and reversed rois, float64."""

import numpy as np
import pytest

from .harness import check_op, rand

ROIS = np.array([[0.0, 0.0, 9.0, 9.0], [0.5, 1.5, 6.2, 4.9], [-3.0, -2.0, 4.0, 12.0],
                 [5.0, 5.0, 5.0, 5.0], [7.0, 6.0, 2.0, 1.0]], np.float32)
BATCH = np.array([0, 1, 1, 0, 1], np.int64)


@pytest.mark.parametrize("mode", ["avg", "max"])
@pytest.mark.parametrize("ctm", ["half_pixel", "output_half_pixel"])
@pytest.mark.parametrize("sampling_ratio", [0, 2])
def test_roi_align(backend, mode, ctm, sampling_ratio):
    x = rand((2, 3, 10, 9), seed=1)
    attrs = {"mode": mode, "coordinate_transformation_mode": ctm, "output_height": 3,
             "output_width": 4, "sampling_ratio": sampling_ratio, "spatial_scale": 1.0}
    check_op(backend, "RoiAlign", [x, ROIS, BATCH], attrs, rtol=1e-5, atol=1e-5)


def test_roi_align_scaled_float64(backend):
    x = rand((1, 2, 7, 11), np.float64, seed=2)
    rois = (ROIS[:3] * 2).astype(np.float64)
    attrs = {"output_height": 2, "output_width": 5, "spatial_scale": 0.5}
    check_op(backend, "RoiAlign", [x, rois, np.zeros(3, np.int64)], attrs)


def test_roi_align_no_rois(backend):
    x = rand((1, 2, 4, 4), seed=3)
    check_op(backend, "RoiAlign", [x, np.zeros((0, 4), np.float32), np.zeros(0, np.int64)])
