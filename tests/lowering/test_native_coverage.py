"""Every op of kiln's op table either has a native lowering that a native test exercises, or is
listed in kiln.lowering.unlowered.UNLOWERED with the reason it has none (and lower_graph then
rejects it with a LoweringError naming it). Native tests are looked for in all of tests/. Which ops the tests exercise is read from the test
sources by tests/lowering/coverage.py; the first tests check that reading on known sources, so
the coverage check cannot pass by finding everything or nothing."""

import numpy as np
import pytest

from kiln.errors import LoweringError
from kiln.ir.ops import OP_TABLE
from kiln.lowering import lower_graph, lowering_for
from kiln.lowering.unlowered import UNLOWERED

from .coverage import natively_tested_ops, ops_tested_in
from .harness import one_node_graph

NAMES = set(OP_TABLE)
LOWERED = {name for name, op in OP_TABLE.items() if lowering_for(op) is not None}

SAMPLE = '''
"""Docstring naming Add, which does not count."""
import pytest
ALIASES = {"Mul": 1}

def helper(backend):
    return check_op(backend, "Sub", [x])

def _graph(b):
    return b.Relu(b.input("x"))

@pytest.mark.parametrize("op", ["Exp", "Log"])
def test_a(backend, op):
    helper(backend)
    _graph(b)
    check_op(backend, op, [x])
    check_op(backend, "Mul" if ALIASES else "Neg", [x])

def test_b(backend):
    with pytest.raises(LoweringError, match="Abs"):
        lower_graph(graph_of("Sqrt"))

def test_c():
    check_op("loops", "Tanh", [x])

def test_d():
    run_backend("native", graph_of("Cos"))
'''


def test_reading_the_sources_finds_what_native_tests_name():
    assert ops_tested_in(SAMPLE, NAMES) == {"Sub", "Relu", "Exp", "Log", "Mul", "Neg", "Sqrt",
                                            "Cos"}


def test_the_lowering_tests_cover_most_of_the_table():
    tested = natively_tested_ops(NAMES)
    assert len(tested) >= 150, sorted(tested)
    for op in ("Add", "Conv", "MatMul", "TopK", "TreeEnsemble", "RandomNormal"):
        assert "test_native_coverage.py" not in tested.get(op, [])


def test_every_lowered_op_has_a_native_test():
    untested = sorted(LOWERED - set(natively_tested_ops(NAMES)))
    assert not untested, (f"ops with a native lowering that no test under tests/ runs "
                          f"natively: {untested}")


def test_every_op_without_a_lowering_is_listed_with_a_reason():
    missing = sorted(NAMES - LOWERED - set(UNLOWERED))
    assert not missing, f"ops without a native lowering and without a reason in UNLOWERED: {missing}"
    assert all(reason.strip() for reason in UNLOWERED.values())


def test_unlowered_lists_only_ops_without_a_lowering():
    stale = sorted(set(UNLOWERED) & LOWERED)
    assert not stale, f"ops listed in UNLOWERED that now have a lowering (remove them): {stale}"
    unknown = sorted(set(UNLOWERED) - NAMES)
    assert not unknown, f"UNLOWERED names ops that are not in the op table: {unknown}"


def strings(*values):
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


@pytest.mark.parametrize("op,inputs,attrs,outputs", [
    ("StringConcat", [strings("a", "b"), strings("c", "d")], {}, 1),
    ("StringSplit", [strings("a b", "c")], {}, 2),
    ("RegexFullMatch", [strings("ab", "b")], {"pattern": "a.*"}, 1),
    ("StringNormalizer", [strings("Ab", "cD")], {"case_change_action": "LOWER"}, 1),
])
def test_string_ops_are_rejected_by_name(op, inputs, attrs, outputs):
    assert op in UNLOWERED
    graph, _ = one_node_graph(op, inputs, attrs, outputs=outputs)
    with pytest.raises(LoweringError, match=f"no native lowering for {op}") as err:
        lower_graph(graph)
    assert op in err.value.ops
    assert UNLOWERED[op] in str(err.value) and "interpreter" in str(err.value)
