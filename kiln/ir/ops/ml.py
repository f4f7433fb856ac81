"""Classic machine learning (domain ai.onnx.ml): LabelEncoder, TreeEnsemble,
ArrayFeatureExtractor and Binarizer.
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import AttributeValueError, ExecutionError
from ..dtypes import DType
from ..opdef import FusionKind, InferContext
from ..types import TensorType
from .common import FLOAT, FLOATS, INT, INTS, STRING, STRINGS, TENSOR
from .registry import define

K = FusionKind
ML = "ai.onnx.ml"


# --- LabelEncoder ----------------------------------------------------------------------------

_KEY_KINDS = ("floats", "int64s", "strings", "tensor")
_LIST_DTYPES = {"floats": DType.float32, "int64s": DType.int64, "strings": DType.string}
_DEFAULTS = {"floats": "default_float", "int64s": "default_int64", "strings": "default_string"}


def _the_one(a, prefix: str, node) -> tuple[str, list, DType]:
    """The single keys_*/values_* attribute that is set: (kind, values, dtype)."""
    given = [k for k in _KEY_KINDS if a[f"{prefix}_{k}"] is not None]
    if len(given) != 1:
        raise AttributeValueError(
            f"LabelEncoder needs exactly one {prefix}_* attribute, got "
            f"{[f'{prefix}_{k}' for k in given] or 'none'}", node=node)
    kind = given[0]
    v = a[f"{prefix}_{kind}"]
    if kind == "tensor":
        if v.ndim != 1:
            raise AttributeValueError(f"{prefix}_tensor must be 1-D, got shape {list(v.shape)}",
                                      node=node)
        return kind, v.tolist(), DType.from_numpy(v.dtype)
    return kind, list(v), _LIST_DTYPES[kind]


def _keys_values(a, node):
    kk, keys, kdt = _the_one(a, "keys", node)
    vk, values, vdt = _the_one(a, "values", node)
    if len(keys) != len(values):
        raise AttributeValueError(f"{len(keys)} keys but {len(values)} values", node=node)
    return keys, kdt, vk, values, vdt


def _infer_label_encoder(ctx: InferContext):
    _, kdt, _, _, vdt = _keys_values(ctx.attrs, ctx.node)
    t = ctx.tensor(0)
    fits = (t.dtype == kdt or (kdt.is_float and t.dtype.is_float) or
            (kdt.is_int and t.dtype.is_int))
    if not fits:
        ctx.fail(f"the input is {t.dtype.short} but the keys are {kdt.short}",
                 hint="the input's element type must match the keys_* attribute")
    return [TensorType(vdt, t.shape)]


def _label_default(a, kind: str, vdt: DType):
    if kind != "tensor":
        return a[_DEFAULTS[kind]]
    if a.default_tensor is not None:
        v = a.default_tensor.reshape(-1)[0]
        return v.item() if isinstance(v, np.generic) else v
    return "_Unused" if vdt is DType.string else (-0.0 if vdt.is_float else -1)


def _run_label_encoder(ctx, x):
    keys, _, vkind, values, vdt = _keys_values(ctx.attrs, ctx.node)
    default = _label_default(ctx.attrs, vkind, vdt)
    if x.dtype != object:
        keys = np.asarray(keys, dtype=x.dtype).tolist()   # compare in the input's precision
    table = dict(zip(keys, values))                        # a repeated key: the last one wins
    nan_value = next((v for k, v in reversed(list(zip(keys, values)))
                      if isinstance(k, float) and math.isnan(k)), default)
    flat = x.reshape(-1).tolist()
    out = [nan_value if isinstance(e, float) and math.isnan(e) else table.get(e, default)
           for e in flat]
    arr = np.empty(len(out), dtype=vdt.np)
    arr[:] = out
    return arr.reshape(x.shape)


LabelEncoder = define(
    "LabelEncoder", ["X"], ["Y"], kind=K.ELEMENTWISE, domain=ML, since_version=4,
    attrs=[FLOATS("keys_floats", None), INTS("keys_int64s", None),
           STRINGS("keys_strings", None), TENSOR("keys_tensor", None),
           FLOATS("values_floats", None), INTS("values_int64s", None),
           STRINGS("values_strings", None), TENSOR("values_tensor", None),
           FLOAT("default_float", -0.0), INT("default_int64", -1),
           STRING("default_string", "_Unused"), TENSOR("default_tensor", None)],
    infer=_infer_label_encoder, reference=_run_label_encoder,
    doc="Maps each element through the keys_* -> values_* table (default_* when absent).")


# --- TreeEnsemble ----------------------------------------------------------------------------

_LEQ, _LT, _GTE, _GT, _EQ, _NEQ, _MEMBER = range(7)
_AVERAGE, _SUM, _MIN, _MAX = range(4)
_NONE, _SOFTMAX, _LOGISTIC, _SOFTMAX_ZERO, _PROBIT = range(5)
_NODE_ATTRS = ("nodes_featureids", "nodes_truenodeids", "nodes_falsenodeids",
               "nodes_trueleafs", "nodes_falseleafs")


class _Forest:
    """The nodes_*/leaf_* attributes as arrays, checked once."""

    def __init__(self, a, node=None):
        def fail(msg):
            raise AttributeValueError(msg, node=node, hint="check the tree's attributes")

        self.modes = np.asarray(a.nodes_modes).astype(np.int64).reshape(-1)
        self.splits = np.asarray(a.nodes_splits).astype(np.float64).reshape(-1)
        n = len(self.modes)
        for name in _NODE_ATTRS:
            if len(a[name]) != n:
                fail(f"{name} has {len(a[name])} entries; nodes_modes has {n}")
        if len(self.splits) != n:
            fail(f"nodes_splits has {len(self.splits)} entries; nodes_modes has {n}")
        if ((self.modes < 0) | (self.modes > _MEMBER)).any():
            fail(f"nodes_modes must be in [0, 6], got {sorted(set(self.modes.tolist()))}")
        self.feature = np.asarray(a.nodes_featureids, np.int64)
        self.true_id = np.asarray(a.nodes_truenodeids, np.int64)
        self.false_id = np.asarray(a.nodes_falsenodeids, np.int64)
        self.true_leaf = np.asarray(a.nodes_trueleafs, bool)
        self.false_leaf = np.asarray(a.nodes_falseleafs, bool)
        miss = a.nodes_missing_value_tracks_true
        self.nan_true = np.zeros(n, bool) if miss is None else np.asarray(miss, bool)
        if len(self.nan_true) != n:
            fail(f"nodes_missing_value_tracks_true has {len(self.nan_true)} entries, not {n}")
        self.weights = np.asarray(a.leaf_weights).astype(np.float64).reshape(-1)
        self.targets = np.asarray(a.leaf_targetids, np.int64)
        if len(self.weights) != len(self.targets):
            fail(f"leaf_weights has {len(self.weights)} entries; leaf_targetids "
                 f"{len(self.targets)}")
        self.n_targets = a.n_targets if a.n_targets is not None else \
            int(self.targets.max()) + 1 if len(self.targets) else 1
        if len(self.targets) and not (0 <= self.targets.min() and
                                      self.targets.max() < self.n_targets):
            fail(f"leaf_targetids must be in [0, {self.n_targets})")
        for ids, leaf in ((self.true_id, self.true_leaf), (self.false_id, self.false_leaf)):
            bound = np.where(leaf, len(self.weights), n)
            if ((ids < 0) | (ids >= bound)).any():
                fail("a nodes_truenodeids/nodes_falsenodeids entry is out of range")
        self.roots = np.asarray(a.tree_roots, np.int64)
        if ((self.roots < 0) | (self.roots >= n)).any():
            fail("a tree_roots entry is out of range")
        self.members = self._member_sets(a.membership_values, fail)

    def _member_sets(self, values, fail) -> dict[int, np.ndarray]:
        nodes = np.nonzero(self.modes == _MEMBER)[0].tolist()
        if not nodes:
            return {}
        if values is None:
            fail("BRANCH_MEMBER nodes need membership_values")
        flat = np.asarray(values).astype(np.float64).reshape(-1)
        groups, cur = [], []
        for v in flat.tolist():
            if math.isnan(v):
                groups.append(np.array(cur))
                cur = []
            else:
                cur.append(v)
        if cur:
            groups.append(np.array(cur))
        if len(groups) != len(nodes):
            fail(f"membership_values holds {len(groups)} sets for {len(nodes)} BRANCH_MEMBER "
                 f"nodes (sets are delimited by NaN)")
        return dict(zip(nodes, groups))

    def _goes_true(self, nodes: np.ndarray, v: np.ndarray) -> np.ndarray:
        m, s = self.modes[nodes], self.splits[nodes]
        out = np.select([m == _LEQ, m == _LT, m == _GTE, m == _GT, m == _EQ, m == _NEQ],
                        [v <= s, v < s, v >= s, v > s, v == s, v != s], False)
        for nd, members in self.members.items():
            at = nodes == nd
            if at.any():
                out[at] = np.isin(v[at], members)
        return out | (np.isnan(v) & self.nan_true[nodes])

    def leaves(self, x: np.ndarray, root: int) -> np.ndarray:
        """The leaf each row of x reaches in the tree rooted at `root`."""
        rows = x.shape[0]
        leaf = np.zeros(rows, np.int64)
        if self.true_leaf[root] and self.false_leaf[root] and \
                self.true_id[root] == self.false_id[root]:
            leaf[:] = self.true_id[root]        # a one-leaf tree
            return leaf
        node = np.full(rows, root, np.int64)
        live = np.arange(rows)
        for _ in range(len(self.modes) + 1):
            if not len(live):
                return leaf
            nd = node[live]
            go = self._goes_true(nd, x[live, self.feature[nd]])
            nxt = np.where(go, self.true_id[nd], self.false_id[nd])
            is_leaf = np.where(go, self.true_leaf[nd], self.false_leaf[nd])
            leaf[live[is_leaf]] = nxt[is_leaf]
            node[live[~is_leaf]] = nxt[~is_leaf]
            live = live[~is_leaf]
        raise ExecutionError("a tree has a cycle: a path never reaches a leaf")


def _infer_tree_ensemble(ctx: InferContext):
    forest = _Forest(ctx.attrs, ctx.node)
    t = ctx.tensor(0)
    if t.dtype not in (DType.float32, DType.float64, DType.float16):
        ctx.fail(f"TreeEnsemble takes f32, f64 or f16 features, got {t.dtype.short}")
    if t.rank is not None and t.rank != 2:
        ctx.fail(f"TreeEnsemble takes [N, F] features, got rank {t.rank}")
    n = None if t.shape is None else t.shape[0]
    return [TensorType(t.dtype, (n, forest.n_targets))]


def _run_tree_ensemble(ctx, x):
    a = ctx.attrs
    forest = _Forest(a, ctx.node)
    if x.ndim != 2:
        raise ExecutionError(f"TreeEnsemble takes [N, F] features, got shape {list(x.shape)}")
    if len(forest.feature) and forest.feature.max() >= x.shape[1]:
        raise ExecutionError(f"a node reads feature {int(forest.feature.max())} but X has "
                             f"{x.shape[1]} features")
    xf = x.astype(np.float64)
    rows = np.arange(x.shape[0])
    score = np.zeros((x.shape[0], forest.n_targets))
    seen = np.zeros(score.shape, bool)
    fold = {_MIN: np.minimum, _MAX: np.maximum}.get(a.aggregate_function)
    for root in forest.roots.tolist():
        leaf = forest.leaves(xf, root)
        w, t = forest.weights[leaf], forest.targets[leaf]
        if fold is None:
            np.add.at(score, (rows, t), w)
        else:
            first = ~seen[rows, t]
            score[rows[first], t[first]] = w[first]
            seen[rows, t] = True
            fold.at(score, (rows, t), w)
    if a.aggregate_function == _AVERAGE and len(forest.roots):
        score /= len(forest.roots)
    return _post_transform(score, a.post_transform).astype(x.dtype)


def _post_transform(s: np.ndarray, kind: int) -> np.ndarray:
    if kind == _SOFTMAX:
        e = np.exp(s - s.max(axis=1, keepdims=True, initial=-np.inf))
        return e / e.sum(axis=1, keepdims=True)
    if kind == _SOFTMAX_ZERO:                     # softmax over the non-zero scores only
        nz = s != 0
        top = np.where(nz, s, -np.inf).max(axis=1, keepdims=True, initial=-np.inf)
        e = np.where(nz, np.exp(s - np.where(np.isfinite(top), top, 0)), 0)
        total = e.sum(axis=1, keepdims=True)
        return np.divide(e, total, out=np.zeros_like(e), where=total > 0)
    if kind == _LOGISTIC:
        return 1 / (1 + np.exp(-s))
    if kind == _PROBIT:
        return math.sqrt(2) * _erfinv(2 * s - 1)
    return s


def _erfinv(y: np.ndarray) -> np.ndarray:
    """Inverse error function: Winitzki's approximation polished by Newton steps on math.erf."""
    y = np.clip(y, -1.0, 1.0)
    a = 0.147
    erf = np.vectorize(math.erf, otypes=[np.float64])
    inner = np.abs(y) < 1
    with np.errstate(divide="ignore", invalid="ignore"):     # y = +-1 maps to +-inf
        ln = np.log1p(-y * y)
        t = 2 / (math.pi * a) + ln / 2
        x = np.sign(y) * np.sqrt(np.sqrt(t * t - ln / a) - t)
        for _ in range(3):
            step = (erf(x) - y) / (2 / math.sqrt(math.pi) * np.exp(-x * x))
            x = np.where(inner, x - step, x)
    return x


TreeEnsemble = define(
    "TreeEnsemble", ["X"], ["Y"], kind=K.OPAQUE, domain=ML, since_version=5,
    attrs=[INTS("tree_roots"), TENSOR("nodes_modes"), TENSOR("nodes_splits"),
           INTS("nodes_featureids"), INTS("nodes_truenodeids"), INTS("nodes_falsenodeids"),
           INTS("nodes_trueleafs"), INTS("nodes_falseleafs"), INTS("leaf_targetids"),
           TENSOR("leaf_weights"), INT("n_targets", None), TENSOR("nodes_hitrates", None),
           INTS("nodes_missing_value_tracks_true", None), TENSOR("membership_values", None),
           INT("aggregate_function", _SUM, choices=(_AVERAGE, _SUM, _MIN, _MAX)),
           INT("post_transform", _NONE, choices=(_NONE, _SOFTMAX, _LOGISTIC, _SOFTMAX_ZERO,
                                                  _PROBIT))],
    infer=_infer_tree_ensemble, reference=_run_tree_ensemble,
    doc="Evaluates a forest of decision trees on each row of X[N, F]; the leaves each tree "
        "reaches are aggregated per target into Y[N, n_targets].")


# --- ArrayFeatureExtractor and Binarizer -----------------------------------------------------

_FEATURE_DTYPES = (DType.float32, DType.float64, DType.int64, DType.int32, DType.string)


def _infer_extract(ctx: InferContext):
    x, y = ctx.tensor(0), ctx.tensor(1)
    if x.dtype not in _FEATURE_DTYPES:
        ctx.fail(f"ArrayFeatureExtractor does not take {x.dtype.short} data")
    if y.dtype is not DType.int64:
        ctx.fail(f"the indices must be i64, got {y.dtype.short}")
    if x.rank == 0:
        ctx.fail("the data must have rank >= 1")
    count = y.numel()
    if x.shape is None:
        return [TensorType(x.dtype, None)]
    lead = (1,) if len(x.shape) == 1 else x.shape[:-1]
    return [TensorType(x.dtype, (*lead, count))]


def _run_extract(ctx, x, y):
    idx = y.reshape(-1)
    size = x.shape[-1]
    if ((idx < 0) | (idx >= size)).any():
        raise ExecutionError(f"indices {idx.tolist()} are out of range for a last axis of {size}",
                             hint=f"indices must be in [0, {size - 1}]")
    out = x[..., idx]
    return out.reshape(1, -1) if x.ndim == 1 else out


ArrayFeatureExtractor = define(
    "ArrayFeatureExtractor", ["X", "Y"], ["Z"], kind=K.INJECTIVE, domain=ML, since_version=1,
    infer=_infer_extract, reference=_run_extract,
    doc="Selects the columns Y (flattened) of X's last axis; a 1-D X gives a [1, k] result.")


def _infer_binarizer(ctx: InferContext):
    t = ctx.tensor(0)
    if t.dtype not in (DType.float32, DType.float64, DType.int64, DType.int32):
        ctx.fail(f"Binarizer takes f32, f64, i64 or i32, got {t.dtype.short}")
    return [t]


Binarizer = define(
    "Binarizer", ["X"], ["Y"], kind=K.ELEMENTWISE, domain=ML, since_version=1,
    attrs=[FLOAT("threshold", 0.0)], infer=_infer_binarizer,
    reference=lambda ctx, x: (x > ctx.attrs.threshold).astype(x.dtype),
    doc="Y = 1 where X > threshold, else 0 (in X's type).")
