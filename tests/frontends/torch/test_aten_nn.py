"""Convolution, matmul, normalization, softmax, pooling and attention converters vs eager
PyTorch, interpreter and native; three times: decomposed by torch.export, as torch.export
records them (linear, layer_norm, batch_norm, softmax.int...), and as make_fx dispatches them
(silu, native_batch_norm, flash attention...)."""

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[torch]')")

import torch.nn.functional as F  # noqa: E402

from .harness import Family  # noqa: E402

torch.manual_seed(0)
W = {
    "conv": torch.randn(4, 3, 3, 3) * 0.3, "conv_b": torch.randn(4),
    "dw": torch.randn(6, 1, 3, 3) * 0.3, "convt": torch.randn(3, 2, 3, 3) * 0.3,
    "lin": torch.randn(8, 5) * 0.3, "lin_b": torch.randn(8),
    "bn_mean": torch.randn(3), "bn_var": torch.rand(3) + 0.5, "bn_w": torch.randn(3),
    "bn_b": torch.randn(3), "gn_w": torch.randn(6), "gn_b": torch.randn(6),
    "ln_w": torch.randn(5), "ln_b": torch.randn(5),
}

CASES = {
    "conv2d": lambda img, s, q, k, v, mask: F.conv2d(img, W["conv"], W["conv_b"], padding=1),
    "conv2d_stride": lambda img, s, q, k, v, mask: F.conv2d(img, W["conv"], stride=2),
    "conv2d_dilated": lambda img, s, q, k, v, mask: F.conv2d(img, W["conv"], dilation=2,
                                                             padding=(2, 1)),
    "conv2d_groups": lambda img, s, q, k, v, mask: F.conv2d(img.repeat(1, 2, 1, 1), W["dw"],
                                                            groups=6, padding=1),
    "conv_transpose": lambda img, s, q, k, v, mask: F.conv_transpose2d(img, W["convt"],
                                                                       stride=2),
    "linear": lambda img, s, q, k, v, mask: F.linear(s, W["lin"], W["lin_b"]),
    "linear_nobias": lambda img, s, q, k, v, mask: F.linear(s, W["lin"]),
    "matmul": lambda img, s, q, k, v, mask: q @ k.transpose(-1, -2),
    "mm": lambda img, s, q, k, v, mask: torch.mm(s[0], W["lin"].t()),
    "bmm": lambda img, s, q, k, v, mask: torch.bmm(s, s.transpose(1, 2)),
    "addmm_beta": lambda img, s, q, k, v, mask: torch.addmm(W["lin_b"], s[0], W["lin"].t(),
                                                            beta=0.5, alpha=2.0),
    "layer_norm": lambda img, s, q, k, v, mask: F.layer_norm(s, (5,), W["ln_w"], W["ln_b"]),
    "layer_norm_plain": lambda img, s, q, k, v, mask: F.layer_norm(s, (4, 5), eps=1e-3),
    "batch_norm": lambda img, s, q, k, v, mask: F.batch_norm(img, W["bn_mean"], W["bn_var"],
                                                             W["bn_w"], W["bn_b"]),
    "softmax": lambda img, s, q, k, v, mask: F.softmax(s, dim=-1),
    "softmax_dim1": lambda img, s, q, k, v, mask: F.softmax(s, dim=1),
    "log_softmax": lambda img, s, q, k, v, mask: F.log_softmax(s, dim=-1),
    "max_pool": lambda img, s, q, k, v, mask: F.max_pool2d(img, 3, stride=2, padding=1),
    "max_pool_ceil": lambda img, s, q, k, v, mask: F.max_pool2d(img, 2, ceil_mode=True),
    "avg_pool": lambda img, s, q, k, v, mask: F.avg_pool2d(img, 2),
    "avg_pool_pad": lambda img, s, q, k, v, mask: F.avg_pool2d(img, 3, stride=2, padding=1),
    "avg_pool_pad_excl": lambda img, s, q, k, v, mask: F.avg_pool2d(
        img, 3, stride=2, padding=1, count_include_pad=False),
    "adaptive_avg_1": lambda img, s, q, k, v, mask: F.adaptive_avg_pool2d(img, 1),
    "adaptive_avg_2": lambda img, s, q, k, v, mask: F.adaptive_avg_pool2d(img, (2, 4)),
    "sdpa": lambda img, s, q, k, v, mask: F.scaled_dot_product_attention(q, k, v),
    "sdpa_causal": lambda img, s, q, k, v, mask: F.scaled_dot_product_attention(
        q, k, v, is_causal=True),
    "sdpa_bool_mask": lambda img, s, q, k, v, mask: F.scaled_dot_product_attention(
        q, k, v, attn_mask=mask),
    "sdpa_float_mask": lambda img, s, q, k, v, mask: F.scaled_dot_product_attention(
        q, k, v, attn_mask=mask.float() * -3.0, scale=0.3),
    "sdpa_row_masked_out": lambda img, s, q, k, v, mask: F.scaled_dot_product_attention(
        q, k, v, attn_mask=mask & (torch.arange(6) != 2)[:, None]),
    "sdpa_ninf_mask_causal": lambda img, s, q, k, v, mask: F.scaled_dot_product_attention(
        q, k, v, attn_mask=torch.where(mask, 0.0, float("-inf")), is_causal=True),
    "sdpa_broadcast_mask": lambda img, s, q, k, v, mask: F.scaled_dot_product_attention(
        q, k, v, attn_mask=mask[None, None, :1]),
    "group_norm": lambda img, s, q, k, v, mask: F.group_norm(img.repeat(1, 2, 1, 1), 3,
                                                             W["gn_w"], W["gn_b"]),
    "group_norm_plain": lambda img, s, q, k, v, mask: F.group_norm(img, 1),
    "instance_norm": lambda img, s, q, k, v, mask: F.instance_norm(img, weight=W["bn_w"],
                                                                   bias=W["bn_b"]),
    "upsample_nearest": lambda img, s, q, k, v, mask: F.interpolate(img, scale_factor=2),
    "upsample_nearest_size": lambda img, s, q, k, v, mask: F.interpolate(img, size=(12, 5)),
    "upsample_bilinear": lambda img, s, q, k, v, mask: F.interpolate(
        img, scale_factor=2, mode="bilinear"),
    "upsample_bilinear_size": lambda img, s, q, k, v, mask: F.interpolate(
        img, size=(5, 11), mode="bilinear"),
    "upsample_bilinear_corners": lambda img, s, q, k, v, mask: F.interpolate(
        img, size=(13, 6), mode="bilinear", align_corners=True),
    "silu": lambda img, s, q, k, v, mask: F.silu(s),
    "hardswish": lambda img, s, q, k, v, mask: F.hardswish(s * 4),
    "softplus": lambda img, s, q, k, v, mask: F.softplus(s * 10, beta=2, threshold=5),
}


def inputs():
    g = torch.Generator().manual_seed(1)
    img = torch.randn(2, 3, 8, 8, generator=g)
    s = torch.randn(3, 4, 5, generator=g)
    q, k, v = (torch.randn(2, 2, 6, 8, generator=g) for _ in range(3))
    mask = torch.rand(6, 6, generator=g) > 0.3
    mask[:, 0] = True                      # every row attends somewhere
    return img, s, q, k, v, mask


@pytest.fixture(scope="module", params=["export", "export_raw", "make_fx"])
def family(request):
    return Family(CASES, inputs(), trace=request.param)


@pytest.mark.parametrize("backend", ["interpreter", "native"])
@pytest.mark.parametrize("name", list(CASES))
def test_nn(family, name, backend):
    family.check(name, backend)
