"""Elementwise converters vs eager PyTorch, through the interpreter and native code.

One module returns every case's result (one export, one native compile); each test checks one
output within rtol 1e-4 / atol 1e-5.
"""

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[torch]')")

import torch.nn.functional as F  # noqa: E402

from .harness import Family  # noqa: E402


def pos(x):
    return x.abs() + 0.5


CASES = {
    "add": lambda x, y, i, m: x + y,
    "add_alpha": lambda x, y, i, m: torch.add(x, y, alpha=2.5),
    "add_scalar": lambda x, y, i, m: x + 1.5,
    "sub_alpha": lambda x, y, i, m: torch.sub(x, y, alpha=0.5),
    "rsub": lambda x, y, i, m: 2.0 - x,
    "mul": lambda x, y, i, m: x * y,
    "mul_int_float": lambda x, y, i, m: i * x,
    "div": lambda x, y, i, m: x / pos(y),
    "div_int": lambda x, y, i, m: i / 3,
    "div_floor": lambda x, y, i, m: torch.div(x, pos(y), rounding_mode="floor"),
    "div_trunc": lambda x, y, i, m: torch.div(x * 4, pos(y), rounding_mode="trunc"),
    "remainder": lambda x, y, i, m: torch.remainder(x * 3, pos(y)),
    "remainder_int": lambda x, y, i, m: torch.remainder(i - 4, 3),
    "fmod": lambda x, y, i, m: torch.fmod(x * 3, pos(y)),
    "fmod_int": lambda x, y, i, m: torch.fmod(i - 4, 3),
    "trunc": lambda x, y, i, m: torch.trunc(x * 3),
    "log2": lambda x, y, i, m: torch.log2(pos(x)),
    "log10": lambda x, y, i, m: torch.log10(pos(x)),
    "exp2": lambda x, y, i, m: torch.exp2(x),
    "atan2": lambda x, y, i, m: torch.atan2(x, y),
    "atan2_axes": lambda x, y, i, m: torch.atan2(torch.sign(x), torch.sign(y)),
    "pow": lambda x, y, i, m: pos(x) ** y,
    "pow_scalar": lambda x, y, i, m: x ** 2,
    "rsqrt": lambda x, y, i, m: torch.rsqrt(pos(x)),
    "sqrt": lambda x, y, i, m: torch.sqrt(pos(x)),
    "exp": lambda x, y, i, m: torch.exp(x),
    "exp_int": lambda x, y, i, m: torch.exp(i.float() / 4),
    "log": lambda x, y, i, m: torch.log(pos(x)),
    "log1p": lambda x, y, i, m: torch.log1p(pos(x)),
    "neg": lambda x, y, i, m: -x,
    "abs": lambda x, y, i, m: torch.abs(x),
    "erf": lambda x, y, i, m: torch.erf(x),
    "sin": lambda x, y, i, m: torch.sin(x),
    "tan": lambda x, y, i, m: torch.tan(x),
    "asin": lambda x, y, i, m: torch.asin(torch.tanh(x)),
    "acos": lambda x, y, i, m: torch.acos(torch.tanh(x)),
    "atan": lambda x, y, i, m: torch.atan(x * 3),
    "sinh": lambda x, y, i, m: torch.sinh(x),
    "cosh": lambda x, y, i, m: torch.cosh(x),
    "asinh": lambda x, y, i, m: torch.asinh(x * 3),
    "acosh": lambda x, y, i, m: torch.acosh(pos(x) + 1),
    "atanh": lambda x, y, i, m: torch.atanh(torch.tanh(x) * 0.9),
    "expm1": lambda x, y, i, m: torch.expm1(x),
    "isinf": lambda x, y, i, m: torch.isinf(1 / (x > 0).float()),
    "fmax": lambda x, y, i, m: torch.fmax(x, y),
    "fmin": lambda x, y, i, m: torch.fmin(x, y),
    "bitwise_or_int": lambda x, y, i, m: i | 5,
    "bitwise_xor_int": lambda x, y, i, m: i ^ (i * 3),
    "bitwise_and_int": lambda x, y, i, m: torch.bitwise_and(i, 6),
    "bitwise_not_int": lambda x, y, i, m: ~i,
    "rsub_tensor": lambda x, y, i, m: torch.rsub(x, y, alpha=2),
    "cos": lambda x, y, i, m: torch.cos(x),
    "tanh": lambda x, y, i, m: torch.tanh(x),
    "sigmoid": lambda x, y, i, m: torch.sigmoid(x),
    "relu": lambda x, y, i, m: torch.relu(x),
    "gelu": lambda x, y, i, m: F.gelu(x),
    "gelu_tanh": lambda x, y, i, m: F.gelu(x, approximate="tanh"),
    "silu": lambda x, y, i, m: F.silu(x),
    "leaky_relu": lambda x, y, i, m: F.leaky_relu(x, 0.2),
    "elu": lambda x, y, i, m: F.elu(x),
    "hardtanh": lambda x, y, i, m: F.hardtanh(x, -0.5, 0.5),
    "hardsigmoid": lambda x, y, i, m: F.hardsigmoid(x * 4),
    "hardswish": lambda x, y, i, m: F.hardswish(x * 4),
    "softplus": lambda x, y, i, m: F.softplus(x * 10, beta=2, threshold=5),
    "reciprocal": lambda x, y, i, m: torch.reciprocal(pos(x)),
    "floor": lambda x, y, i, m: torch.floor(x * 3),
    "ceil": lambda x, y, i, m: torch.ceil(x * 3),
    "round": lambda x, y, i, m: torch.round(x * 3),
    "sign": lambda x, y, i, m: torch.sign(x),
    "minimum": lambda x, y, i, m: torch.minimum(x, y),
    "maximum": lambda x, y, i, m: torch.maximum(x, y),
    "clamp": lambda x, y, i, m: torch.clamp(x, -0.3, 0.4),
    "clamp_min": lambda x, y, i, m: torch.clamp_min(x, 0.1),
    "clamp_max": lambda x, y, i, m: torch.clamp(x, max=0.1),
    "clamp_tensor": lambda x, y, i, m: torch.clamp(x, min=y),
    "eq": lambda x, y, i, m: i == 2,
    "ne": lambda x, y, i, m: i != 2,
    "lt": lambda x, y, i, m: x < y,
    "le": lambda x, y, i, m: i <= 3,
    "gt": lambda x, y, i, m: x > 0.1,
    "ge": lambda x, y, i, m: x >= y,
    "logical_and": lambda x, y, i, m: torch.logical_and(m, x > 0),
    "logical_or": lambda x, y, i, m: torch.logical_or(m, x > 0),
    "logical_xor": lambda x, y, i, m: torch.logical_xor(m, x > 0),
    "logical_not": lambda x, y, i, m: torch.logical_not(m),
    "bitwise_not_bool": lambda x, y, i, m: ~m,
    "bitwise_and_bool": lambda x, y, i, m: m & (x > 0),
    "where": lambda x, y, i, m: torch.where(m, x, y),
    "where_scalar": lambda x, y, i, m: torch.where(m, x, 0.0),
    "masked_fill": lambda x, y, i, m: x.masked_fill(m, -1e4),
    "to_float": lambda x, y, i, m: i.to(torch.float32),
    "to_int": lambda x, y, i, m: (x * 10).to(torch.int64),
    "bool_to_float": lambda x, y, i, m: m.float() * x,
    "isnan": lambda x, y, i, m: torch.isnan(torch.log(x)),
    "lerp": lambda x, y, i, m: torch.lerp(x, y, 0.3),
}


@pytest.fixture(scope="module")
def family():
    torch.manual_seed(0)
    x = torch.randn(3, 4, 5)
    y = torch.randn(4, 5)
    i = torch.randint(0, 6, (3, 4, 5))
    m = torch.rand(3, 4, 5) > 0.5
    return Family(CASES, (x, y, i, m))


@pytest.mark.parametrize("backend", ["interpreter", "native"])
@pytest.mark.parametrize("name", list(CASES))
def test_elementwise(family, name, backend):
    family.check(name, backend)
