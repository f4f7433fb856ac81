"""benchmarks/normalization_cost.py: BERT's Softmax and LayerNormalization nodes (alone or in
their fused groups) are timed by kiln and onnxruntime (timings are printed, never asserted)."""

from benchmarks import normalization_cost


def test_bert_row_normalizations_are_reported_with_onnxruntime_alongside():
    lines = []
    normalization_cost.profile("bert", rounds=1, log=lines.append)
    rows = [line.split("|")[1:-1] for line in lines if line.startswith("| ") and
            not line.startswith("| node")]
    names = [r[0].strip() for r in rows]
    assert "Softmax" in names and any("LayerNormalization" in n for n in names)
    softmax = rows[names.index("Softmax")]
    assert softmax[1].strip() == "1x4x128x128"
    assert float(softmax[2]) > 0 and float(softmax[3]) > 0     # kiln and onnxruntime both ran
