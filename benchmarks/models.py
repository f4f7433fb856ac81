"""The benchmark model suite, built in code with seeded random weights.

MLP, ResNet-18, a BERT-style encoder and a GPT-2-style decoder. The graphs are written the way
exporters (torch.onnx) write them: LayerNorm, GELU and attention spelled out in primitive ops,
reshape targets computed from Shape at run time, scaled dot-product attention as MatMul / Div /
Add mask / Softmax / MatMul. That is what kiln's optimizer meets in real ONNX files.

    SUITE = {"mlp": mlp, "resnet18": resnet18, "bert": bert_encoder, "gpt2": gpt2_decoder}
    graph = SUITE["bert"]()            # a kiln Graph; export_model(graph) gives the ONNX model
    feeds = example_inputs(graph)
"""

from __future__ import annotations

import math

import numpy as np

from kiln.ir import GraphBuilder, tensor
from kiln.ir.dtypes import DType

f32, i64 = DType.float32, DType.int64


class _Weights:
    def __init__(self, b: GraphBuilder, seed: int):
        self.b, self.rng = b, np.random.default_rng(seed)

    def normal(self, name, *shape, scale=None):
        fan_in = shape[0] if len(shape) == 2 else int(np.prod(shape[1:])) if len(shape) > 1 else 1
        scale = scale if scale is not None else math.sqrt(1.0 / max(fan_in, 1))
        return self.b.constant((self.rng.standard_normal(shape) * scale).astype(np.float32), name)

    def const(self, name, value, dtype=np.float32):
        return self.b.constant(np.asarray(value, dtype), name)


def _ints(w: _Weights, name, values):
    return w.const(name, values, np.int64)


# --- MLP -----------------------------------------------------------------------------------

def mlp(seed: int = 0, sizes=(784, 512, 256, 10)):
    b = GraphBuilder("mlp")
    w = _Weights(b, seed)
    h = b.input("x", tensor(f32, "batch", sizes[0]))
    for i, (k, n) in enumerate(zip(sizes[:-1], sizes[1:])):
        h = b.Add(b.MatMul(h, w.normal(f"fc{i}.weight", k, n)), w.normal(f"fc{i}.bias", n, scale=0.1))
        if i < len(sizes) - 2:
            h = b.Relu(h)
    b.output(b.Softmax(h, axis=-1))
    return b.graph


# --- ResNet-18 -----------------------------------------------------------------------------

def _conv_bn(b, w, x, cin, cout, k, stride, name, relu=True):
    y = b.Conv(x, w.normal(f"{name}.weight", cout, cin, k, k), kernel_shape=[k, k],
               strides=[stride, stride], pads=[k // 2] * 4, name=name)
    y = b.BatchNormalization(
        y, w.const(f"{name}.bn.gamma", w.rng.uniform(0.5, 1.5, cout)),
        w.const(f"{name}.bn.beta", w.rng.uniform(-0.1, 0.1, cout)),
        w.const(f"{name}.bn.mean", w.rng.uniform(-0.1, 0.1, cout)),
        w.const(f"{name}.bn.var", w.rng.uniform(0.5, 1.5, cout)), name=f"{name}.bn")
    return b.Relu(y) if relu else y


def resnet18(seed: int = 0, image: int = 224, classes: int = 1000):
    b = GraphBuilder("resnet18")
    w = _Weights(b, seed)
    x = b.input("image", tensor(f32, "batch", 3, image, image))
    h = _conv_bn(b, w, x, 3, 64, 7, 2, "conv1")
    h = b.MaxPool(h, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for stage, cout in enumerate((64, 128, 256, 512)):
        for block in range(2):
            stride = 2 if stage > 0 and block == 0 else 1
            name = f"layer{stage + 1}.{block}"
            y = _conv_bn(b, w, h, cin, cout, 3, stride, f"{name}.conv1")
            y = _conv_bn(b, w, y, cout, cout, 3, 1, f"{name}.conv2", relu=False)
            skip = h if stride == 1 and cin == cout else \
                _conv_bn(b, w, h, cin, cout, 1, stride, f"{name}.downsample", relu=False)
            h = b.Relu(b.Add(y, skip))
            cin = cout
    h = b.Flatten(b.GlobalAveragePool(h), axis=1)
    b.output(b.Gemm(h, w.normal("fc.weight", classes, 512), w.normal("fc.bias", classes, scale=0.1),
                    transB=1))
    return b.graph


# --- transformer pieces, spelled out the way exporters write them ---------------------------

def _layer_norm(b, w, x, d, name):
    """ReduceMean / Sub / Pow / ReduceMean / Add eps / Sqrt / Div / Mul gamma / Add beta."""
    axes = _ints(w, f"{name}.axes", [-1])
    mean = b.ReduceMean(x, axes, keepdims=1)
    centered = b.Sub(x, mean)
    var = b.ReduceMean(b.Pow(centered, w.const(f"{name}.two", 2.0)), axes, keepdims=1)
    std = b.Sqrt(b.Add(var, w.const(f"{name}.eps", 1e-5)))
    normed = b.Div(centered, std)
    return b.Add(b.Mul(normed, w.const(f"{name}.gamma", w.rng.uniform(0.8, 1.2, d))),
                 w.const(f"{name}.beta", w.rng.uniform(-0.1, 0.1, d)))


def _gelu_erf(b, w, x, name):
    """0.5 * x * (1 + erf(x / sqrt(2)))."""
    inner = b.Erf(b.Div(x, w.const(f"{name}.sqrt2", math.sqrt(2.0))))
    return b.Mul(b.Mul(x, b.Add(inner, w.const(f"{name}.one", 1.0))), w.const(f"{name}.half", 0.5))


def _gelu_tanh(b, w, x, name):
    """0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))."""
    cube = b.Pow(x, w.const(f"{name}.three", 3.0))
    inner = b.Add(x, b.Mul(cube, w.const(f"{name}.k", 0.044715)))
    t = b.Tanh(b.Mul(inner, w.const(f"{name}.c", math.sqrt(2.0 / math.pi))))
    return b.Mul(b.Mul(w.const(f"{name}.half", 0.5), x), b.Add(t, w.const(f"{name}.one", 1.0)))


def _linear(b, w, x, k, n, name):
    return b.Add(b.MatMul(x, w.normal(f"{name}.weight", k, n)), w.normal(f"{name}.bias", n, scale=0.02))


def _split_heads(b, w, x, heads, dh, name):
    """[batch, seq, heads*dh] -> [batch, heads, seq, dh], the target shape built from Shape."""
    shape = b.Shape(x)
    batch = b.Unsqueeze(b.Gather(shape, _ints(w, f"{name}.i0", 0), axis=0), _ints(w, f"{name}.ax", [0]))
    seq = b.Unsqueeze(b.Gather(shape, _ints(w, f"{name}.i1", 1), axis=0), _ints(w, f"{name}.ax1", [0]))
    target = b.Concat(batch, seq, _ints(w, f"{name}.hd", [heads, dh]), axis=0)
    return b.Transpose(b.Reshape(x, target), perm=[0, 2, 1, 3])


def _attention(b, w, x, mask, d, heads, name):
    dh = d // heads
    q = _split_heads(b, w, _linear(b, w, x, d, d, f"{name}.q"), heads, dh, f"{name}.qs")
    k = _split_heads(b, w, _linear(b, w, x, d, d, f"{name}.k"), heads, dh, f"{name}.ks")
    v = _split_heads(b, w, _linear(b, w, x, d, d, f"{name}.v"), heads, dh, f"{name}.vs")
    scores = b.Div(b.MatMul(q, b.Transpose(k, perm=[0, 1, 3, 2])), w.const(f"{name}.scale", math.sqrt(dh)))
    probs = b.Softmax(b.Add(scores, mask), axis=-1)
    ctx = b.Transpose(b.MatMul(probs, v), perm=[0, 2, 1, 3])
    ctx = b.Reshape(ctx, _ints(w, f"{name}.merge", [0, 0, d]))
    return _linear(b, w, ctx, d, d, f"{name}.out")


def bert_encoder(seed: int = 0, layers: int = 2, d: int = 128, heads: int = 4, vocab: int = 1000,
                 max_seq: int = 128):
    """Post-LN encoder; inputs token ids and a 0/1 attention mask of shape [batch, seq]."""
    b = GraphBuilder("bert_encoder")
    w = _Weights(b, seed)
    ids = b.input("input_ids", tensor(i64, "batch", "seq"))
    mask = b.input("attention_mask", tensor(i64, "batch", "seq"))
    positions = b.Range(_ints(w, "pos.start", 0), b.Gather(b.Shape(ids), _ints(w, "pos.i", 1), axis=0),
                        _ints(w, "pos.delta", 1))
    h = b.Add(b.Gather(w.normal("embed.tokens", vocab, d, scale=0.02), ids, axis=0),
              b.Gather(w.normal("embed.positions", max_seq, d, scale=0.02), positions, axis=0))
    h = _layer_norm(b, w, h, d, "embed.ln")
    # (1 - mask) * -10000, broadcast to [batch, 1, 1, seq]
    m = b.Cast(b.Unsqueeze(mask, _ints(w, "mask.axes", [1, 2])), to=f32)
    m = b.Mul(b.Sub(w.const("mask.one", 1.0), m), w.const("mask.neg", -10000.0))
    for i in range(layers):
        name = f"layer{i}"
        h = _layer_norm(b, w, b.Add(h, _attention(b, w, h, m, d, heads, f"{name}.attn")), d, f"{name}.ln1")
        ff = _gelu_erf(b, w, _linear(b, w, h, d, 4 * d, f"{name}.ff1"), f"{name}.gelu")
        h = _layer_norm(b, w, b.Add(h, _linear(b, w, ff, 4 * d, d, f"{name}.ff2")), d, f"{name}.ln2")
    b.output(h)
    return b.graph


def gpt2_decoder(seed: int = 0, layers: int = 2, d: int = 128, heads: int = 4, vocab: int = 1000,
                 max_seq: int = 128):
    """Pre-LN decoder with a causal mask and tied output embedding; outputs logits."""
    b = GraphBuilder("gpt2_decoder")
    w = _Weights(b, seed)
    ids = b.input("input_ids", tensor(i64, "batch", "seq"))
    seq = b.Gather(b.Shape(ids), _ints(w, "pos.i", 1), axis=0)
    positions = b.Range(_ints(w, "pos.start", 0), seq, _ints(w, "pos.delta", 1))
    wte = w.normal("wte", vocab, d, scale=0.02)
    h = b.Add(b.Gather(wte, ids, axis=0), b.Gather(w.normal("wpe", max_seq, d, scale=0.02), positions, axis=0))
    # causal mask: -inf above the diagonal, sliced from a [max_seq, max_seq] constant
    tri = np.triu(np.full((max_seq, max_seq), -1e9, np.float32), k=1)
    ends = b.Unsqueeze(seq, _ints(w, "mask.ax", [0]))
    causal = b.Slice(w.const("mask.causal", tri), _ints(w, "mask.starts", [0, 0]), b.Concat(ends, ends, axis=0),
                     _ints(w, "mask.axes", [0, 1]))
    for i in range(layers):
        name = f"h{i}"
        a = _attention(b, w, _layer_norm(b, w, h, d, f"{name}.ln1"), causal, d, heads, f"{name}.attn")
        h = b.Add(h, a)
        ff = _gelu_tanh(b, w, _linear(b, w, _layer_norm(b, w, h, d, f"{name}.ln2"), d, 4 * d, f"{name}.fc"),
                        f"{name}.gelu")
        h = b.Add(h, _linear(b, w, ff, 4 * d, d, f"{name}.proj"))
    h = _layer_norm(b, w, h, d, "ln_f")
    b.output(b.MatMul(h, b.Transpose(wte, perm=[1, 0])))
    return b.graph


SUITE = {"mlp": mlp, "resnet18": resnet18, "bert": bert_encoder, "gpt2": gpt2_decoder}


def example_inputs(graph, batch: int = 2, seq: int = 16, seed: int = 0) -> dict:
    """Inputs for a suite model: images/features are normal, token ids in range, masks all ones
    except a padded tail in the last row."""
    rng = np.random.default_rng(seed)
    sizes = {"batch": batch, "seq": seq}
    feeds = {}
    for v in graph.inputs:
        shape = [sizes.get(d, d) if isinstance(d, str) else d for d in v.type.shape]
        if v.name == "input_ids":
            feeds[v.name] = rng.integers(0, 1000, shape).astype(np.int64)
        elif v.name == "attention_mask":
            m = np.ones(shape, np.int64)
            m[-1, shape[1] // 2:] = 0
            feeds[v.name] = m
        else:
            feeds[v.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds
