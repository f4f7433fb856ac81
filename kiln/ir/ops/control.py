"""Control flow: If, Loop and Scan, whose bodies are Graph-valued attributes.

A body is a kiln Graph whose `parent` is the graph holding the node; it may read values of the
enclosing graphs directly. The reference runs a body through `ctx.run_graph`, which makes those
enclosing values visible. Output types come from the bodies' declared output types; where two
types meet (the branches of an If, the first and later trips of a Loop) `join_types` keeps what
both agree on and forgets the rest.
"""

from __future__ import annotations

import numpy as np

from ...errors import ExecutionError
from ..dtypes import DType
from ..opdef import FusionKind, InferContext
from ..shapes import normalize_axis
from ..types import Dim, OptionalType, SequenceType, TensorType, Type
from .common import GRAPH, INT, INTS
from .registry import define

K = FusionKind


def join_types(a: Type, b: Type) -> Type | None:
    """The most precise type both `a` and `b` fit (dims they disagree on become unknown).

    None when no such type exists (different dtypes or kinds)."""
    if isinstance(a, TensorType) and isinstance(b, TensorType):
        if a.dtype != b.dtype:
            return None
        if a.shape is None or b.shape is None or len(a.shape) != len(b.shape):
            return TensorType(a.dtype, None)
        return TensorType(a.dtype, tuple(x if x == y else None for x, y in zip(a.shape, b.shape)))
    if isinstance(a, (SequenceType, OptionalType)) and type(a) is type(b):
        elem = join_types(a.elem, b.elem)
        return None if elem is None else type(a)(elem)
    if isinstance(a, OptionalType) or isinstance(b, OptionalType):
        # a value where an optional is expected is an optional holding it (ONNX Loop/If allow it)
        inner = join_types(a.elem if isinstance(a, OptionalType) else a,
                           b.elem if isinstance(b, OptionalType) else b)
        return None if inner is None else OptionalType(inner)
    return None


def _join(ctx: InferContext, a: Type, b: Type, what: str) -> Type:
    t = join_types(a, b)
    if t is None:
        ctx.fail(f"{what}: {a} and {b} have no common type",
                 hint="both sides must have the same element type and kind")
    return t


def _check_scalar_input(ctx: InferContext, i: int, dtypes, what: str) -> None:
    """Input i holds one element of one of `dtypes` (cond, trip count)."""
    t = ctx.tensor(i)
    if t.dtype not in dtypes:
        ctx.fail(f"{what} must be {'/'.join(d.short for d in dtypes)}, got {t.dtype.short}")
    n = t.numel()
    if n is not None and n != 1:
        ctx.fail(f"{what} must hold exactly one element, got shape {list(t.shape)}")


def _scalar(x: np.ndarray, what: str):
    x = np.asarray(x)
    if x.size != 1:
        raise ExecutionError(f"{what} must hold exactly one element, got shape {list(x.shape)}")
    return x.reshape(-1)[0]


def _empty_like_type(t: Type | None, shape_prefix=(0,)) -> np.ndarray:
    """An empty array for a zero-trip scan output of declared type t (unknown dims become 0)."""
    if not isinstance(t, TensorType) or t.shape is None:
        dtype = t.dtype.np if isinstance(t, TensorType) else np.float32
        return np.zeros(shape_prefix, dtype)
    return np.zeros(tuple(d if isinstance(d, int) else 0 for d in t.shape), t.dtype.np)


def _stack(parts: list, axis: int, what: str) -> np.ndarray:
    shapes = {np.shape(p) for p in parts}
    if len(shapes) > 1:
        raise ExecutionError(f"{what} changes shape between iterations: {sorted(shapes)}",
                             hint="a scan output must have the same shape on every iteration")
    return np.stack(parts, axis=axis)


# --- If --------------------------------------------------------------------------------------

def _infer_if(ctx: InferContext):
    _check_scalar_input(ctx, 0, (DType.bool,), "cond")
    then, other = ctx.attrs.then_branch, ctx.attrs.else_branch
    for name, g in (("then_branch", then), ("else_branch", other)):
        if g.inputs:
            ctx.fail(f"{name} takes {len(g.inputs)} inputs; If branches take none",
                     hint="a branch reads outer values directly")
    if len(then.outputs) != len(other.outputs):
        ctx.fail(f"then_branch returns {len(then.outputs)} values, else_branch "
                 f"{len(other.outputs)}", hint="both branches must return as many values as "
                 "the If node has outputs")
    c = ctx.const(0)
    if c is not None and c.size == 1:
        return [v.type for v in (then if bool(c.reshape(-1)[0]) else other).outputs]
    return [_join(ctx, a.type, b.type, f"If output {i}")
            for i, (a, b) in enumerate(zip(then.outputs, other.outputs))]


def _run_if(ctx, cond):
    take_then = bool(_scalar(cond, "cond"))
    return tuple(ctx.run_graph(ctx.attrs.then_branch if take_then else ctx.attrs.else_branch, []))


If = define(
    "If", ["cond"], ["outputs*"], kind=K.OPAQUE, since_version=25,
    attrs=[GRAPH("then_branch"), GRAPH("else_branch")],
    infer=_infer_if, reference=_run_if,
    doc="Runs then_branch if cond is true, else else_branch; returns that branch's outputs.")


# --- Loop ------------------------------------------------------------------------------------

def _infer_loop(ctx: InferContext):
    body = ctx.attrs.body
    n = max(ctx.num_inputs - 2, 0)
    if ctx.has_input(0):
        _check_scalar_input(ctx, 0, (DType.int64,), "trip count M")
    if ctx.has_input(1):
        _check_scalar_input(ctx, 1, (DType.bool,), "cond")
    if len(body.inputs) != n + 2:
        ctx.fail(f"the body takes {len(body.inputs)} inputs; with {n} loop-carried values it "
                 f"must take {n + 2} (iteration number, condition, the values)")
    k = len(body.outputs) - 1 - n
    if k < 0:
        ctx.fail(f"the body returns {len(body.outputs)} values; it must return the condition "
                 f"and the {n} loop-carried values, then any scan outputs")
    cond_out = body.outputs[0].type
    if not isinstance(cond_out, TensorType) or cond_out.dtype is not DType.bool:
        ctx.fail(f"the body's first output (the condition) must be bool, got {cond_out}")
    trips: Dim = None
    m = ctx.const(0)
    if not ctx.has_input(1) and m is not None and m.size == 1:
        trips = max(int(m.reshape(-1)[0]), 0)   # no cond input: the body's cond is ignored
    out = []
    for i in range(n):
        if not ctx.has_input(2 + i):
            ctx.fail(f"loop-carried value {i} is missing")
        out.append(_join(ctx, ctx.type(2 + i), body.outputs[1 + i].type,
                         f"loop-carried value {i} (initial vs body output)"))
    for j in range(k):
        t = body.outputs[1 + n + j].type
        if not isinstance(t, TensorType):
            ctx.fail(f"scan output {j} must be a tensor, got {t}")
        out.append(TensorType(t.dtype, None if t.shape is None else (trips, *t.shape)))
    return out


def _run_loop(ctx, m=None, cond=None, *initial):
    body = ctx.attrs.body
    n = len(initial)
    k = len(body.outputs) - 1 - n
    if m is None and cond is None:
        raise ExecutionError("Loop has neither a trip count nor a condition: it never ends",
                             hint="give the node a trip count M or a condition input")
    trips = None if m is None else int(_scalar(m, "trip count M"))
    going = True if cond is None else bool(_scalar(cond, "cond"))
    carried = list(initial)
    scans: list[list] = [[] for _ in range(k)]
    i = 0
    while going and (trips is None or i < trips):
        outs = ctx.run_graph(body, [np.array(i, np.int64), np.array(going), *carried])
        if cond is not None:
            going = bool(_scalar(outs[0], "the body's condition"))
        carried = list(outs[1:1 + n])
        for j in range(k):
            scans[j].append(outs[1 + n + j])
        i += 1
    stacked = []
    for j, parts in enumerate(scans):
        if parts:
            stacked.append(_stack(parts, 0, f"scan output {j}"))
        else:
            t = ctx.output_types[n + j] if n + j < len(ctx.output_types) else None
            stacked.append(_empty_like_type(t))
    return tuple(carried + stacked)


Loop = define(
    "Loop", ["M?", "cond?", "v_initial?*"], ["v_final_and_scan_outputs*"], kind=K.OPAQUE,
    since_version=25, attrs=[GRAPH("body")],
    infer=_infer_loop, reference=_run_loop,
    doc="Runs body while i < M and cond; returns the final loop-carried values, then each scan "
        "output stacked over the iterations.")


# --- Scan ------------------------------------------------------------------------------------

def _per_item(ctx: InferContext, name: str, count: int, directions: bool) -> tuple:
    vals = ctx.attrs[name]
    if vals is None:
        return (0,) * count
    if len(vals) != count:
        ctx.fail(f"'{name}' has {len(vals)} entries; expected {count}")
    if directions and any(v not in (0, 1) for v in vals):
        ctx.fail(f"'{name}' entries must be 0 (forward) or 1 (reverse), got {list(vals)}")
    return tuple(vals)


def _infer_scan(ctx: InferContext):
    a, body = ctx.attrs, ctx.attrs.body
    m = a.num_scan_inputs
    n = ctx.num_inputs - m
    if m < 1 or n < 0:
        ctx.fail(f"num_scan_inputs is {m} but the node has {ctx.num_inputs} inputs",
                 hint="num_scan_inputs counts the trailing inputs that are scanned (>= 1)")
    if len(body.inputs) != ctx.num_inputs:
        ctx.fail(f"the body takes {len(body.inputs)} inputs; it must take {ctx.num_inputs} "
                 f"({n} states, {m} scan slices)")
    k = len(body.outputs) - n
    if k < 0:
        ctx.fail(f"the body returns {len(body.outputs)} values; it must return the {n} states "
                 f"first")
    in_axes = _per_item(ctx, "scan_input_axes", m, False)
    _per_item(ctx, "scan_input_directions", m, True)
    out_axes = _per_item(ctx, "scan_output_axes", k, False)
    _per_item(ctx, "scan_output_directions", k, True)
    length: Dim = None
    for i in range(m):
        t = ctx.tensor(n + i)
        if t.shape is None:
            continue
        d = t.shape[normalize_axis(in_axes[i], len(t.shape), ctx.node)]
        if isinstance(d, int) and isinstance(length, int) and d != length:
            ctx.fail(f"scan inputs have different lengths ({length} and {d}) along their axes")
        if length is None or isinstance(d, int):
            length = d
    out = [_join(ctx, ctx.type(i), body.outputs[i].type, f"state {i} (initial vs body output)")
           for i in range(n)]
    for j in range(k):
        t = body.outputs[n + j].type
        if not isinstance(t, TensorType):
            ctx.fail(f"scan output {j} must be a tensor, got {t}")
        if t.shape is None:
            out.append(TensorType(t.dtype, None))
            continue
        axis = normalize_axis(out_axes[j], len(t.shape) + 1, ctx.node)
        out.append(TensorType(t.dtype, (*t.shape[:axis], length, *t.shape[axis:])))
    return out


def scan_layout(attrs, num_inputs: int) -> tuple:
    """A Scan's (n, k, in_axes, in_dirs, out_axes, out_dirs): n carried states, k scan outputs,
    and the axis and direction (0 forward, 1 reverse) of each scan input and output, with the
    attributes' defaults filled in. Shared by the reference and the lowering."""
    m = attrs.num_scan_inputs
    n = num_inputs - m
    k = len(attrs.body.outputs) - n
    return (n, k, attrs.scan_input_axes or (0,) * m, attrs.scan_input_directions or (0,) * m,
            attrs.scan_output_axes or (0,) * k, attrs.scan_output_directions or (0,) * k)


def _run_scan(ctx, *args):
    body = ctx.attrs.body
    n, k, in_axes, in_dirs, out_axes, out_dirs = scan_layout(ctx.attrs, len(args))
    scanned = args[n:]
    axes = [ax % x.ndim if x.ndim else 0 for ax, x in zip(in_axes, scanned)]
    lengths = {x.shape[ax] for x, ax in zip(scanned, axes)}
    if len(lengths) != 1:
        raise ExecutionError(f"scan inputs have different lengths {sorted(lengths)}",
                             hint="every scanned input must have the same size along its axis")
    length = lengths.pop()
    states = list(args[:n])
    parts: list[list] = [[] for _ in range(k)]
    for t in range(length):
        slices = [np.take(x, length - 1 - t if d else t, axis=ax)
                  for x, ax, d in zip(scanned, axes, in_dirs)]
        outs = ctx.run_graph(body, states + slices)
        states = list(outs[:n])
        for j in range(k):
            parts[j].append(outs[n + j])
    results = []
    for j in range(k):
        if not parts[j]:
            t = ctx.output_types[n + j] if n + j < len(ctx.output_types) else None
            results.append(_empty_like_type(t))
            continue
        if out_dirs[j]:
            parts[j].reverse()
        rank = np.ndim(parts[j][0]) + 1
        results.append(_stack(parts[j], out_axes[j] % rank, f"scan output {j}"))
    return tuple(states + results)


Scan = define(
    "Scan", ["initial_state_and_scan_inputs*"], ["final_state_and_scan_outputs*"],
    kind=K.OPAQUE, since_version=25,
    attrs=[GRAPH("body"), INT("num_scan_inputs"), INTS("scan_input_axes", None),
           INTS("scan_input_directions", None), INTS("scan_output_axes", None),
           INTS("scan_output_directions", None)],
    infer=_infer_scan, reference=_run_scan,
    doc="Runs body once per slice of the scanned inputs, threading states through; returns the "
        "final states and the per-slice outputs stacked.")
