"""The benchmark model suite, exported to ONNX, compiled natively by kiln.compile, matches ONNX
Runtime on the same file within rtol 1e-4 / atol 1e-5 (float32), at -O0 and -O2."""

import numpy as np
import onnxruntime as ort
import pytest

import kiln
from benchmarks.models import SUITE, example_inputs
from kiln.frontends.onnx import export_model

BUILD = {"mlp": lambda: SUITE["mlp"](), "resnet18": lambda: SUITE["resnet18"](image=32),
         "bert": lambda: SUITE["bert"](layers=1), "gpt2": lambda: SUITE["gpt2"](layers=1)}


@pytest.mark.parametrize("level", [0, 2])
@pytest.mark.parametrize("name", BUILD)
def test_native_matches_onnxruntime(name, level):
    graph = BUILD[name]()
    data = export_model(graph).SerializeToString()
    model = kiln.compile(data, kiln.CompileOptions(opt_level=level))
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    for batch, seq in ((1, 5), (3, 16)):            # one compile, several shapes
        feeds = example_inputs(graph, batch=batch, seq=seq)
        want = session.run(None, feeds)
        got = model(feeds)
        for w, g in zip(want, got):
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
