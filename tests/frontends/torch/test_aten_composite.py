"""nn layers and functions that torch.export decomposes into core ATen ops (PReLU, 1-d
pooling, reflection padding, LSTM, MultiheadAttention, einsum, norms, sort...), through the
converters vs eager PyTorch, interpreter and native."""

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[torch]')")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from .harness import Family  # noqa: E402

torch.manual_seed(0)
M = {"prelu": nn.PReLU(3), "conv1d": nn.Conv1d(5, 6, 3, padding=1), "lstm": nn.LSTM(5, 6,
     batch_first=True), "mha": nn.MultiheadAttention(8, 2, batch_first=True).eval(),
     "gru": nn.GRU(5, 4, batch_first=True), "conv3d": nn.Conv3d(1, 2, 3, padding=1)}

CASES = {
    "prelu": lambda img, s, x: M["prelu"](img),
    "conv1d": lambda img, s, x: M["conv1d"](s.transpose(1, 2)),
    "avg_pool1d": lambda img, s, x: F.avg_pool1d(s, 2),
    "max_pool1d": lambda img, s, x: F.max_pool1d(s, 2, stride=1),
    "avg_pool_ceil": lambda img, s, x: F.avg_pool2d(img[..., :7, :7], 3, stride=2, padding=1,
                                                    ceil_mode=True),
    "avg_pool_ceil_excl": lambda img, s, x: F.avg_pool2d(img[..., :7, :7], 3, stride=2,
                                                         padding=1, ceil_mode=True,
                                                         count_include_pad=False),
    "max_pool_ceil_pad": lambda img, s, x: F.max_pool2d(img[..., :7, :7], 3, stride=2,
                                                        padding=1, ceil_mode=True),
    "mean_spatial": lambda img, s, x: img.mean(dim=(-1, -2), keepdim=True),
    "mean_spatial_3d": lambda img, s, x: img.unsqueeze(1).mean(dim=(2, 3, 4), keepdim=True),
    "max_pool3d": lambda img, s, x: F.max_pool3d(img, 2, stride=(1, 2, 2), padding=(0, 1, 0)),
    "avg_pool3d": lambda img, s, x: F.avg_pool3d(img.unsqueeze(1), (1, 3, 3), stride=2),
    "max_pool2d_unbatched": lambda img, s, x: F.max_pool2d(s, 2, stride=1, padding=1),
    "avg_pool2d_unbatched": lambda img, s, x: F.avg_pool2d(s, (2, 3)),
    "conv3d": lambda img, s, x: M["conv3d"](img.unsqueeze(1)),
    "reflection_pad": lambda img, s, x: F.pad(img, (1, 2, 2, 1), mode="reflect"),
    "replication_pad": lambda img, s, x: F.pad(img, (1, 2, 2, 1), mode="replicate"),
    "upsample_1d": lambda img, s, x: F.interpolate(s, scale_factor=2),
    "pixel_shuffle": lambda img, s, x: F.pixel_shuffle(img.repeat(1, 4, 1, 1)[:, :8], 2),
    "pixel_unshuffle": lambda img, s, x: F.pixel_unshuffle(img, 2),
    "adaptive_max_1": lambda img, s, x: F.adaptive_max_pool2d(img, 1),
    "adaptive_max_2": lambda img, s, x: F.adaptive_max_pool2d(img, (4, 2)),
    "normalize": lambda img, s, x: F.normalize(x, dim=-1),
    "norm_l1": lambda img, s, x: torch.linalg.vector_norm(s, ord=1, dim=(1, 2)),
    "norm_inf": lambda img, s, x: torch.linalg.vector_norm(s, ord=float("inf"), dim=-1),
    "norm_3": lambda img, s, x: torch.linalg.vector_norm(s, ord=3, dim=1, keepdim=True),
    "rms_norm": lambda img, s, x: F.rms_norm(s, (5,), eps=1e-6),
    "sort": lambda img, s, x: torch.sort(x, dim=-1).values,
    "sort_desc_indices": lambda img, s, x: torch.sort(x, dim=0, descending=True).indices,
    "argsort": lambda img, s, x: torch.argsort(s, dim=1),
    "cumprod": lambda img, s, x: torch.cumprod(x, 1),
    "einsum": lambda img, s, x: torch.einsum("bij,bkj->bik", s, s),
    "baddbmm": lambda img, s, x: torch.baddbmm(s[:, :, :4], s, s.transpose(1, 2)[:, :5],
                                               alpha=0.5, beta=2.0),
    "selu": lambda img, s, x: F.selu(x * 3),
    "celu": lambda img, s, x: F.celu(x * 3, alpha=0.5),
    "mish": lambda img, s, x: F.mish(x * 3),
    "glu": lambda img, s, x: F.glu(s[..., :4]),
    "logsigmoid": lambda img, s, x: F.logsigmoid(x * 3),
    "relu6": lambda img, s, x: F.relu6(x * 8),
    "softmin": lambda img, s, x: F.softmin(s, dim=1),
    "tril": lambda img, s, x: torch.tril(s, diagonal=1),
    "triu": lambda img, s, x: torch.triu(s),
    "roll": lambda img, s, x: torch.roll(s, 2, dims=1),
    "logsumexp": lambda img, s, x: torch.logsumexp(s, dim=-1),
    "lstm": lambda img, s, x: M["lstm"](s)[0],
    "gru": lambda img, s, x: M["gru"](s)[1],
    "multihead_attention": lambda img, s, x: M["mha"](s[..., :4].repeat(1, 1, 2),
                                                      s[..., 1:].repeat(1, 1, 2),
                                                      s[..., :4].repeat(1, 1, 2))[0],
}


@pytest.fixture(scope="module")
def family():
    g = torch.Generator().manual_seed(2)
    return Family(CASES, (torch.randn(2, 3, 8, 8, generator=g),
                          torch.randn(3, 4, 5, generator=g), torch.randn(2, 7, generator=g)),
                  layers=M)


@pytest.mark.parametrize("backend", ["interpreter", "native"])
@pytest.mark.parametrize("name", list(CASES))
def test_composite(family, name, backend):
    family.check(name, backend)
