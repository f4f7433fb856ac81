"""Whole models through torch.compile(backend="kiln") and kiln.compile match PyTorch eager.

The Hugging Face-style BERT, GPT-2 and ViT of benchmarks/hf_models.py (one-layer configs,
random weights) and the model suite's PyTorch ports (benchmarks/torch_models.py). Every graph
must be compiled by kiln: a KilnFallbackWarning (a graph run eagerly) fails the test. Each
model is built once per module; compiling takes seconds (mostly LLVM)."""

import warnings

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[torch]')")

import kiln  # noqa: E402
from benchmarks.hf_models import HF_MODELS, BertConfig, GPT2Config, ViTConfig  # noqa: E402
from benchmarks.models import SUITE, example_inputs  # noqa: E402
from benchmarks.torch_models import from_graph  # noqa: E402
from kiln.frontends.torch.dynamo import KilnFallbackWarning  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5


def compile_and_run(module, args, **compile_kwargs):
    """torch.compile(module, backend="kiln") called on args under no_grad; a fallback to
    eager is an error."""
    compiled = torch.compile(module, backend="kiln", **compile_kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error", KilnFallbackWarning)
        with torch.no_grad():
            return compiled, compiled(*args)


CONFIGS = {"bert": BertConfig(layers=1), "gpt2": GPT2Config(layers=1), "vit": ViTConfig(layers=1)}


@pytest.fixture(scope="module", params=list(HF_MODELS))
def hf_model(request):
    build, inputs = HF_MODELS[request.param]
    config = CONFIGS[request.param]
    model, args = build(config), inputs(config)
    with torch.no_grad():
        expected = model(*args)
    return request.param, model, args, expected


def test_hf_model_through_torch_compile(hf_model):
    name, model, args, expected = hf_model
    _, got = compile_and_run(model, args)
    torch.testing.assert_close(got, expected, rtol=RTOL, atol=ATOL)


def test_hf_model_through_kiln_compile(hf_model):
    name, model, args, expected = hf_model
    compiled = kiln.compile(model, args)
    got = compiled(*args)
    got = got[0] if isinstance(got, (list, tuple)) else got
    assert isinstance(got, torch.Tensor)
    torch.testing.assert_close(got, expected, rtol=RTOL, atol=ATOL)


def test_bert_with_dynamic_batch_and_sequence():
    build, inputs = HF_MODELS["bert"]
    config = CONFIGS["bert"]
    model = build(config, seed=4)
    compiled = None
    # sizes 0 and 1 are specialized by Dynamo (a new graph); every other size shares one
    for batch, seq in ((2, 16), (3, 9), (4, 24)):
        args = inputs(config, batch=batch, seq=seq, seed=batch)
        with torch.no_grad():
            expected = model(*args)
        if compiled is None:
            compiled, got = compile_and_run(model, args, dynamic=True)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("error", KilnFallbackWarning)
                with torch.no_grad():
                    got = compiled(*args)
        torch.testing.assert_close(got, expected, rtol=RTOL, atol=ATOL)


# small sizes keep the compile short; batch 2 pads the last row of BERT's attention mask
SUITE_SIZES = {"mlp": {}, "resnet18": {"image": 32}, "bert": {"layers": 1}, "gpt2": {"layers": 1}}


@pytest.mark.parametrize("name", list(SUITE_SIZES))
def test_suite_module_through_torch_compile(name):
    graph = SUITE[name](seed=3, **SUITE_SIZES[name])
    feeds = example_inputs(graph, batch=2, seq=13, seed=1)
    args = [torch.from_numpy(feeds[v.name]) for v in graph.inputs]
    module = from_graph(name, graph)
    with torch.no_grad():
        expected = module(*args)
    _, got = compile_and_run(module, args)
    torch.testing.assert_close(got, expected, rtol=RTOL, atol=ATOL)
