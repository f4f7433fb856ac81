"""String ops against onnx.reference (and hand-computed results where the two differ)."""

import numpy as np
import pytest

from kiln.errors import AttributeValueError, TypeInferenceError
from kiln.ir import DType, GraphBuilder, tensor
from tests.ir.ops.harness import check_op, run_kiln, run_onnx

rng = np.random.default_rng(0)


def strings(*values, shape=None):
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out.reshape(shape if shape is not None else (len(values),))


def check_strings(op, inputs, attrs=None, num_outputs=1):
    """Like check_op, but onnx.reference may hand back <U arrays where kiln has object arrays."""
    got = run_kiln(op, inputs, attrs, num_outputs)
    want = run_onnx(op, inputs, attrs, num_outputs)
    for g, w in zip(got, want):
        w = np.asarray(w)
        assert g.shape == w.shape, (g.shape, w.shape)
        if w.dtype.kind in "UO":
            assert g.dtype == object and g.tolist() == w.tolist()
        else:
            assert g.dtype == w.dtype
            np.testing.assert_array_equal(g, w)
    return got


# --- StringConcat ----------------------------------------------------------------------------

@pytest.mark.parametrize("x,y", [
    (strings("a", "bc", ""), strings("x", "", "z")),
    (strings("a", "b", "c", "d", "e", "f", shape=(2, 3)), strings("!")),
    (strings("pre", shape=()), strings("a", "b", "c", "d", "e", "f", "g", shape=(7, 1))),
    (strings("é", "日本"), strings("ß", "語")),
    (np.empty((0, 3), dtype=object), strings("x", "y", "z")),
])
def test_string_concat(x, y):
    (z,) = check_op("StringConcat", [x, y])
    assert z.dtype == object and z.shape == np.broadcast_shapes(x.shape, y.shape)


def test_string_concat_rejects_numbers_and_bad_shapes():
    b = GraphBuilder("t")
    s = b.input("s", tensor(DType.string, 3))
    with pytest.raises(TypeInferenceError, match="string"):
        b.StringConcat(s, b.input("n", tensor(DType.float32, 3)))
    with pytest.raises(TypeInferenceError, match="broadcast"):
        b.StringConcat(s, b.input("s2", tensor(DType.string, 4)))


# --- StringSplit -----------------------------------------------------------------------------

@pytest.mark.parametrize("attrs", [{}, {"delimiter": ""}, {"delimiter": " "}, {"delimiter": "-"},
                                   {"delimiter": "--"}, {"maxsplit": 1}, {"delimiter": "-",
                                                                           "maxsplit": 2}])
def test_string_split(attrs):
    x = strings("a-b c", "  x  y--z ", "", "one", "-lead", "trail-", "a--b--c-d", shape=(7,))
    y, z = check_op("StringSplit", [x], attrs, num_outputs=2)
    assert z.dtype == np.int64 and y.shape == (7, int(z.max()))
    for row, n, s in zip(y, z, x):
        sep = attrs.get("delimiter") or None
        assert list(row[:n]) == s.split(sep, attrs.get("maxsplit", -1))
        assert all(p == "" for p in row[n:])


def test_string_split_shapes():
    x = strings("a b", "c", "d e f", "", "g", "h i", shape=(2, 3))
    y, z = check_op("StringSplit", [x], num_outputs=2)
    assert y.shape == (2, 3, 3) and z.tolist() == [[2, 1, 3], [0, 1, 2]]
    y, z = check_op("StringSplit", [np.empty((0,), dtype=object)], num_outputs=2)
    assert y.shape == (0, 0) and z.shape == (0,)
    y, z = run_kiln("StringSplit", [strings("a b", shape=())], num_outputs=2)
    assert y.tolist() == ["a", "b"] and z == 2
    b = GraphBuilder("t")
    ty, tz = b.StringSplit(b.input("s", tensor(DType.string, "n", 3)), outputs=2)
    assert ty.type == tensor(DType.string, "n", 3, None) and tz.type == tensor(DType.int64, "n", 3)
    with pytest.raises(TypeInferenceError, match="string"):
        b.StringSplit(b.input("i", tensor(DType.int64, 2)), outputs=2)


# --- RegexFullMatch --------------------------------------------------------------------------

@pytest.mark.parametrize("pattern", [r"\w+@\w+\.com", r"[a-c]*", r"(ab|cd)+", r"", r"(?i)ABC",
                                     r".*\d.*", r"\s*"])
def test_regex_full_match(pattern):
    x = strings("abc", "ab", "cdab", "x@y.com", "x@y.comm", "", " ", "a1b", "ABC", "aBc",
                shape=(2, 5))
    (y,) = check_op("RegexFullMatch", [x], {"pattern": pattern})
    assert y.dtype == np.bool_ and y.shape == (2, 5)


def test_regex_re2_end_of_text_and_errors():
    (y,) = run_kiln("RegexFullMatch", [strings("ab", "ab\n", r"a\z")], {"pattern": r"ab\z"})
    assert y.tolist() == [True, False, False]
    (y,) = run_kiln("RegexFullMatch", [strings(r"a\z", "az")], {"pattern": r"a\\z"})
    assert y.tolist() == [True, False]             # an escaped backslash followed by z
    with pytest.raises(AttributeValueError, match="not a valid regular expression"):
        run_kiln("RegexFullMatch", [strings("a")], {"pattern": "(unclosed"})
    with pytest.raises(AttributeValueError, match="pattern"):
        run_kiln("RegexFullMatch", [strings("a")])
    with pytest.raises(TypeInferenceError, match="string"):
        run_kiln("RegexFullMatch", [np.zeros(3, np.float32)], {"pattern": "a"})


# --- StringNormalizer ------------------------------------------------------------------------

@pytest.mark.parametrize("attrs", [
    {}, {"case_change_action": "LOWER"}, {"case_change_action": "UPPER"},
    {"stopwords": ["monday"], "is_case_sensitive": 1},
    {"stopwords": ["monday", "Friday"], "case_change_action": "UPPER"},
    {"stopwords": ["MONDAY"], "case_change_action": "LOWER", "is_case_sensitive": 0},
])
@pytest.mark.parametrize("shape", [(5,), (1, 5)])
def test_string_normalizer(attrs, shape):
    x = strings("monday", "Tuesday", "MONDAY", "friday", "Sunday", shape=shape)
    (y,) = check_strings("StringNormalizer", [x], attrs)
    assert y.ndim == len(shape)


def test_string_normalizer_spec_cases():
    x = strings("monday", "monday")
    (y,) = run_kiln("StringNormalizer", [x], {"stopwords": ["monday"]})
    assert y.tolist() == [""]
    (y,) = run_kiln("StringNormalizer", [x.reshape(1, 2)], {"stopwords": ["Monday"]})
    assert y.tolist() == [[""]]
    # Stop words remove whole elements; spaces, accents and empty strings are kept as they are.
    (y,) = run_kiln("StringNormalizer", [strings("new monday", "", "Café")],
                    {"stopwords": ["monday"], "case_change_action": "UPPER"})
    assert y.tolist() == ["NEW MONDAY", "", "CAFÉ"]


def test_string_normalizer_errors():
    with pytest.raises(TypeInferenceError, match=r"\[C\] or \[1, C\]"):
        run_kiln("StringNormalizer", [strings("a", "b", "c", "d", shape=(2, 2))])
    with pytest.raises(TypeInferenceError, match=r"\[C\] or \[1, C\]"):
        run_kiln("StringNormalizer", [strings("a", shape=())])
    with pytest.raises(AttributeValueError, match="case_change_action"):
        run_kiln("StringNormalizer", [strings("a")], {"case_change_action": "TITLE"})
    b = GraphBuilder("t")
    y = b.StringNormalizer(b.input("s", tensor(DType.string, 1, "n")), stopwords=("a",))
    assert y.type == tensor(DType.string, 1, None)


# --- TfIdfVectorizer -------------------------------------------------------------------------

# (mode, min, max, skip, ngram_counts, ngram_indexes, pool): the ONNX example configurations
# plus weighting modes.
_BIGRAMS = dict(ngram_counts=[0, 4], ngram_indexes=[0, 1, 2, 3, 4, 5, 6],
                pool_int64s=[2, 3, 5, 4, 5, 6, 7, 8, 6, 7])
_CONFIGS = [
    dict(mode="TF", min_gram_length=2, max_gram_length=2, max_skip_count=0, **_BIGRAMS),
    dict(mode="TF", min_gram_length=2, max_gram_length=2, max_skip_count=5, **_BIGRAMS),
    dict(mode="TF", min_gram_length=1, max_gram_length=2, max_skip_count=5, **_BIGRAMS),
    dict(mode="TF", min_gram_length=1, max_gram_length=2, max_skip_count=0, **_BIGRAMS),
    dict(mode="TF", min_gram_length=2, max_gram_length=2, max_skip_count=0,
         ngram_counts=[0, 0], ngram_indexes=[0, 1, 2], pool_int64s=[5, 6, 7, 8, 6, 7]),
    dict(mode="IDF", min_gram_length=1, max_gram_length=2, max_skip_count=2,
         weights=[0.5, 1, 2, 3, 4, 5, 6], **_BIGRAMS),
    dict(mode="TFIDF", min_gram_length=1, max_gram_length=2, max_skip_count=2,
         weights=[0.5, 1, 2, 3, 4, 5, 6], **_BIGRAMS),
    dict(mode="TF", min_gram_length=1, max_gram_length=3, max_skip_count=1,
         ngram_counts=[0, 3, 7], ngram_indexes=[4, 3, 2, 1, 0, 6, 5],
         pool_int64s=[5, 6, 7, 5, 6, 6, 7, 5, 6, 7]),
]


@pytest.mark.parametrize("attrs", _CONFIGS)
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_tfidf_matches_reference(attrs, dtype):
    x = np.array([[1, 1, 3, 3, 3, 7], [8, 6, 7, 5, 6, 8]], dtype)
    check_op("TfIdfVectorizer", [x], attrs)
    check_op("TfIdfVectorizer", [np.array([1, 1, 3, 3, 3, 7, 8, 6, 7, 5, 6, 8], dtype)], attrs)
    check_op("TfIdfVectorizer", [rng.integers(2, 9, (3, 11)).astype(dtype)], attrs)


def test_tfidf_idf_without_weights_marks_presence():
    # onnx.reference cannot run IDF without weights; the weights default to all ones
    attrs = dict(mode="IDF", min_gram_length=1, max_gram_length=1, max_skip_count=0, **_BIGRAMS)
    (y,) = run_kiln("TfIdfVectorizer", [np.array([[2, 2, 3, 9], [4, 4, 4, 4]], np.int64)], attrs)
    assert y.tolist() == [[1, 1, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 0]]


def test_tfidf_example_counts():
    """The ONNX example: bigrams [5,6] and [7,8] ... with skips up to 5 in [1,1,3,3,3,7]/[8,...]."""
    (y,) = run_kiln("TfIdfVectorizer", [np.array([[1, 1, 3, 3, 3, 7], [8, 6, 7, 5, 6, 8]],
                                                 np.int32)], _CONFIGS[2])
    assert y.tolist() == [[0, 3, 0, 0, 0, 0, 0], [0, 0, 1, 0, 1, 1, 1]]
    assert y.dtype == np.float32


def test_tfidf_strings():
    attrs = dict(mode="TF", min_gram_length=1, max_gram_length=2, max_skip_count=1,
                 ngram_counts=[0, 3], ngram_indexes=[0, 1, 2, 3, 4],
                 pool_strings=["a", "b", "c", "a", "b", "b", "c"])
    x = strings("a", "b", "x", "c", "a", "b", "b", shape=(7,))
    (y,) = check_op("TfIdfVectorizer", [x], attrs)
    # a, b, c; "a b" twice adjacent and once over x; "b c" once over x
    assert y.tolist() == [2, 3, 1, 3, 1]


def test_tfidf_errors():
    base = dict(mode="TF", min_gram_length=1, max_gram_length=1, max_skip_count=0,
                ngram_counts=[0], ngram_indexes=[0])
    x = np.array([1, 2], np.int64)
    with pytest.raises(AttributeValueError, match="exactly one"):
        run_kiln("TfIdfVectorizer", [x], base)
    with pytest.raises(AttributeValueError, match="min_gram_length"):
        run_kiln("TfIdfVectorizer", [x], {**base, "pool_int64s": [1], "min_gram_length": 2})
    with pytest.raises(AttributeValueError, match="mode"):
        run_kiln("TfIdfVectorizer", [x], {**base, "pool_int64s": [1], "mode": "BM25"})
    with pytest.raises(TypeInferenceError, match="i32 or i64"):
        run_kiln("TfIdfVectorizer", [np.ones(2, np.float32)], {**base, "pool_int64s": [1]})
    with pytest.raises(TypeInferenceError, match="string input"):
        run_kiln("TfIdfVectorizer", [x], {**base, "pool_strings": ["a"]})
    with pytest.raises(TypeInferenceError, match="rank 3"):
        run_kiln("TfIdfVectorizer", [np.ones((1, 1, 2), np.int64)], {**base, "pool_int64s": [1]})
