"""benchmarks/fusion_cost.py: every fused group of the MLP is timed against its parts, and the
whole model fused and unfused (timings are printed, never asserted)."""

from benchmarks import fusion_cost


def test_mlp_groups_and_whole_model_are_reported():
    lines = []
    fusion_cost.profile("mlp", rounds=1, log=lines.append)
    groups = [line for line in lines if line.startswith("| Fused[")]
    assert groups and all("Gemm" in g or "MatMul" in g for g in groups)
    assert len(groups[0].split("|")) == 6      # group, fused, parts, flag
    assert lines[-1].startswith("mlp: whole model, one thread, CPU ms: fused ")
