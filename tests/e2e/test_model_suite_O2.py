"""The benchmark model suite, exported to ONNX and imported back, keeps its outputs through -O2,
and the optimizer does the work it is there for on each model."""

import numpy as np
import pytest

from benchmarks.models import SUITE, example_inputs
from kiln.frontends.onnx import export_model, import_model
from kiln.ir.interpreter import interpret
from kiln.pipeline import pipeline
from kiln.rewrite.instruments import VerifyEach
from kiln.rewrite.pass_manager import PassContext, PassManager

BUILD = {"mlp": lambda: SUITE["mlp"](), "resnet18": lambda: SUITE["resnet18"](image=32),
         "bert": lambda: SUITE["bert"](layers=1), "gpt2": lambda: SUITE["gpt2"](layers=1)}
EXPECT_GONE = {"mlp": {"MatMul", "Add"}, "resnet18": {"BatchNormalization"},
               "bert": {"Erf", "Sqrt", "Pow"}, "gpt2": {"Tanh", "Sqrt", "Pow"}}


@pytest.mark.parametrize("name", BUILD)
def test_O2_keeps_results(name):
    model = export_model(BUILD[name]())
    original, graph = import_model(model), import_model(model)
    ctx = PassContext(instruments=[VerifyEach()])
    optimized = PassManager(pipeline(2)).run(graph, ctx)
    assert len(optimized.nodes) < len(original.nodes)
    assert not EXPECT_GONE[name] & {n.op.name for n in optimized.nodes}
    feeds = example_inputs(original, batch=2, seq=7)
    for want, got in zip(interpret(original, feeds), interpret(optimized, feeds)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
