"""Col2Im against the Graph IR interpreter: strides, pads, dilations, 1-D and 3-D images."""

import numpy as np
import pytest

from .harness import check_op, rand

I64 = np.int64


def _cols(n, c, image, block, strides, pads, dil, seed):
    nd = len(image)
    counts = [(image[i] + pads[i] + pads[i + nd] - dil[i] * (block[i] - 1) - 1) // strides[i] + 1
              for i in range(nd)]
    return rand((n, c * int(np.prod(block)), int(np.prod(counts))), seed=seed)


@pytest.mark.parametrize("image,block,strides,pads,dil", [
    ((5, 5), (2, 2), (1, 1), (0, 0, 0, 0), (1, 1)),
    ((7, 5), (3, 2), (2, 1), (1, 0, 1, 2), (1, 2)),
    ((6, 7), (2, 3), (3, 2), (0, 1, 2, 0), (2, 1)),
    ((11,), (3,), (2,), (1, 1), (1,)),
    ((3, 4, 5), (2, 1, 2), (1, 2, 1), (0, 0, 1, 1, 0, 0), (1, 1, 2)),
])
def test_col2im(backend, image, block, strides, pads, dil):
    x = _cols(2, 3, image, block, strides, pads, dil, seed=1)
    check_op(backend, "Col2Im", [x, np.array(image, I64), np.array(block, I64)],
             {"strides": strides, "pads": pads, "dilations": dil}, consts=[1, 2])


def test_col2im_defaults(backend):
    x = _cols(1, 1, (4, 3), (2, 2), (1, 1), (0, 0, 0, 0), (1, 1), seed=2)
    check_op(backend, "Col2Im", [x, np.array([4, 3], I64), np.array([2, 2], I64)], consts=[1, 2])
