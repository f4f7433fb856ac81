"""Hugging Face-style transformers written in plain PyTorch, with seeded random weights.

    model = bert(BertConfig())                          # eval mode, weights from torch.manual_seed
    ids, mask = bert_inputs(BertConfig(), batch=2, seq=16)
    hidden = model(ids, mask)

Three architectures, written the way the `transformers` library writes them (explicit
attention-score matmuls and softmax, an additive attention mask; nn.Linear where GPT-2 has
its transposed Conv1D, which computes the same), so that `torch.compile` and `torch.export`
see the ops real checkpoints produce:

    BertEncoder   token + position + token-type embeddings, post-LN encoder layers, the
                  [batch, seq] attention mask (1 = token, 0 = padding) made additive with
                  the dtype's minimum, GELU (erf)
    GPT2Decoder   pre-LN blocks, fused qkv projection split in three, a lower-triangular
                  causal mask kept as a bool buffer and applied with torch.where, GELU (tanh),
                  logits through the tied token embedding
    ViTEncoder    patch embedding by a strided Conv2d, a learned CLS token concatenated in
                  front, learned position embeddings, pre-LN encoder, LayerNorm + classifier
                  head on the CLS token

The default configs are small (a few layers of width 64) so that tests compile them in
seconds; nothing here downloads a checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class BertConfig:
    vocab: int = 100
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    intermediate: int = 128
    max_positions: int = 64
    type_vocab: int = 2
    eps: float = 1e-12


@dataclass(frozen=True)
class GPT2Config:
    vocab: int = 100
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    max_positions: int = 64
    eps: float = 1e-5


@dataclass(frozen=True)
class ViTConfig:
    image: int = 32
    patch: int = 8
    channels: int = 3
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    intermediate: int = 128
    classes: int = 10
    eps: float = 1e-12


# --- attention -------------------------------------------------------------------------------

def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[batch, seq, hidden] -> [batch, heads, seq, head_dim]"""
    batch, seq, hidden = x.shape
    return x.view(batch, seq, heads, hidden // heads).permute(0, 2, 1, 3)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """[batch, heads, seq, head_dim] -> [batch, seq, hidden]"""
    batch, heads, seq, head_dim = x.shape
    return x.permute(0, 2, 1, 3).contiguous().view(batch, seq, heads * head_dim)


def attend(q, k, v, additive_mask=None) -> torch.Tensor:
    """softmax(q kᵀ / √d + mask) v, as the eager attention of `transformers` computes it."""
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    if additive_mask is not None:
        scores = scores + additive_mask
    return torch.matmul(F.softmax(scores, dim=-1), v)


class SelfAttention(nn.Module):
    """Separate query/key/value projections (BERT, ViT)."""

    def __init__(self, hidden: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))
        self.output = nn.Linear(hidden, hidden)

    def forward(self, h, additive_mask=None):
        q, k, v = (split_heads(p(h), self.heads) for p in (self.query, self.key, self.value))
        return self.output(merge_heads(attend(q, k, v, additive_mask)))


# --- BERT ------------------------------------------------------------------------------------

class BertLayer(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.attention = SelfAttention(c.hidden, c.heads)
        self.attention_norm = nn.LayerNorm(c.hidden, eps=c.eps)
        self.intermediate = nn.Linear(c.hidden, c.intermediate)
        self.output = nn.Linear(c.intermediate, c.hidden)
        self.output_norm = nn.LayerNorm(c.hidden, eps=c.eps)

    def forward(self, h, additive_mask):
        h = self.attention_norm(h + self.attention(h, additive_mask))
        return self.output_norm(h + self.output(F.gelu(self.intermediate(h))))


class BertEncoder(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab, c.hidden)
        self.position_embeddings = nn.Embedding(c.max_positions, c.hidden)
        self.token_type_embeddings = nn.Embedding(c.type_vocab, c.hidden)
        self.embeddings_norm = nn.LayerNorm(c.hidden, eps=c.eps)
        self.layers = nn.ModuleList(BertLayer(c) for _ in range(c.layers))
        self.register_buffer("position_ids", torch.arange(c.max_positions)[None, :],
                             persistent=False)

    def forward(self, input_ids, attention_mask):
        seq = input_ids.shape[1]
        positions = self.position_ids[:, :seq]
        h = (self.word_embeddings(input_ids) + self.position_embeddings(positions)
             + self.token_type_embeddings(torch.zeros_like(input_ids)))
        h = self.embeddings_norm(h)
        # [batch, seq] of 1/0 -> [batch, 1, 1, seq] of 0 / most negative float
        extended = attention_mask[:, None, None, :].to(h.dtype)
        additive = (1.0 - extended) * torch.finfo(h.dtype).min
        for layer in self.layers:
            h = layer(h, additive)
        return h


# --- GPT-2 -----------------------------------------------------------------------------------

class GPT2Attention(nn.Module):
    def __init__(self, c: GPT2Config):
        super().__init__()
        self.heads = c.heads
        self.c_attn = nn.Linear(c.hidden, 3 * c.hidden)
        self.c_proj = nn.Linear(c.hidden, c.hidden)
        causal = torch.tril(torch.ones(c.max_positions, c.max_positions, dtype=torch.bool))
        self.register_buffer("bias", causal[None, None], persistent=False)

    def forward(self, h):
        seq = h.shape[1]
        q, k, v = self.c_attn(h).split(h.shape[-1], dim=2)
        q, k, v = (split_heads(t, self.heads) for t in (q, k, v))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
        causal = self.bias[:, :, :seq, :seq]
        scores = torch.where(causal, scores, torch.finfo(scores.dtype).min)
        return self.c_proj(merge_heads(torch.matmul(F.softmax(scores, dim=-1), v)))


class GPT2Block(nn.Module):
    def __init__(self, c: GPT2Config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(c.hidden, eps=c.eps)
        self.attn = GPT2Attention(c)
        self.ln_2 = nn.LayerNorm(c.hidden, eps=c.eps)
        self.c_fc = nn.Linear(c.hidden, 4 * c.hidden)
        self.c_proj = nn.Linear(4 * c.hidden, c.hidden)

    def forward(self, h):
        h = h + self.attn(self.ln_1(h))
        return h + self.c_proj(F.gelu(self.c_fc(self.ln_2(h)), approximate="tanh"))


class GPT2Decoder(nn.Module):
    def __init__(self, c: GPT2Config):
        super().__init__()
        self.wte = nn.Embedding(c.vocab, c.hidden)
        self.wpe = nn.Embedding(c.max_positions, c.hidden)
        self.h = nn.ModuleList(GPT2Block(c) for _ in range(c.layers))
        self.ln_f = nn.LayerNorm(c.hidden, eps=c.eps)

    def forward(self, input_ids):
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        h = self.wte(input_ids) + self.wpe(positions)[None]
        for block in self.h:
            h = block(h)
        return F.linear(self.ln_f(h), self.wte.weight)      # lm head tied to wte


# --- ViT -------------------------------------------------------------------------------------

class ViTLayer(nn.Module):
    def __init__(self, c: ViTConfig):
        super().__init__()
        self.layernorm_before = nn.LayerNorm(c.hidden, eps=c.eps)
        self.attention = SelfAttention(c.hidden, c.heads)
        self.layernorm_after = nn.LayerNorm(c.hidden, eps=c.eps)
        self.intermediate = nn.Linear(c.hidden, c.intermediate)
        self.output = nn.Linear(c.intermediate, c.hidden)

    def forward(self, h):
        h = h + self.attention(self.layernorm_before(h))
        return h + self.output(F.gelu(self.intermediate(self.layernorm_after(h))))


class ViTEncoder(nn.Module):
    def __init__(self, c: ViTConfig):
        super().__init__()
        patches = (c.image // c.patch) ** 2
        self.patch_embeddings = nn.Conv2d(c.channels, c.hidden, c.patch, stride=c.patch)
        self.cls_token = nn.Parameter(torch.randn(1, 1, c.hidden) * 0.02)
        self.position_embeddings = nn.Parameter(torch.randn(1, patches + 1, c.hidden) * 0.02)
        self.layers = nn.ModuleList(ViTLayer(c) for _ in range(c.layers))
        self.layernorm = nn.LayerNorm(c.hidden, eps=c.eps)
        self.classifier = nn.Linear(c.hidden, c.classes)

    def forward(self, pixel_values):
        x = self.patch_embeddings(pixel_values).flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        h = torch.cat([cls, x], dim=1) + self.position_embeddings
        for layer in self.layers:
            h = layer(h)
        return self.classifier(self.layernorm(h)[:, 0])


# --- building and feeding --------------------------------------------------------------------

def _build(cls, config, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = cls(config).eval()
    with torch.no_grad():                   # LayerNorm's weights are 1/0 at init: randomize
        for name, p in model.named_parameters():
            if "norm" in name or name.startswith("ln") or ".ln_" in name:
                p.add_(torch.randn_like(p) * 0.1)
    return model


def bert(config: BertConfig = BertConfig(), seed: int = 0) -> BertEncoder:
    return _build(BertEncoder, config, seed)


def gpt2(config: GPT2Config = GPT2Config(), seed: int = 0) -> GPT2Decoder:
    return _build(GPT2Decoder, config, seed)


def vit(config: ViTConfig = ViTConfig(), seed: int = 0) -> ViTEncoder:
    return _build(ViTEncoder, config, seed)


def bert_inputs(config: BertConfig = BertConfig(), batch: int = 2, seq: int = 16,
                seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and an attention mask whose last row pads its final quarter."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, config.vocab, (batch, seq), generator=g)
    mask = torch.ones(batch, seq, dtype=torch.int64)
    mask[-1, seq - seq // 4:] = 0
    return ids, mask


def gpt2_inputs(config: GPT2Config = GPT2Config(), batch: int = 2, seq: int = 16,
                seed: int = 1) -> tuple[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, config.vocab, (batch, seq), generator=g),)


def vit_inputs(config: ViTConfig = ViTConfig(), batch: int = 2,
               seed: int = 1) -> tuple[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, config.channels, config.image, config.image, generator=g),)


HF_MODELS = {"bert": (bert, bert_inputs), "gpt2": (gpt2, gpt2_inputs), "vit": (vit, vit_inputs)}
