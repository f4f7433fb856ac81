"""TreeEnsemble against the Graph IR interpreter: random forests using every node mode,
BRANCH_MEMBER sets and NaN routing; sum, average, min and max; every post transform; f32, f64,
f16 features; a one-leaf tree, an empty batch, a symbolic batch; a cycle is a LoweringError."""

import numpy as np
import pytest

from kiln.errors import LoweringError
from kiln.lowering import lower_graph
from tests.ir.ops.test_ml import features, random_forest

from .harness import check_op, one_node_graph


def forest(dtype, seed, **extra):
    attrs = random_forest(5, 3, 3, seed=seed)
    if dtype == np.float64:
        for k in ("nodes_splits", "leaf_weights", "membership_values"):
            if k in attrs:
                attrs[k] = attrs[k].astype(np.float64)
    return {**attrs, **extra}


@pytest.mark.parametrize("seed,aggregate,dtype", [
    (0, 0, np.float32), (1, 1, np.float32), (2, 2, np.float64), (0, 3, np.float32),
    (1, 1, np.float64), (2, 0, np.float32)])
def test_tree_ensemble_aggregates(backend, seed, aggregate, dtype):
    attrs = forest(dtype, seed, aggregate_function=aggregate)
    check_op(backend, "TreeEnsemble", [features(13, 3, dtype, seed)], attrs, rtol=1e-5,
             atol=1e-6)


@pytest.mark.parametrize("post", [1, 2, 3, 4])
def test_tree_ensemble_post_transforms(backend, post):
    attrs = forest(np.float32, 3, post_transform=post)
    x = features(9, 3)
    if post == 4:                       # probit of scores in (0, 1)
        attrs["leaf_weights"] = np.abs(attrs["leaf_weights"]) / 20 + 0.01
    check_op(backend, "TreeEnsemble", [x], attrs, rtol=1e-5, atol=1e-5)


def test_tree_ensemble_float16(backend):
    check_op(backend, "TreeEnsemble", [features(7, 3, np.float16, 4)], forest(np.float32, 4))


ONE_LEAF = dict(tree_roots=[0], nodes_modes=np.array([0], np.uint8),
                nodes_splits=np.array([0.0], np.float32), nodes_featureids=[0],
                nodes_truenodeids=[0], nodes_falsenodeids=[0], nodes_trueleafs=[1],
                nodes_falseleafs=[1], leaf_targetids=[1],
                leaf_weights=np.array([2.5], np.float32), n_targets=3)


@pytest.mark.parametrize("rows", [2, 0])
def test_tree_ensemble_one_leaf_tree(backend, rows):
    check_op(backend, "TreeEnsemble", [np.ones((rows, 4), np.float32)], ONE_LEAF)


def test_tree_ensemble_symbolic_batch(backend):
    check_op(backend, "TreeEnsemble", [features(6, 3, np.float32, 8)], forest(np.float32, 8),
             dims={0: ("n", 3)}, rtol=1e-5, atol=1e-6)


def test_tree_ensemble_cycle_is_a_lowering_error():
    attrs = dict(ONE_LEAF, nodes_modes=np.array([0, 0], np.uint8),
                 nodes_splits=np.array([0.0, 0.0], np.float32), nodes_featureids=[0, 0],
                 nodes_truenodeids=[1, 0], nodes_falsenodeids=[0, 0], nodes_trueleafs=[0, 0],
                 nodes_falseleafs=[1, 1])
    graph, _ = one_node_graph("TreeEnsemble", [np.ones((1, 2), np.float32)], attrs)
    with pytest.raises(LoweringError, match="cycle"):
        lower_graph(graph)
