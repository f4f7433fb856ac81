"""A fast slice of the ONNX conformance suite: one or two node cases for every op kiln claims.

Cases are chosen automatically: for each op in kiln's op table, the first node cases whose model
is that single op. A case must pass unless expected_failures.py lists it. The full suite runs with
`make conformance`.
"""

from __future__ import annotations

import functools
import json
import os
import time

import numpy as np
import onnx
import pytest

from kiln.frontends.onnx import conformance
from kiln.frontends.onnx.conformance import (CATEGORIES, MIN_CASES, Result, collect,
                                             compare_outputs, main, run_case, run_cases)
from kiln.frontends.onnx.expected_failures import EXPECTED_FAILURES
from kiln.ir.ops import OP_TABLE

PER_OP = 2


@functools.cache
def all_cases():
    return collect(CATEGORIES)


def pick_cases():
    """{op name: [first PER_OP single-node cases of that op]} for every op in OP_TABLE."""
    by_op: dict[str, list] = {}
    for c in all_cases():
        if c.category != "node" or c.model_bytes is None:
            continue
        nodes = onnx.ModelProto.FromString(c.model_bytes).graph.node
        if len(nodes) != 1 or nodes[0].op_type not in OP_TABLE:
            continue
        chosen = by_op.setdefault(nodes[0].op_type, [])
        if len(chosen) < PER_OP:
            chosen.append(c)
    return by_op


def _params():
    out = []
    for op, cases in sorted(pick_cases().items()):
        for c in cases:
            marks = [pytest.mark.xfail(reason=EXPECTED_FAILURES[c.name], strict=False)] \
                if c.name in EXPECTED_FAILURES else []
            out.append(pytest.param(c, id=f"{op}-{c.name}", marks=marks))
    return out


@pytest.mark.parametrize("case", _params())
def test_node_case(case):
    result = run_case(case, "interpreter", timeout=30)
    assert result.status == "pass", result.message


def test_the_suite_is_all_there():
    cases = all_cases()
    assert len(cases) >= MIN_CASES
    assert {c.category for c in cases} == set(CATEGORIES)
    assert len({c.name for c in cases}) == len(cases)


def test_most_ops_have_a_case():
    assert len(pick_cases()) >= 0.6 * len(OP_TABLE)


# --- the comparison and the runner itself --------------------------------------------------

def test_compare_outputs_judges_like_onnx():
    x = np.array([1.0, 2.0], np.float32)
    compare_outputs([x], [x * (1 + 1e-4)], rtol=1e-3, atol=0)
    for expected, got in [
        ([x], [x + 1]),                                   # values
        ([x], [x.astype(np.float64)]),                    # dtype
        ([x], [x[:1]]),                                   # shape
        ([x], [x, x]),                                    # output count
        ([[x, x]], [[x]]),                                # sequence length
        ([None], [x]),                                    # empty optional
        ([x], [None]),
        ([np.array(["a"], dtype=object)], [np.array(["b"], dtype=object)]),
    ]:
        with pytest.raises(AssertionError):
            compare_outputs(expected, got, rtol=1e-3, atol=1e-7)
    compare_outputs([[x], None], [[x.copy()], None], rtol=0, atol=0)
    nan = np.array([np.nan], np.float32)
    compare_outputs([nan], [nan.copy()], rtol=0, atol=0)


def test_a_failing_case_reports_its_error():
    case = next(c for c in all_cases() if c.name == "test_relu")
    bad = type(case)(**{**case.__dict__, "data_sets": [(case.data_sets[0][0],
                                                         [case.data_sets[0][1][0] + 1])]})
    result = run_case(bad)
    assert result.status == "fail" and result.message.startswith("AssertionError")


def test_runner_refuses_a_filter_that_matches_nothing(capsys):
    assert main(["--filter", "no_such_case_anywhere", "--jobs", "1"]) != 0


def test_runner_writes_its_json_record(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["--filter", "test_relu", "--filter", "test_single_relu_model", "--jobs", "1",
                 "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["total"] == data["passed"] + data["failed"] + data["skipped"] >= 3
    assert set(data["categories"]) == {"node", "simple"}
    assert data["categories"]["simple"]["total"] == 1
    for key in ("failures", "unexpected_failures", "unexpected_passes", "backend", "pass_rate"):
        assert key in data
    assert "node:" in capsys.readouterr().out


def test_a_crashing_or_hanging_worker_costs_only_its_case(monkeypatch):
    def fake_run_case(case, backend, timeout, opt_level=0):
        if case.name == "crash":
            os._exit(3)
        if case.name == "hang":
            time.sleep(60)
        return Result(case.name, case.category, "pass")

    monkeypatch.setattr(conformance, "run_case", fake_run_case)
    template = next(c for c in all_cases() if c.name == "test_relu")
    names = ["ok1", "crash", "ok2", "hang", "ok3"]
    cases = [type(template)(**{**template.__dict__, "name": n}) for n in names]
    start = time.perf_counter()
    results = {r.name: r for r in run_cases(cases, "interpreter", jobs=2, timeout=0.2, grace=1.0)}
    assert time.perf_counter() - start < 20
    assert sorted(results) == sorted(names)
    assert results["crash"].status == "fail" and "died" in results["crash"].message
    assert results["hang"].status == "fail" and "timed out" in results["hang"].message
    assert all(results[n].status == "pass" for n in ("ok1", "ok2", "ok3"))
