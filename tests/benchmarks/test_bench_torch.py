"""The torch.compile columns of the benchmark: a graph kiln did not compile is not reported
as kiln's time."""

import os

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[torch]')")

from benchmarks import bench  # noqa: E402
from kiln.errors import UnsupportedOpError  # noqa: E402
from kiln.frontends.torch import dynamo  # noqa: E402


def test_torch_compile_kiln_reads_na_when_a_graph_runs_eagerly(monkeypatch):
    def refuse(cls, *args, **kwargs):
        raise UnsupportedOpError("1 node(s) use ops kiln cannot convert: aten.add.Tensor",
                                 ops=["aten.add.Tensor"])
    monkeypatch.setattr(dynamo.KilnGraphFunction, "compile", classmethod(refuse))
    monkeypatch.setitem(bench.PREPARE, "torch.compile Inductor", bench.PREPARE["PyTorch eager"])
    torch._dynamo.reset()
    try:
        row = bench.measure("tiny", rounds=1, threads=len(os.sched_getaffinity(0)),
                            log=lambda msg: None)
    finally:
        torch._dynamo.reset()
    cell = row.cells["torch.compile kiln"]
    assert cell.stats is None
    assert cell.reason.startswith("1 graph(s) ran eagerly") and "aten.add.Tensor" in cell.reason
    assert row.cells["PyTorch eager"].stats is not None


def test_dynamo_report_runs_the_mlp(capsys):
    from benchmarks import dynamo_report
    assert dynamo_report.main(["--models", "mlp", "--repeat", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| mlp |")]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert cells[1] == "1"                                  # one graph, compiled by kiln
    assert cells[-1].endswith("×")
