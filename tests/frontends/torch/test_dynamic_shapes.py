"""Dynamic batch and sequence dims (torch.export.Dim): one kiln compile runs every size.

Reshapes keep the symbolic dims: Reshape to a constant target with 0 ("this input dim") and -1
wherever that is exact, a target computed at run time only where two new sizes appear at once.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[torch]')")

import torch.nn.functional as F  # noqa: E402
from torch.export import Dim  # noqa: E402

import kiln  # noqa: E402
from kiln.frontends.torch import export_program  # noqa: E402
from kiln.ir.interpreter import interpret  # noqa: E402
from kiln.ir.verifier import verify  # noqa: E402


class Block(torch.nn.Module):
    """Attention with a padding mask and a causal mask, positions by arange over seq."""

    def __init__(self, d=16, heads=2, vocab=50, max_len=64):
        super().__init__()
        self.heads = heads
        self.embed = torch.nn.Embedding(vocab, d)
        self.pos = torch.nn.Parameter(torch.randn(max_len, d) * 0.1)
        self.qkv = torch.nn.Linear(d, 3 * d)
        self.out = torch.nn.Linear(d, d)
        self.norm = torch.nn.LayerNorm(d)

    def forward(self, ids, mask):
        batch, seq = ids.shape
        h = self.embed(ids) + self.pos[torch.arange(seq)]
        q, k, v = self.qkv(self.norm(h)).split(h.shape[-1], dim=-1)
        q, k, v = (t.view(batch, seq, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-1, -2) / (q.shape[-1] ** 0.5)
        causal = torch.ones(seq, seq, dtype=torch.bool).tril()
        scores = scores.masked_fill(~causal, float("-inf"))
        scores = scores.masked_fill(mask[:, None, None, :] == 0, -1e9)
        ctx = (F.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(batch, seq, -1)
        return self.out(ctx) + h, h.mean(dim=1), torch.flatten(ctx, 0, 1) * 2


def inputs(batch, seq, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 50, (batch, seq), generator=g)
    mask = torch.ones(batch, seq, dtype=torch.int64)
    mask[-1, seq // 2:] = 0
    return ids, mask


@pytest.fixture(scope="module")
def block():
    torch.manual_seed(0)
    module = Block().eval()
    batch, seq = Dim("batch", max=32), Dim("seq", max=64)
    graph = export_program(module, inputs(2, 5),
                           dynamic_shapes=({0: batch, 1: seq}, {0: batch, 1: seq}))
    return module, graph, kiln.compile(graph)


def test_inputs_have_symbolic_batch_and_seq(block):
    _, graph, _ = block
    verify(graph)
    ids, mask = graph.inputs
    assert ids.type.shape == mask.type.shape == ("batch", "seq")   # named after the Dims


def test_reshapes_use_constant_targets_where_exact(block):
    _, graph, _ = block
    b, s = graph.inputs[0].type.shape
    reshapes = [n for n in graph.nodes if n.op.name == "Reshape" and n.outputs[0].type.rank]
    targets = {tuple(int(t) for t in n.inputs[1].data) for n in reshapes
               if n.inputs[1].is_constant}
    assert (0, 0, 2, 8) in targets           # [b, s, 16] -> [b, s, 2, 8]
    assert (-1, 16) in targets               # [b, s, 16] -> [b * s, 16]
    shapes = {n.outputs[0].type.shape for n in reshapes}
    assert (b, s, 2, 8) in shapes and (b, s, 48) in shapes
    # only a product of symbols (b * s) has no name
    assert all(sum(d is None for d in shape) <= 1 for shape in shapes)


@pytest.mark.parametrize("batch,seq", [(2, 5), (1, 1), (3, 17), (4, 64)])
def test_one_compile_runs_every_size(block, batch, seq):
    module, graph, model = block
    args = inputs(batch, seq, seed=batch * 100 + seq)
    with torch.no_grad():
        want = [t.numpy() for t in module(*args)]
    feeds = [a.numpy() for a in args]
    for got in (model(*feeds), interpret(graph, dict(zip([v.name for v in graph.inputs],
                                                          feeds)))):
        for g, w in zip(got, want):
            assert g.shape == w.shape
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)



def test_flatten_with_two_new_dims_computes_its_target_at_run_time():
    """flatten.using_ints (in graphs made before decomposition) of [a, b, c, d] over dims 0-1:
    two output dims (a*b, and c moved to index 1) need a target made from Shape."""
    from torch.fx.experimental.proxy_tensor import make_fx

    from kiln.frontends.torch import import_fx
    gm = make_fx(lambda x: x.reshape(-1, x.shape[2], x.shape[3]) * 2,
                 tracing_mode="symbolic")(torch.randn(2, 3, 4, 5))
    view = next(n for n in gm.graph.nodes if n.target == torch.ops.aten.view.default)
    view.target, view.args = torch.ops.aten.flatten.using_ints, (view.args[0], 0, 1)
    gm.graph.eliminate_dead_code()          # the sym_size nodes the view read
    assert not any(n.target == torch.ops.aten.sym_size.int for n in gm.graph.nodes)
    gm.recompile()
    graph = import_fx(gm)
    assert "Shape" in {n.op.name for n in graph.nodes}
    model = kiln.compile(graph)
    for shape in ((2, 3, 4, 5), (1, 6, 2, 3), (4, 1, 3, 1)):
        x = torch.randn(*shape)
        (got,) = model(x.numpy())
        np.testing.assert_array_equal(got, (torch.flatten(x, 0, 1) * 2).numpy())


class Pair(torch.nn.Module):
    def forward(self, tokens, scale):
        return tokens * scale.sum()


def test_dynamic_shapes_given_by_argument_name():
    n = Dim("n", max=64)
    graph = export_program(Pair(), (torch.randn(4, 3), torch.randn(5)),
                           dynamic_shapes={"tokens": {0: n}, "scale": {0: Dim("m")}})
    assert [v.type.shape for v in graph.inputs] == [("n", 3), ("m",)]
