"""Optimizer steps (domain ai.onnx.preview.training): Momentum, Adagrad and Adam.

Each takes the learning rate R and the step count T, then n tensors to optimize followed by their
gradients and per-tensor state, in groups: Momentum (X..., G..., V...) -> (X_new..., V_new...),
Adagrad (X..., G..., H...) -> (X_new..., H_new...), Adam (X..., G..., V..., H...) ->
(X_new..., V_new..., H_new...). The arithmetic is done in float64 and rounded once into each
tensor's own type.
"""

from __future__ import annotations

import numpy as np

from ..dtypes import DType
from ..opdef import FusionKind, InferContext
from .common import FLOAT, STRING
from .registry import define

K = FusionKind
TRAINING = "ai.onnx.preview.training"
_FLOATS = (DType.float32, DType.float64)


def _optimizer_infer(groups: int):
    """Inference for an op taking R, T and `groups` lists of n tensors, returning groups - 1
    lists (the gradients are consumed): each output has its input's type."""
    def infer(ctx: InferContext):
        rest = ctx.num_inputs - 2
        if rest <= 0 or rest % groups:
            ctx.fail(f"{ctx.op.name} takes R, T and {groups} equally long groups of tensors; "
                     f"got {rest} tensors after R and T")
        n = rest // groups
        r, t = ctx.tensor(0), ctx.tensor(1)
        if r.dtype not in _FLOATS or t.dtype is not DType.int64:
            ctx.fail(f"R must be f32/f64 and T i64, got {r.dtype.short} and {t.dtype.short}")
        for i, x in ((0, r), (1, t)):
            if x.numel() not in (None, 1):
                ctx.fail(f"{'RT'[i]} must be a scalar, got shape {list(x.shape)}")
        for k in range(n):
            ts = [ctx.tensor(2 + g * n + k) for g in range(groups)]
            if any(x.dtype not in _FLOATS for x in ts):
                ctx.fail(f"tensor group {k} must be f32/f64, got {[x.dtype.short for x in ts]}")
            if not _same_shapes([x.shape for x in ts]):
                ctx.fail(f"tensor {k}, its gradient and its state must have one shape, got "
                         f"{[str(x) for x in ts]}")
        return [ctx.type(2 + g * n + k) for g in (0, *range(2, groups)) for k in range(n)]
    return infer


def _same_shapes(shapes) -> bool:
    """Could these (possibly symbolic or unknown) shapes all be equal?"""
    known = [s for s in shapes if s is not None]
    if len({len(s) for s in known}) > 1:
        return False
    return all(len({d for d in dims if isinstance(d, int)}) <= 1 for dims in zip(*known))


def _groups(args, groups: int):
    n = len(args) // groups
    return [[np.asarray(args[g * n + k], np.float64) for g in range(groups)] for k in range(n)], n


def _outputs(steps, originals, groups_out: int, n: int):
    """Reorder per-tensor results into output groups, each rounded into its input's dtype."""
    out = []
    for g in range(groups_out):
        for k in range(n):
            out.append(steps[k][g].astype(originals[g][k].dtype))
    return tuple(out)


def _originals(args, n: int, keep: tuple):
    return [[args[g * n + k] for k in range(n)] for g in keep]


# --- Momentum --------------------------------------------------------------------------------

def _run_momentum(ctx, r, t, *args):
    a = ctx.attrs
    lr, first = float(np.asarray(r).reshape(-1)[0]), int(np.asarray(t).reshape(-1)[0]) == 0
    per, n = _groups(args, 3)
    steps = []
    for x, g, v in per:
        g = a.norm_coefficient * x + g
        v_new = a.alpha * v + (1.0 if first else a.beta) * g
        step = g + a.alpha * v_new if a.mode == "nesterov" else v_new
        steps.append((x - lr * step, v_new))
    return _outputs(steps, _originals(args, n, (0, 2)), 2, n)


Momentum = define(
    "Momentum", ["R", "T", "inputs*"], ["outputs*"], kind=K.OPAQUE, domain=TRAINING,
    since_version=1,
    attrs=[FLOAT("alpha"), FLOAT("beta"), FLOAT("norm_coefficient"),
           STRING("mode", choices=("standard", "nesterov"))],
    infer=_optimizer_infer(3), reference=_run_momentum,
    doc="SGD with (standard or Nesterov) momentum; beta is 1 on the first step (T = 0).")


# --- Adagrad ---------------------------------------------------------------------------------

def _run_adagrad(ctx, r, t, *args):
    a = ctx.attrs
    lr = float(np.asarray(r).reshape(-1)[0]) / (1 + int(np.asarray(t).reshape(-1)[0]) *
                                                 a.decay_factor)
    per, n = _groups(args, 3)
    steps = []
    for x, g, h in per:
        g = a.norm_coefficient * x + g
        h_new = h + g * g
        steps.append((x - lr * g / (np.sqrt(h_new) + a.epsilon), h_new))
    return _outputs(steps, _originals(args, n, (0, 2)), 2, n)


Adagrad = define(
    "Adagrad", ["R", "T", "inputs*"], ["outputs*"], kind=K.OPAQUE, domain=TRAINING,
    since_version=1,
    attrs=[FLOAT("decay_factor", 0.0), FLOAT("epsilon", 1e-6), FLOAT("norm_coefficient", 0.0)],
    infer=_optimizer_infer(3), reference=_run_adagrad,
    doc="ADAGRAD step with learning rate R / (1 + T * decay_factor).")


# --- Adam ------------------------------------------------------------------------------------

def _run_adam(ctx, r, t, *args):
    a = ctx.attrs
    lr, step_no = float(np.asarray(r).reshape(-1)[0]), int(np.asarray(t).reshape(-1)[0])
    if step_no > 0:   # bias correction of both moments
        lr = lr * np.sqrt(1 - a.beta ** step_no) / (1 - a.alpha ** step_no)
    per, n = _groups(args, 4)
    steps = []
    for x, g, v, h in per:
        g = a.norm_coefficient * x + g
        v_new = a.alpha * v + (1 - a.alpha) * g
        h_new = a.beta * h + (1 - a.beta) * g * g
        x_new = x - lr * v_new / (np.sqrt(h_new) + a.epsilon)
        steps.append(((1 - a.norm_coefficient_post) * x_new, v_new, h_new))
    return _outputs(steps, _originals(args, n, (0, 2, 3)), 3, n)


Adam = define(
    "Adam", ["R", "T", "inputs*"], ["outputs*"], kind=K.OPAQUE, domain=TRAINING, since_version=1,
    attrs=[FLOAT("alpha", 0.9), FLOAT("beta", 0.999), FLOAT("epsilon", 1e-6),
           FLOAT("norm_coefficient", 0.0), FLOAT("norm_coefficient_post", 0.0)],
    infer=_optimizer_infer(4), reference=_run_adam,
    doc="Adam step with bias-corrected learning rate (no correction at T = 0).")
