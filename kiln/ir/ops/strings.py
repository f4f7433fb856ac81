"""String ops: StringNormalizer, StringConcat, StringSplit, RegexFullMatch, TfIdfVectorizer.

String tensors are NumPy object arrays of Python str (DType.string).
"""

from __future__ import annotations

import re

import numpy as np

from ...errors import AttributeValueError, ExecutionError
from ..dtypes import DType
from ..opdef import FusionKind, InferContext
from ..shapes import broadcast_shapes
from ..types import TensorType
from .common import INT, INTS, FLOATS, STRING, STRINGS
from .registry import define

K = FusionKind


def _string_input(ctx: InferContext, i: int) -> TensorType:
    t = ctx.tensor(i)
    if t.dtype is not DType.string:
        ctx.fail(f"input {i} must be a string tensor, got {t.dtype.short}")
    return t


def _strings(shape, values) -> np.ndarray:
    """An object array of the given shape holding `values` (a flat list of str)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out.reshape(shape)


# --- StringConcat ----------------------------------------------------------------------------

def _infer_concat(ctx: InferContext):
    a, b = _string_input(ctx, 0), _string_input(ctx, 1)
    return [TensorType(DType.string, broadcast_shapes(a.shape, b.shape, node=ctx.node))]


def _run_concat(ctx, x, y):
    x, y = np.broadcast_arrays(x, y)
    return _strings(x.shape, [a + b for a, b in zip(x.reshape(-1), y.reshape(-1))])


StringConcat = define(
    "StringConcat", ["X", "Y"], ["Z"], kind=K.BROADCAST, since_version=20,
    infer=_infer_concat, reference=_run_concat,
    doc="Z = X + Y elementwise on strings, with broadcasting.")


# --- StringSplit -----------------------------------------------------------------------------

def _infer_split(ctx: InferContext):
    t = _string_input(ctx, 0)
    shape = None if t.shape is None else (*t.shape, None)
    return [TensorType(DType.string, shape), TensorType(DType.int64, t.shape)]


def _run_split(ctx, x):
    sep = ctx.attrs.delimiter or None          # unset or "": split on runs of whitespace
    maxsplit = ctx.attrs.maxsplit
    maxsplit = -1 if maxsplit is None or maxsplit < 0 else maxsplit
    pieces = [str(s).split(sep, maxsplit) for s in x.reshape(-1)]
    counts = np.array([len(p) for p in pieces], np.int64).reshape(x.shape)
    width = max((len(p) for p in pieces), default=0)
    y = np.empty((len(pieces), width), dtype=object)
    for row, p in zip(y, pieces):
        row[:] = p + [""] * (width - len(p))
    return y.reshape(*x.shape, width), counts


StringSplit = define(
    "StringSplit", ["X"], ["Y", "Z"], kind=K.OPAQUE, since_version=20,
    attrs=[STRING("delimiter", None), INT("maxsplit", None)],
    infer=_infer_split, reference=_run_split,
    doc="Splits each string on delimiter (whitespace runs when unset); Y pads with \"\", Z counts.")


# --- RegexFullMatch --------------------------------------------------------------------------

# ONNX specifies RE2 syntax; kiln runs Python's `re`. The common subset (classes, groups,
# repetition, anchors, alternation, (?i) flags, (?P<name>...)) behaves the same. Differences:
# `\z` (RE2's end of text) is rewritten to Python's `\Z`; RE2's `\pL`-style Unicode classes and
# `[[:alpha:]]` POSIX classes are not understood by `re`; and `re` accepts backreferences and
# lookaround, which RE2 rejects. RE2 also guarantees linear time, `re` does not.
_RE2_END = re.compile(r"(?<!\\)((?:\\\\)*)\\z")


def _compile(ctx_or_node, pattern: str) -> re.Pattern:
    node = getattr(ctx_or_node, "node", None)
    try:
        return re.compile(_RE2_END.sub(r"\1\\Z", pattern))
    except re.error as e:
        raise AttributeValueError(f"pattern {pattern!r} is not a valid regular expression: {e}",
                                  node=node) from None


def _infer_regex(ctx: InferContext):
    t = _string_input(ctx, 0)
    if ctx.attrs.pattern is None:
        raise AttributeValueError("RegexFullMatch needs the 'pattern' attribute", node=ctx.node)
    _compile(ctx, ctx.attrs.pattern)
    return [TensorType(DType.bool, t.shape)]


def _run_regex(ctx, x):
    rx = _compile(ctx, ctx.attrs.pattern)
    flat = [rx.fullmatch(str(s)) is not None for s in x.reshape(-1)]
    return np.array(flat, dtype=np.bool_).reshape(x.shape)


RegexFullMatch = define(
    "RegexFullMatch", ["X"], ["Y"], kind=K.ELEMENTWISE, since_version=20,
    attrs=[STRING("pattern", None)], infer=_infer_regex, reference=_run_regex,
    doc="Y is true where the whole string matches pattern (Python re; see the RE2 notes).")


# --- StringNormalizer ------------------------------------------------------------------------

def _infer_normalizer(ctx: InferContext):
    t = _string_input(ctx, 0)
    if t.shape is not None and (len(t.shape) not in (1, 2) or
                                (len(t.shape) == 2 and isinstance(t.shape[0], int) and
                                 t.shape[0] != 1)):
        ctx.fail(f"StringNormalizer takes a [C] or [1, C] tensor, got {list(t.shape)}")
    if ctx.attrs.stopwords:
        # stop words may remove elements: the last dimension is not known
        return [TensorType(DType.string, None if t.shape is None else (*t.shape[:-1], None))]
    return [t]


def _run_normalizer(ctx, x):
    a = ctx.attrs
    if x.ndim not in (1, 2) or (x.ndim == 2 and x.shape[0] != 1):
        raise ExecutionError(f"StringNormalizer takes a [C] or [1, C] tensor, got {list(x.shape)}")
    words = [str(s) for s in x.reshape(-1)]
    if a.stopwords:
        if a.is_case_sensitive:
            stops = set(a.stopwords)
            words = [w for w in words if w not in stops]
        else:
            stops = {s.lower() for s in a.stopwords}
            words = [w for w in words if w.lower() not in stops]
    if a.case_change_action == "LOWER":
        words = [w.lower() for w in words]
    elif a.case_change_action == "UPPER":
        words = [w.upper() for w in words]
    if not words:
        words = [""]
    out = _strings((len(words),), words)
    return out if x.ndim == 1 else out.reshape(1, -1)


StringNormalizer = define(
    "StringNormalizer", ["X"], ["Y"], kind=K.OPAQUE, since_version=10,
    attrs=[STRING("case_change_action", "NONE", choices=("NONE", "LOWER", "UPPER")),
           INT("is_case_sensitive", 0, choices=(0, 1)), STRING("locale", None),
           STRINGS("stopwords", None)],
    infer=_infer_normalizer, reference=_run_normalizer,
    doc="Drops the elements equal to a stop word, then lower/upper-cases the rest "
        "(Unicode case rules; locale is not consulted).")


# --- TfIdfVectorizer -------------------------------------------------------------------------

def _ngram_table(a) -> dict[tuple, int]:
    """Each pooled n-gram (as a tuple) -> its output column, for lengths in [min, max]."""
    pool = list(a.pool_int64s if a.pool_int64s is not None else a.pool_strings)
    starts = list(a.ngram_counts) + [len(pool)]
    table: dict[tuple, int] = {}
    gram = 0                                     # running index of the n-gram in the pool
    for size, (lo, hi) in enumerate(zip(starts, starts[1:]), start=1):
        for s in range(lo, hi - size + 1, size):
            if a.min_gram_length <= size <= a.max_gram_length:
                table[tuple(pool[s:s + size])] = a.ngram_indexes[gram]   # a repeat: last wins
            gram += 1
    return table


def _check_tfidf_attrs(a, node) -> None:
    if (a.pool_int64s is None) == (a.pool_strings is None):
        raise AttributeValueError("TfIdfVectorizer needs exactly one of pool_int64s and "
                                  "pool_strings", node=node)
    if not 1 <= a.min_gram_length <= a.max_gram_length or a.max_skip_count < 0:
        raise AttributeValueError(
            f"need 1 <= min_gram_length ({a.min_gram_length}) <= max_gram_length "
            f"({a.max_gram_length}) and max_skip_count >= 0 ({a.max_skip_count})", node=node)
    if not a.ngram_indexes or min(a.ngram_indexes) < 0:
        raise AttributeValueError("ngram_indexes must be non-empty and non-negative", node=node)
    if a.weights is not None and len(a.weights) != len(a.ngram_indexes):
        raise AttributeValueError(f"weights has {len(a.weights)} entries; ngram_indexes has "
                                  f"{len(a.ngram_indexes)}", node=node)


def _infer_tfidf(ctx: InferContext):
    a = ctx.attrs
    _check_tfidf_attrs(a, ctx.node)
    t = ctx.tensor(0)
    want = DType.string if a.pool_strings is not None else None
    if want is DType.string and t.dtype is not DType.string:
        ctx.fail(f"pool_strings needs a string input, got {t.dtype.short}")
    if want is None and t.dtype not in (DType.int32, DType.int64):
        ctx.fail(f"pool_int64s needs an i32 or i64 input, got {t.dtype.short}")
    if t.rank is not None and t.rank not in (1, 2):
        ctx.fail(f"TfIdfVectorizer takes a [C] or [N, C] tensor, got rank {t.rank}")
    width = max(a.ngram_indexes) + 1
    shape = None if t.shape is None else ((width,) if t.rank == 1 else (t.shape[0], width))
    return [TensorType(DType.float32, shape)]


def _run_tfidf(ctx, x):
    a = ctx.attrs
    table = _ngram_table(a)
    width = max(a.ngram_indexes) + 1
    rows = x.reshape(1, -1) if x.ndim == 1 else x
    counts = np.zeros((rows.shape[0], width), np.float32)
    longest = max((len(k) for k in table), default=0)
    for r, row in enumerate(rows.tolist()):
        for start in range(len(row)):
            if a.min_gram_length <= 1 and (row[start],) in table:
                counts[r, table[(row[start],)]] += 1     # unigrams are counted once, skip or not
            for step in range(1, a.max_skip_count + 2):
                for size in range(max(2, a.min_gram_length), longest + 1):
                    end = start + (size - 1) * step
                    if end >= len(row):
                        break
                    col = table.get(tuple(row[start:end + 1:step]))
                    if col is not None:
                        counts[r, col] += 1
    if a.mode != "TF":
        w = np.ones(width, np.float32) if a.weights is None else _weights_by_column(a, width)
        counts = (counts > 0) * w if a.mode == "IDF" else counts * w
    counts = counts.astype(np.float32)
    return counts.reshape(width) if x.ndim == 1 else counts


def _weights_by_column(a, width: int) -> np.ndarray:
    # Weights are read by output column, as onnxruntime and onnx.reference do.
    w = np.zeros(width, np.float32)
    n = min(width, len(a.weights))
    w[:n] = a.weights[:n]
    return w


TfIdfVectorizer = define(
    "TfIdfVectorizer", ["X"], ["Y"], kind=K.OPAQUE, since_version=9,
    attrs=[STRING("mode", choices=("TF", "IDF", "TFIDF")), INT("min_gram_length"),
           INT("max_gram_length"), INT("max_skip_count"), INTS("ngram_counts"),
           INTS("ngram_indexes"), INTS("pool_int64s", None), STRINGS("pool_strings", None),
           FLOATS("weights", None)],
    infer=_infer_tfidf, reference=_run_tfidf,
    doc="Counts the pooled n-grams (with up to max_skip_count skips) in each row; TF, IDF or "
        "TFIDF weighting.")
