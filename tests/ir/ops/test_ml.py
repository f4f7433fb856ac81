"""ai.onnx.ml ops: LabelEncoder, TreeEnsemble, ArrayFeatureExtractor and Binarizer."""

import math

import numpy as np
import pytest

from kiln.errors import AttributeValueError, ExecutionError, TypeInferenceError
from kiln.ir import DType, GraphBuilder, tensor
from kiln.ir.ops.ml import _erfinv
from tests.ir.ops.harness import check_op, run_kiln, run_onnx

rng = np.random.default_rng(0)
ML = "ai.onnx.ml"


def strings(*values):
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def check_any(op, inputs, attrs, rtol=1e-6):
    """kiln vs onnx.reference, reading string results as lists (the reference returns <U)."""
    (got,) = run_kiln(op, inputs, attrs)
    (want,) = run_onnx(op, inputs, attrs, domain=ML)
    want = np.asarray(want)
    assert got.shape == want.shape
    if want.dtype.kind in "UO":
        assert got.dtype == object and got.tolist() == want.tolist()
    else:
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=rtol, equal_nan=True)
    return got


# --- LabelEncoder ----------------------------------------------------------------------------

@pytest.mark.parametrize("x,attrs", [
    (strings("a", "b", "zz", "c"), dict(keys_strings=["a", "b", "c"], values_int64s=[1, 2, 3])),
    (strings("a", "q"), dict(keys_strings=["a"], values_int64s=[7], default_int64=-5)),
    (np.array([[1, 5], [7, 1]], np.int64), dict(keys_int64s=[1, 7], values_strings=["x", "y"],
                                                default_string="?")),
    (np.array([1.5, 2.0, -0.0], np.float32), dict(keys_floats=[1.5, 2.0],
                                                   values_floats=[10.0, 20.0])),
    (np.array([0.1, 0.2], np.float32), dict(keys_floats=[0.1], values_int64s=[4])),
    (np.array([3, 4, 5], np.int64), dict(keys_tensor=np.array([3, 4], np.int64),
                                         values_tensor=np.array([0.5, 1.5], np.float32),
                                         default_tensor=np.array([9.0], np.float32))),
    (np.array([3, 4, 5], np.int32), dict(keys_tensor=np.array([3, 4], np.int32),
                                         values_tensor=np.array([1, 2], np.int16),
                                         default_tensor=np.array([-7], np.int16))),
    (np.array([3.0, 4.0], np.float64), dict(keys_tensor=np.array([4.0]),
                                            values_tensor=strings("four"),
                                            default_tensor=strings("none"))),
    (np.zeros((0, 3), np.int64), dict(keys_int64s=[1], values_floats=[1.0])),
    (np.array(5, np.int64), dict(keys_int64s=[5], values_floats=[2.5])),
])
def test_label_encoder(x, attrs):
    check_any("LabelEncoder", [x], attrs)


def test_label_encoder_defaults_nan_keys_and_repeats():
    (y,) = run_kiln("LabelEncoder", [np.array([np.nan, 1.0, 2.0], np.float32)],
                    dict(keys_floats=[float("nan"), 1.0, 1.0], values_int64s=[9, 3, 4]))
    assert y.tolist() == [9, 4, -1]                     # NaN matches NaN; the last key wins
    (y,) = run_kiln("LabelEncoder", [np.array([1, 2], np.int64)],
                    dict(keys_int64s=[1], values_strings=["one"]))
    assert y.tolist() == ["one", "_Unused"]
    (y,) = run_kiln("LabelEncoder", [np.array([1, 2], np.int64)],
                    dict(keys_tensor=np.array([1]), values_tensor=np.array([1.0], np.float32)))
    assert y.dtype == np.float32 and y[1] == 0 and math.copysign(1, y[1]) < 0     # -0.0


def test_label_encoder_errors():
    with pytest.raises(AttributeValueError, match="exactly one keys_"):
        run_kiln("LabelEncoder", [np.array([1])], dict(values_int64s=[1]))
    with pytest.raises(AttributeValueError, match="exactly one values_"):
        run_kiln("LabelEncoder", [np.array([1])], dict(keys_int64s=[1], values_int64s=[1],
                                                         values_floats=[1.0]))
    with pytest.raises(AttributeValueError, match="2 keys but 1 values"):
        run_kiln("LabelEncoder", [np.array([1])], dict(keys_int64s=[1, 2], values_int64s=[1]))
    with pytest.raises(TypeInferenceError, match="keys are"):
        run_kiln("LabelEncoder", [strings("a")], dict(keys_int64s=[1], values_int64s=[1]))


# --- TreeEnsemble ----------------------------------------------------------------------------

def random_forest(n_trees, n_features, n_targets, depth=3, seed=0):
    """TreeEnsemble attributes for random trees (every mode, BRANCH_MEMBER sets, NaN routing)."""
    r = np.random.default_rng(seed)
    nodes = {k: [] for k in ("modes", "splits", "feat", "tid", "fid", "tleaf", "fleaf", "miss")}
    leaf_w, leaf_t, members, roots = [], [], [], []

    def leaf():
        leaf_w.append(float(np.float32(r.standard_normal())))
        leaf_t.append(int(r.integers(n_targets)))
        return len(leaf_w) - 1

    def build(d):
        i = len(nodes["modes"])
        mode = int(r.integers(0, 7))
        for k in nodes:
            nodes[k].append(0)
        nodes["modes"][i] = mode
        nodes["feat"][i] = int(r.integers(n_features))
        nodes["miss"][i] = int(r.integers(2))
        if mode == 6:
            nodes["splits"][i] = 0.0
            # (no 0.0: onnx.reference ends a set at a falsy member)
            members.extend(r.choice([-2.0, -1.0, 1.0, 2.0], r.integers(1, 4), replace=False))
            members.append(float("nan"))
        else:
            nodes["splits"][i] = float(r.integers(-2, 3)) + (0.5 if r.random() < 0.5 else 0.0)
        for side in ("t", "f"):
            if d == 0 or r.random() < 0.3:
                nodes[f"{side}id"][i], nodes[f"{side}leaf"][i] = leaf(), 1
            else:
                nodes[f"{side}id"][i], nodes[f"{side}leaf"][i] = build(d - 1), 0
        return i

    for _ in range(n_trees):
        roots.append(build(depth))
    attrs = dict(
        tree_roots=roots, nodes_modes=np.array(nodes["modes"], np.uint8),
        nodes_splits=np.array(nodes["splits"], np.float32), nodes_featureids=nodes["feat"],
        nodes_truenodeids=nodes["tid"], nodes_falsenodeids=nodes["fid"],
        nodes_trueleafs=nodes["tleaf"], nodes_falseleafs=nodes["fleaf"],
        nodes_missing_value_tracks_true=nodes["miss"], leaf_targetids=leaf_t,
        leaf_weights=np.array(leaf_w, np.float32), n_targets=n_targets)
    if members:
        attrs["membership_values"] = np.array(members, np.float32)
    return attrs


def features(n, f, dtype=np.float32, seed=1):
    r = np.random.default_rng(seed)
    x = r.integers(-2, 3, (n, f)).astype(dtype)
    x[r.random((n, f)) < 0.1] = np.nan
    return x


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("aggregate", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tree_ensemble_sum_and_average(seed, aggregate, dtype):
    attrs = random_forest(5, 3, 2, seed=seed)
    attrs["aggregate_function"] = aggregate
    if dtype is np.float64:
        for k in ("nodes_splits", "leaf_weights", "membership_values"):
            if k in attrs:
                attrs[k] = attrs[k].astype(np.float64)
    check_op("TreeEnsemble", [features(13, 3, dtype, seed)], attrs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("aggregate", [2, 3])
def test_tree_ensemble_min_max(aggregate):
    attrs = random_forest(4, 3, 1, seed=5)         # one target: every tree reaches it
    attrs["aggregate_function"] = aggregate
    check_op("TreeEnsemble", [features(11, 3)], attrs)


def test_tree_ensemble_single_leaf_tree_and_empty_batch():
    attrs = dict(tree_roots=[0], nodes_modes=np.array([0], np.uint8),
                 nodes_splits=np.array([0.0], np.float32), nodes_featureids=[0],
                 nodes_truenodeids=[0], nodes_falsenodeids=[0], nodes_trueleafs=[1],
                 nodes_falseleafs=[1], leaf_targetids=[1], leaf_weights=np.array([2.5], np.float32),
                 n_targets=3)
    (y,) = check_op("TreeEnsemble", [np.ones((2, 4), np.float32)], attrs)
    assert y.tolist() == [[0, 2.5, 0], [0, 2.5, 0]]
    (y,) = run_kiln("TreeEnsemble", [np.ones((0, 4), np.float32)], attrs)
    assert y.shape == (0, 3)
    # n_targets defaults to one past the largest target id
    (y,) = run_kiln("TreeEnsemble", [np.ones((1, 4), np.float32)],
                    {k: v for k, v in attrs.items() if k != "n_targets"})
    assert y.shape == (1, 2)


def test_tree_ensemble_post_transforms():
    attrs = random_forest(6, 3, 4, seed=3)
    x = features(9, 3)
    (raw,) = run_kiln("TreeEnsemble", [x], attrs)
    s = raw.astype(np.float64)

    def post(kind):
        return run_kiln("TreeEnsemble", [x], {**attrs, "post_transform": kind})[0]

    e = np.exp(s - s.max(axis=1, keepdims=True))
    np.testing.assert_allclose(post(1), e / e.sum(axis=1, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(post(2), 1 / (1 + np.exp(-s)), rtol=1e-5)
    ez = np.where(s != 0, np.exp(s - np.where(s != 0, s, -np.inf).max(axis=1, keepdims=True)), 0)
    np.testing.assert_allclose(post(3), ez / ez.sum(axis=1, keepdims=True), rtol=1e-5)
    p = np.clip(s, 0.01, 0.99)
    want = np.sqrt(2) * _erfinv(2 * p - 1)
    back = np.vectorize(math.erf)(want / np.sqrt(2))
    np.testing.assert_allclose(back, 2 * p - 1, atol=1e-12)


def test_erfinv_inverts_erf():
    y = np.linspace(-0.999, 0.999, 41)
    np.testing.assert_allclose(np.vectorize(math.erf)(_erfinv(y)), y, atol=1e-13)
    assert np.isinf(_erfinv(np.array([1.0]))[0])


def test_tree_ensemble_types_and_errors():
    attrs = random_forest(2, 3, 2)
    b = GraphBuilder("t")
    y = b.TreeEnsemble(b.input("x", tensor(DType.float32, "n", 3)), **attrs)
    assert y.type == tensor(DType.float32, "n", 2)
    with pytest.raises(TypeInferenceError, match="f32, f64 or f16"):
        run_kiln("TreeEnsemble", [np.ones((2, 3), np.int64)], attrs)
    with pytest.raises(TypeInferenceError, match="rank 1"):
        run_kiln("TreeEnsemble", [np.ones(3, np.float32)], attrs)
    with pytest.raises(AttributeValueError, match="nodes_featureids has"):
        run_kiln("TreeEnsemble", [np.ones((2, 3), np.float32)],
                 {**attrs, "nodes_featureids": attrs["nodes_featureids"][:-1]})
    with pytest.raises(AttributeValueError, match="leaf_targetids must be in"):
        run_kiln("TreeEnsemble", [np.ones((2, 3), np.float32)], {**attrs, "n_targets": 1})
    with pytest.raises(AttributeValueError, match="aggregate_function"):
        run_kiln("TreeEnsemble", [np.ones((2, 3), np.float32)], {**attrs, "aggregate_function": 7})
    member = dict(tree_roots=[0], nodes_modes=np.array([6], np.uint8),
                  nodes_splits=np.array([0.0], np.float32), nodes_featureids=[0],
                  nodes_truenodeids=[0], nodes_falsenodeids=[1], nodes_trueleafs=[1],
                  nodes_falseleafs=[1], leaf_targetids=[0, 0],
                  leaf_weights=np.array([1.0, 2.0], np.float32))
    with pytest.raises(AttributeValueError, match="membership_values"):
        run_kiln("TreeEnsemble", [np.ones((1, 1), np.float32)], member)
    (y,) = run_kiln("TreeEnsemble", [np.array([[3.0], [4.0]], np.float32)],
                    {**member, "membership_values": np.array([1, 3, np.nan], np.float32)})
    assert y[:, 0].tolist() == [1.0, 2.0]
    with pytest.raises(ExecutionError, match="feature"):
        run_kiln("TreeEnsemble", [np.ones((2, 1), np.float32)], attrs)


# --- ArrayFeatureExtractor -------------------------------------------------------------------

@pytest.mark.parametrize("x,y", [
    (rng.standard_normal((3, 5)).astype(np.float32), np.array([0, 4, 2])),
    (rng.standard_normal((2, 3, 7)), np.array([[6, 0]])),
    (rng.integers(0, 9, (5,)).astype(np.int64), np.array([1, 1, 3])),
    (rng.integers(0, 9, (4, 2)).astype(np.int32), np.array([], np.int64)),
    (np.arange(6).reshape(2, 3).astype(np.int32).astype(str).astype(object), np.array([2])),
])
def test_array_feature_extractor(x, y):
    check_any("ArrayFeatureExtractor", [x, y.astype(np.int64)], {})


def test_array_feature_extractor_types_and_errors():
    b = GraphBuilder("t")
    z = b.ArrayFeatureExtractor(b.input("x", tensor(DType.float32, "n", 7)),
                                b.input("y", tensor(DType.int64, 1, 3)))
    assert z.type == tensor(DType.float32, "n", 3)
    with pytest.raises(ExecutionError, match="out of range"):
        run_kiln("ArrayFeatureExtractor", [np.ones((2, 3), np.float32), np.array([3])])
    with pytest.raises(ExecutionError, match="out of range"):
        run_kiln("ArrayFeatureExtractor", [np.ones((2, 3), np.float32), np.array([-1])])
    with pytest.raises(TypeInferenceError, match="i64"):
        run_kiln("ArrayFeatureExtractor", [np.ones((2, 3), np.float32), np.array([0], np.int32)])
    with pytest.raises(TypeInferenceError, match="rank >= 1"):
        run_kiln("ArrayFeatureExtractor", [np.float32(1), np.array([0])])


# --- Binarizer -------------------------------------------------------------------------------

@pytest.mark.parametrize("x", [
    rng.standard_normal((3, 7)).astype(np.float32), rng.standard_normal(5),
    rng.integers(-3, 3, (2, 5)).astype(np.int64), rng.integers(-3, 3, (11,)).astype(np.int32),
    np.float32(0.5), np.zeros((0, 3), np.float32),
    np.array([np.nan, -np.inf, np.inf], np.float32),
])
@pytest.mark.parametrize("threshold", [None, 0.25, -1.0])
def test_binarizer(x, threshold):
    attrs = {} if threshold is None else {"threshold": threshold}
    (y,) = check_op("Binarizer", [x], attrs)
    assert y.dtype == np.asarray(x).dtype


def test_binarizer_rejects_other_dtypes():
    with pytest.raises(TypeInferenceError, match="Binarizer takes"):
        run_kiln("Binarizer", [np.ones(3, np.uint8)])
