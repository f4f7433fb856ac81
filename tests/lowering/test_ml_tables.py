"""LabelEncoder (numeric keys and values) and TfIdfVectorizer (integer pool) against the Graph IR
interpreter, and the LoweringError their string forms raise."""

import numpy as np
import pytest

from kiln.errors import LoweringError
from kiln.lowering import lower_graph
from tests.ir.ops.test_strings import _CONFIGS

from .harness import check_op, one_node_graph, rand


@pytest.mark.parametrize("x,attrs", [
    (np.array([[1, 5], [7, 1]], np.int64), dict(keys_int64s=[1, 7], values_int64s=[10, 70])),
    (np.array([1.5, 2.0, -0.0, np.nan, 3.0], np.float32),
     dict(keys_floats=[1.5, 2.0, 0.0, np.nan], values_floats=[10.0, 20.0, 5.0, 99.0])),
    (np.array([0.1, 0.2, np.nan], np.float32), dict(keys_floats=[0.1], values_int64s=[4])),
    (np.array([3, 4, 5, 3], np.int64), dict(keys_tensor=np.array([3, 4, 3], np.int64),
                                            values_tensor=np.array([0.5, 1.5, 2.5], np.float32),
                                            default_tensor=np.array([9.0], np.float32))),
    (np.array([3, 4, 5], np.int32), dict(keys_tensor=np.array([3, 4], np.int32),
                                         values_tensor=np.array([1, 2], np.int16),
                                         default_tensor=np.array([-7], np.int16))),
    (np.array([3.0, 4.0], np.float64), dict(keys_tensor=np.array([4.0]),
                                            values_tensor=np.array([1], np.int64))),
    (np.zeros((0, 3), np.int64), dict(keys_int64s=[1], values_floats=[1.0])),
    (np.array(5, np.int64), dict(keys_int64s=[5], values_floats=[2.5])),
    (rand((3, 7), np.int64, seed=1, low=-4, high=4),
     dict(keys_int64s=[-3, -1, 0, 2, 4], values_int64s=[1, 2, 3, 4, 5], default_int64=-9)),
])
def test_label_encoder(backend, x, attrs):
    check_op(backend, "LabelEncoder", [x], attrs)


def test_label_encoder_strings_are_a_lowering_error():
    graph, _ = one_node_graph("LabelEncoder", [np.array([1, 2], np.int64)],
                              dict(keys_int64s=[1], values_strings=["a"]))
    with pytest.raises(LoweringError, match="LabelEncoder node.*str"):
        lower_graph(graph)


@pytest.mark.parametrize("attrs,dtype", [(c, (np.int32, np.int64)[k % 2])
                                         for k, c in enumerate(_CONFIGS)])
def test_tfidf(backend, attrs, dtype):
    check_op(backend, "TfIdfVectorizer", [np.array([[1, 1, 3, 3, 3, 7], [8, 6, 7, 5, 6, 8]],
                                                   dtype)], attrs)
    check_op(backend, "TfIdfVectorizer", [np.array([1, 1, 3, 3, 3, 7, 8, 6, 7, 5, 6, 8], dtype)],
             attrs)
    check_op(backend, "TfIdfVectorizer", [rand((3, 11), dtype, seed=2, low=2, high=8)], attrs)


def test_tfidf_short_rows_and_idf_without_weights(backend):
    attrs = dict(_CONFIGS[1], mode="IDF", weights=None)
    attrs.pop("weights")
    check_op(backend, "TfIdfVectorizer", [np.array([[5, 6]], np.int64)], attrs)
    check_op(backend, "TfIdfVectorizer", [np.array([[7]], np.int64)], attrs)


def test_tfidf_strings_are_a_lowering_error():
    attrs = dict(mode="TF", min_gram_length=1, max_gram_length=1, max_skip_count=0,
                 ngram_counts=[0], ngram_indexes=[0, 1], pool_strings=["a", "b"])
    graph, _ = one_node_graph("TfIdfVectorizer", [np.array(["a", "b"], dtype=object)], attrs)
    with pytest.raises(LoweringError, match="str"):
        lower_graph(graph)
