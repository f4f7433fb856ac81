"""Hugging Face-style BERT, GPT-2 and ViT (benchmarks/hf_models.py, one layer each) through
kiln.compile (torch.export) with dynamic batch (and sequence) vs eager within rtol 1e-4 /
atol 1e-5, several sizes of one compile."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[torch]')")

from torch.export import Dim  # noqa: E402

import kiln  # noqa: E402
from benchmarks import hf_models as hf  # noqa: E402

BUILD = {
    "bert": (lambda: hf.bert(hf.BertConfig(layers=1)),
             lambda batch, seq: hf.bert_inputs(hf.BertConfig(layers=1), batch, seq)),
    "gpt2": (lambda: hf.gpt2(hf.GPT2Config(layers=1)),
             lambda batch, seq: hf.gpt2_inputs(hf.GPT2Config(layers=1), batch, seq)),
    "vit": (lambda: hf.vit(hf.ViTConfig(layers=1)),
            lambda batch, seq: hf.vit_inputs(hf.ViTConfig(layers=1), batch)),
}


@pytest.fixture(scope="module", params=list(BUILD))
def compiled(request):
    build, inputs = BUILD[request.param]
    module = build()
    args = inputs(2, 16)
    batch, seq = Dim("batch", max=16), Dim("seq", max=48)
    dims = {0: batch} if request.param == "vit" else {0: batch, 1: seq}
    return module, inputs, kiln.compile(module, args, dynamic_shapes=tuple(dims for _ in args))


@pytest.mark.parametrize("batch,seq", [(2, 16), (1, 7), (3, 31)])
def test_hf_module_matches_eager(compiled, batch, seq):
    module, inputs, model = compiled
    args = inputs(batch, seq)
    with torch.no_grad():
        want = module(*args)
    got = model(*args)
    want = want if isinstance(want, (tuple, list)) else (want,)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert isinstance(g, torch.Tensor) and g.shape == w.shape
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-4, atol=1e-5)
