"""docs/conformance.md shows every back end's latest full run side by side."""

from kiln.frontends.onnx.conformance import Result
from kiln.frontends.onnx.conformance_report import Report, statuses_from_json, write_docs


def _result(name, status, message=""):
    r = Result.__new__(Result)
    r.name, r.category, r.status, r.message, r.execution = name, "node", status, message, None
    return r


def test_statuses_from_json_marks_unlisted_cases_passed():
    data = {"failures": {"b": "boom"}, "skips": {"c": "offline"}}
    assert statuses_from_json(data, ["a", "b", "c"]) == {
        "a": ("pass", ""), "b": ("fail", "boom"), "c": ("skip", "offline")}


def test_docs_have_a_column_per_backend(tmp_path):
    report = Report("interpreter", [_result("test_a", "pass"), _result("test_b", "fail", "bad")])
    native = {"total": 2, "failures": {"test_a": "no lowering"}, "skips": {}}
    path = tmp_path / "conformance.md"
    write_docs(report, path, {"native": native})
    text = path.read_text()
    assert "| node | 2 | 1 | 50.0% | 1 | 50.0% |" in text
    assert "| test_a | pass | FAIL | no lowering |" in text
    assert "| test_b | FAIL | pass | bad |" in text
