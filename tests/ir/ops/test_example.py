import numpy as np
import pytest

from tests.ir.ops.harness import check_op

rng = np.random.default_rng(0)


@pytest.mark.parametrize("shape_a,shape_b", [((3, 4), (4,)), ((), ()), ((0, 3), (1, 3)), ((2, 1, 5), (7, 1))])
def test_add_broadcasts(shape_a, shape_b):
    check_op("Add", [rng.standard_normal(shape_a).astype(np.float32),
                     rng.standard_normal(shape_b).astype(np.float32)])


def test_leaky_relu_default_alpha():
    check_op("LeakyRelu", [rng.standard_normal((5, 7)).astype(np.float32)])
