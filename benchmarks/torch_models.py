"""The model suite as PyTorch nn.Modules, with the weights of a kiln Graph of benchmarks/models.py.

    graph = SUITE["bert"]()
    module = from_graph("bert", graph)          # eval mode, weights copied from graph.constants
    (out,) = run(module, example_inputs(graph)) # NumPy in, a list of NumPy out (like interpret)

Each module is written the way a PyTorch user writes the model, not as a transcription of the
graph: nn.Linear, nn.LayerNorm, nn.GELU, F.scaled_dot_product_attention, nn.Conv2d +
nn.BatchNorm2d. Every weight is looked up in the graph by the name models.py gave it (a
MatMul weight [k, n] becomes a Linear weight [n, k]), and sizes, head counts and layer counts
are read from those constants, so a module computes what its graph computes.

This is the only module of kiln that imports torch; it needs the optional `torch` extra.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kiln.ir.graph import Graph


class _Weights:
    """A graph's constants by name, handed out as torch tensors and ready-made layers."""

    def __init__(self, graph: Graph):
        self.arrays = {v.name: v.data for v in graph.constants}
        self.nodes = {n.name: n for n in graph.nodes if n.name}

    def has(self, name: str) -> bool:
        return name in self.arrays

    def array(self, name: str) -> np.ndarray:
        if name not in self.arrays:
            raise KeyError(f"the graph has no constant named {name!r}")
        return self.arrays[name]

    def tensor(self, name: str) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(self.array(name)).copy())

    def scalar(self, name: str) -> float:
        return float(self.array(name))

    def count(self, pattern: str) -> int:
        """How many i make `pattern.format(i)` a constant (layers are numbered from 0)."""
        i = 0
        while self.has(pattern.format(i)):
            i += 1
        return i

    def linear(self, name: str, transposed: bool = True) -> nn.Linear:
        """nn.Linear from `<name>.weight` ([in, out] as MatMul's right operand when
        `transposed`, else [out, in] as Gemm transB=1) and `<name>.bias`."""
        weight = self.tensor(f"{name}.weight")
        weight = weight.t().contiguous() if transposed else weight
        layer = nn.Linear(weight.shape[1], weight.shape[0])
        _assign(layer.weight, weight)
        _assign(layer.bias, self.tensor(f"{name}.bias"))
        return layer

    def layer_norm(self, name: str) -> nn.LayerNorm:
        gamma = self.tensor(f"{name}.gamma")
        layer = nn.LayerNorm(gamma.shape[0], eps=self.scalar(f"{name}.eps"))
        _assign(layer.weight, gamma)
        _assign(layer.bias, self.tensor(f"{name}.beta"))
        return layer

    def conv_bn(self, name: str) -> nn.Sequential:
        """Conv2d (no bias) + BatchNorm2d in eval mode, strides and pads from the Conv node."""
        weight = self.tensor(f"{name}.weight")
        cout, cin, kh, kw = weight.shape
        conv_node, bn_node = self.nodes.get(name), self.nodes.get(f"{name}.bn")
        stride = tuple(conv_node.attr("strides") or (1, 1)) if conv_node else (1, 1)
        pads = tuple(conv_node.attr("pads") or (0,) * 4) if conv_node else (kh // 2,) * 4
        conv = nn.Conv2d(cin, cout, (kh, kw), stride=stride, padding=pads[:2], bias=False)
        _assign(conv.weight, weight)
        eps = float(bn_node.attr("epsilon")) if bn_node else 1e-5
        bn = nn.BatchNorm2d(cout, eps=eps)
        _assign(bn.weight, self.tensor(f"{name}.bn.gamma"))
        _assign(bn.bias, self.tensor(f"{name}.bn.beta"))
        bn.running_mean.copy_(self.tensor(f"{name}.bn.mean"))
        bn.running_var.copy_(self.tensor(f"{name}.bn.var"))
        return nn.Sequential(conv, bn)

    def heads(self, name: str) -> int:
        """Attention heads, from the [heads, head_dim] reshape target models.py stores."""
        return int(self.array(f"{name}.qs.hd")[0])


def _assign(param: torch.Tensor, value: torch.Tensor) -> None:
    if tuple(param.shape) != tuple(value.shape):
        raise ValueError(f"weight shape {tuple(value.shape)} does not fit {tuple(param.shape)}")
    with torch.no_grad():
        param.copy_(value)


# --- MLP -----------------------------------------------------------------------------------

class MLP(nn.Module):
    def __init__(self, w: _Weights):
        super().__init__()
        self.layers = nn.ModuleList(w.linear(f"fc{i}") for i in range(w.count("fc{}.weight")))

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = F.relu(layer(x))
        return F.softmax(self.layers[-1](x), dim=-1)


# --- ResNet-18 -----------------------------------------------------------------------------

class BasicBlock(nn.Module):
    def __init__(self, w: _Weights, name: str):
        super().__init__()
        self.conv1 = w.conv_bn(f"{name}.conv1")
        self.conv2 = w.conv_bn(f"{name}.conv2")
        self.downsample = w.conv_bn(f"{name}.downsample") if w.has(f"{name}.downsample.weight") \
            else None

    def forward(self, x):
        y = self.conv2(F.relu(self.conv1(x)))
        return F.relu(y + (self.downsample(x) if self.downsample is not None else x))


class ResNet18(nn.Module):
    def __init__(self, w: _Weights):
        super().__init__()
        self.conv1 = w.conv_bn("conv1")
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        blocks, stage = [], 1
        while w.has(f"layer{stage}.0.conv1.weight"):
            blocks += [BasicBlock(w, f"layer{stage}.{i}")
                       for i in range(w.count(f"layer{stage}.{{}}.conv1.weight"))]
            stage += 1
        self.blocks = nn.Sequential(*blocks)
        self.fc = w.linear("fc", transposed=False)

    def forward(self, image):
        h = self.blocks(self.pool(F.relu(self.conv1(image))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))


# --- transformers --------------------------------------------------------------------------

class SelfAttention(nn.Module):
    def __init__(self, w: _Weights, name: str):
        super().__init__()
        self.heads = w.heads(name)
        self.q, self.k, self.v = (w.linear(f"{name}.{p}") for p in "qkv")
        self.out = w.linear(f"{name}.out")

    def forward(self, x, mask=None, causal=False):
        batch, seq, d = x.shape
        q, k, v = (p(x).view(batch, seq, self.heads, d // self.heads).transpose(1, 2)
                   for p in (self.q, self.k, self.v))
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
        return self.out(ctx.transpose(1, 2).reshape(batch, seq, d))


class EncoderLayer(nn.Module):
    """Post-LN: h = LN(h + attn(h)); h = LN(h + ff(h)), GELU with erf."""

    def __init__(self, w: _Weights, name: str):
        super().__init__()
        self.attn = SelfAttention(w, f"{name}.attn")
        self.ln1, self.ln2 = w.layer_norm(f"{name}.ln1"), w.layer_norm(f"{name}.ln2")
        self.ff1, self.ff2 = w.linear(f"{name}.ff1"), w.linear(f"{name}.ff2")

    def forward(self, h, mask):
        h = self.ln1(h + self.attn(h, mask))
        return self.ln2(h + self.ff2(F.gelu(self.ff1(h))))


class BertEncoder(nn.Module):
    def __init__(self, w: _Weights):
        super().__init__()
        self.tokens = nn.Embedding.from_pretrained(w.tensor("embed.tokens"))
        self.positions = nn.Embedding.from_pretrained(w.tensor("embed.positions"))
        self.ln = w.layer_norm("embed.ln")
        self.mask_fill = w.scalar("mask.neg")
        self.layers = nn.ModuleList(EncoderLayer(w, f"layer{i}")
                                    for i in range(w.count("layer{}.attn.q.weight")))

    def forward(self, input_ids, attention_mask):
        seq = input_ids.shape[1]
        h = self.ln(self.tokens(input_ids) + self.positions.weight[:seq])
        mask = (1.0 - attention_mask[:, None, None, :].float()) * self.mask_fill
        for layer in self.layers:
            h = layer(h, mask)
        return h


class DecoderBlock(nn.Module):
    """Pre-LN: h += attn(LN(h)) with a causal mask; h += proj(GELU_tanh(fc(LN(h))))."""

    def __init__(self, w: _Weights, name: str):
        super().__init__()
        self.ln1, self.ln2 = w.layer_norm(f"{name}.ln1"), w.layer_norm(f"{name}.ln2")
        self.attn = SelfAttention(w, f"{name}.attn")
        self.fc, self.proj = w.linear(f"{name}.fc"), w.linear(f"{name}.proj")

    def forward(self, h):
        h = h + self.attn(self.ln1(h), causal=True)
        return h + self.proj(F.gelu(self.fc(self.ln2(h)), approximate="tanh"))


class GPT2Decoder(nn.Module):
    def __init__(self, w: _Weights):
        super().__init__()
        self.wte = nn.Embedding.from_pretrained(w.tensor("wte"))
        self.wpe = nn.Embedding.from_pretrained(w.tensor("wpe"))
        self.blocks = nn.ModuleList(DecoderBlock(w, f"h{i}")
                                    for i in range(w.count("h{}.attn.q.weight")))
        self.ln_f = w.layer_norm("ln_f")

    def forward(self, input_ids):
        h = self.wte(input_ids) + self.wpe.weight[:input_ids.shape[1]]
        for block in self.blocks:
            h = block(h)
        return F.linear(self.ln_f(h), self.wte.weight)      # output embedding tied to wte


class Add(nn.Module):
    """The one-Add model that shows a runtime's per-call overhead."""

    def __init__(self, w: _Weights):
        super().__init__()

    def forward(self, x, y):
        return x + y


TORCH_SUITE = {"tiny": Add, "mlp": MLP, "resnet18": ResNet18, "bert": BertEncoder,
               "gpt2": GPT2Decoder}


def from_graph(name: str, graph: Graph) -> nn.Module:
    """The torch module of suite model `name`, in eval mode, with `graph`'s weights."""
    return TORCH_SUITE[name](_Weights(graph)).eval()


def run(module: nn.Module, feeds: dict, input_names=None) -> list[np.ndarray]:
    """Call `module` on NumPy feeds (by graph input name, in graph input order) under
    torch.inference_mode; the outputs as a list of NumPy arrays."""
    return to_numpy(eager_call(module, feeds, input_names)())


def eager_call(module: nn.Module, feeds: dict, input_names=None):
    """A no-argument function that runs `module` once on `feeds` in eager mode, as a user's
    inference loop does: under torch.inference_mode, tensors sharing the NumPy feeds' memory."""
    args = [torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in (input_names or feeds)]

    def call():
        with torch.inference_mode():
            return module(*args)
    return call


def to_numpy(out) -> list[np.ndarray]:
    return [o.numpy() for o in (out if isinstance(out, (tuple, list)) else [out])]


def set_threads(n: int) -> None:
    """Intra-op threads for every later call (torch's default is the number of physical cores)."""
    torch.set_num_threads(n)


def version() -> str:
    return torch.__version__
