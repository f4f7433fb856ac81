"""View, movement and indexing converters vs eager PyTorch (interpreter and native)."""

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[torch]')")

import torch.nn.functional as F  # noqa: E402

from .harness import Family  # noqa: E402

CASES = {
    "view": lambda x, e, ids, idx: x.view(6, 10),
    "reshape_neg": lambda x, e, ids, idx: x.reshape(-1, 5) * 2,
    "flatten": lambda x, e, ids, idx: torch.flatten(x, 1),
    "view_empty": lambda x, e, ids, idx: x[:, :0].reshape(0, 3, 5) + 1,
    "flatten_empty": lambda x, e, ids, idx: torch.flatten(x[:0], 1) + 1,
    "permute": lambda x, e, ids, idx: x.permute(2, 0, 1) + 0,
    "transpose": lambda x, e, ids, idx: x.transpose(-1, 0) + 0,
    "t": lambda x, e, ids, idx: e.t() + 0,
    "unsqueeze": lambda x, e, ids, idx: x.unsqueeze(1) + 0,
    "unsqueeze_neg": lambda x, e, ids, idx: x.unsqueeze(-1) + 0,
    "squeeze_dim": lambda x, e, ids, idx: x[:, :1].squeeze(1) + 0,
    "squeeze_all": lambda x, e, ids, idx: x[:1, :, :1].squeeze() + 0,
    "expand": lambda x, e, ids, idx: e[:, :1].expand(7, 5) + 0,
    "expand_lead": lambda x, e, ids, idx: e.expand(2, 7, 5) + 0,
    "cat": lambda x, e, ids, idx: torch.cat([x, x * 2], dim=-1),
    "cat_legacy_empty": lambda x, e, ids, idx: torch.cat([x, torch.zeros(0), x + 1], dim=1),
    "slice": lambda x, e, ids, idx: x[:, 1:3] + 0,
    "slice_step": lambda x, e, ids, idx: x[..., ::2] + 0,
    "slice_neg": lambda x, e, ids, idx: x[:, -2:] + 0,
    "select": lambda x, e, ids, idx: x[:, 2] + 0,
    "select_neg": lambda x, e, ids, idx: x[-1] + 0,
    "index": lambda x, e, ids, idx: e[idx] + 0,
    "index_dim1": lambda x, e, ids, idx: x[:, idx % 4] + 0,
    "index_two": lambda x, e, ids, idx: x[idx % 2, idx % 4] + 0,
    "split": lambda x, e, ids, idx: torch.split(x, [1, 3], dim=1)[1] + 0,
    "split_even": lambda x, e, ids, idx: torch.split(x, 2, dim=2)[2] + 0,
    "chunk": lambda x, e, ids, idx: torch.chunk(x, 2, dim=1)[0] * 3,
    "unbind": lambda x, e, ids, idx: torch.unbind(x, 1)[3] + 0,
    "repeat": lambda x, e, ids, idx: e.repeat(2, 1, 3),
    "pad": lambda x, e, ids, idx: F.pad(x, (1, 2, 0, 1), value=0.5),
    "flip": lambda x, e, ids, idx: torch.flip(x, [0, 2]),
    "index_select": lambda x, e, ids, idx: torch.index_select(e, 0, idx),
    "cumsum": lambda x, e, ids, idx: torch.cumsum(x, 1),
    "cumsum_int": lambda x, e, ids, idx: torch.cumsum(ids, -1),
    "topk": lambda x, e, ids, idx: torch.topk(x, 2).values,
    "topk_smallest_indices": lambda x, e, ids, idx: torch.topk(x, 3, dim=1, largest=False)[1],
    "gather": lambda x, e, ids, idx: torch.gather(x, 2, (idx % 4).view(1, 1, 4).expand(3, 4, 4)),
    "scatter": lambda x, e, ids, idx: torch.scatter(x, 1, (idx % 4).view(1, 4, 1).expand(
        3, 4, 5), x * 10),
    "scatter_value": lambda x, e, ids, idx: x.scatter(2, idx.view(1, 1, 4).expand(2, 4, 4),
                                                      -1.0),
    "scatter_add": lambda x, e, ids, idx: x.scatter_add(0, torch.zeros(2, 4, 5, dtype=torch.long),
                                                        x[:2]),
    "index_put": lambda x, e, ids, idx: e.index_put((idx,), torch.tensor(9.0)),
    "index_put_rows": lambda x, e, ids, idx: e.index_put((idx[:2],), e[:2] * 3),
    "index_put_accumulate": lambda x, e, ids, idx: e.index_put((idx % 2, idx), torch.ones(4),
                                                               accumulate=True),
    "slice_scatter": lambda x, e, ids, idx: torch.slice_scatter(x, x[:, :2] * 5, 1, 1, 3),
    "slice_scatter_end": lambda x, e, ids, idx: torch.slice_scatter(e, e[-3:] * 0, 0, 4),
    "select_scatter": lambda x, e, ids, idx: torch.select_scatter(x, x[:, 0] * 2, 1, 2),
    "select_scatter_neg": lambda x, e, ids, idx: torch.select_scatter(x, x[0] * 2, 0, -1),
    "embedding": lambda x, e, ids, idx: F.embedding(ids, e),
    "stack": lambda x, e, ids, idx: torch.stack([x, -x], dim=1),
    "contiguous": lambda x, e, ids, idx: x.transpose(0, 1).contiguous().view(4, -1),
    "copy": lambda x, e, ids, idx: x.clone().copy_(ids[:1, :5].unsqueeze(0)),
    "alias": lambda x, e, ids, idx: torch.ops.aten.alias(x) * 2,
    "ones_like": lambda x, e, ids, idx: torch.ones_like(ids) * 3,
    "empty_like": lambda x, e, ids, idx: torch.empty_like(x).fill_(2.0) * x,
    "new_full": lambda x, e, ids, idx: x.new_full((2, 5), 4.0) + e[:2],
    "new_ones": lambda x, e, ids, idx: ids.new_ones(3) + 1,
    "zeros_like": lambda x, e, ids, idx: torch.zeros_like(x) + x,
    "ones": lambda x, e, ids, idx: torch.ones(3, 5) + e[:3],
    "full": lambda x, e, ids, idx: torch.full((2, 5), 7.0) * e[:2],
    "arange": lambda x, e, ids, idx: torch.arange(5) * 2,
    "arange_float": lambda x, e, ids, idx: torch.arange(0.5, 3.0, 0.25) + 0,
    "new_zeros": lambda x, e, ids, idx: x.new_zeros(2, 3) + 1,
    "sum": lambda x, e, ids, idx: x.sum(dim=(0, 2)),
    "sum_all": lambda x, e, ids, idx: x.sum(),
    "sum_keep": lambda x, e, ids, idx: x.sum(dim=-1, keepdim=True),
    "sum_bool": lambda x, e, ids, idx: (x > 0).sum(dim=1),
    "mean_all": lambda x, e, ids, idx: x.mean(),
    "all_all": lambda x, e, ids, idx: (x > -3).all(),
    "any_dims": lambda x, e, ids, idx: (x > 1).any(dim=(0, 2)),
    "mean": lambda x, e, ids, idx: x.mean(dim=1),
    "amax": lambda x, e, ids, idx: x.amax(dim=-1),
    "amin": lambda x, e, ids, idx: x.amin(dim=(0, 1), keepdim=True),
    "max_dim": lambda x, e, ids, idx: x.max(dim=1).values,
    "max_dim_indices": lambda x, e, ids, idx: x.max(dim=1).indices,
    "argmax": lambda x, e, ids, idx: x.argmax(dim=-1),
    "argmin_all": lambda x, e, ids, idx: x.argmin(),
    "any": lambda x, e, ids, idx: (x > 1).any(dim=-1),
    "all": lambda x, e, ids, idx: (x > -1).all(dim=-1),
    "prod": lambda x, e, ids, idx: x.prod(dim=1),
    "var": lambda x, e, ids, idx: x.var(dim=-1),
    "std": lambda x, e, ids, idx: x.std(dim=0, keepdim=True),
}


@pytest.fixture(scope="module")
def family():
    torch.manual_seed(0)
    x = torch.randn(3, 4, 5)
    e = torch.randn(7, 5)
    ids = torch.randint(0, 7, (2, 6))
    idx = torch.tensor([4, 0, 2, 1])
    return Family(CASES, (x, e, ids, idx))


@pytest.mark.parametrize("backend", ["interpreter", "native"])
@pytest.mark.parametrize("name", list(CASES))
def test_shape(family, name, backend):
    family.check(name, backend)
