"""lower_graph: a whole Graph IR graph -> one Loop IR Program, node by node, unfused.

Graph inputs become INPUT buffers (their named dims the Program's symbolic sizes), constants
CONSTANT buffers (data by reference), graph outputs OUTPUT buffers and everything else that is
written TEMP buffers. Each node is lowered by its op's entry in the lowering table; its outputs
are then written to memory by one kernel, unless the op is registered `lazy` (an index mapping:
its Tensors are composed into their consumers) or the lowering wrote them itself. A graph output
that is not written by a kernel of its own (a view, an input, a constant, a value listed twice)
is copied into its OUTPUT buffer at the end. Kernels whose results nobody reads are dropped.
"""

from __future__ import annotations

from ..errors import LoweringError, describe_node
from ..ir.dtypes import DType
from ..ir import ops
from ..ir.graph import Graph, Node, Value
from ..ir.types import TensorType
from ..loops.buffer import Buffer, BufferKind
from ..loops.expr import Const
from ..loops.stmt import Program
from .context import LowerContext
from .registry import lowering_for
from . import exprs as E
from .tensor import Tensor, buffers_read, buffers_used, buffers_written, is_contiguous
from .unlowered import UNLOWERED

# element types the back end computes with
NATIVE_DTYPES = frozenset({
    DType.bool, DType.int8, DType.int16, DType.int32, DType.int64, DType.uint8, DType.uint16,
    DType.uint32, DType.uint64, DType.float16, DType.bfloat16, DType.float32, DType.float64,
    # stored one per byte, computed in float32 / int32 (kiln/codegen/narrow.py)
    DType.float8e4m3fn, DType.float8e4m3fnuz, DType.float8e5m2, DType.float8e5m2fnuz,
    DType.float4e2m1, DType.float8e8m0, DType.int4, DType.uint4, DType.int2, DType.uint2,
})


def lower_graph(graph: Graph, name: str | None = None) -> Program:
    check_lowerable(graph)
    ctx = LowerContext(graph)
    for v in graph.inputs:
        ctx.bind_input(v)
    for c in graph.constants:
        ctx.bind_constant(c)
    for node in graph.nodes:
        lower_node(ctx, node)
    claimed: set = set()
    outputs = [_output_buffer(ctx, v, claimed) for v in graph.outputs]
    outputs += [c.buffer for c in ctx.computed.values()]    # sizes kernels compute (NonZero)
    kernels = _live_kernels(ctx.kernels, outputs)
    return Program(name or graph.name, list(ctx.inputs), outputs, kernels,
                   _all_buffers(ctx.inputs, outputs, kernels), dict(ctx.sizes),
                   dict(ctx.computed))


def lower_node(ctx: LowerContext, node: Node, materialize: bool = True) -> None:
    """Lower one node. With `materialize` False (inside a fused group) outputs stay lazy
    Tensors composed into their consumers, unless the lowering wrote them itself."""
    lowering = lowering_for(node.op)
    inputs = [None if v is None else ctx.tensor(v) for v in node.inputs]
    outs = lowering.fn(ctx, node, inputs)
    for k, v in enumerate(node.outputs):
        if v is None:
            continue
        t = _refine(node, outs[k], v)
        written = ctx.written_buffer(v)
        if written is not None:                   # the lowering wrote it with its own kernels
            t = Tensor.holding(written, t) if t.buffer is not written else t
        elif materialize and not lowering.lazy:
            buf = ctx.buffer_for(v, t.shape, t.dtype)
            ctx.materialize(t, buf, node.op.name.lower())
            t = Tensor.holding(buf, t)
        ctx.set_tensor(v, t)


def _refine(node: Node, t: Tensor, v: Value) -> Tensor:
    """The lowering's Tensor, checked against the value's type; static dims from the type."""
    vt = v.type
    if t.dtype is not vt.dtype or (vt.shape is not None and len(vt.shape) != t.rank):
        raise LoweringError(f"lowering produced {t.dtype.short} of rank {t.rank} for %{v.name} "
                            f"of type {vt} (a bug in kiln's lowering)", node=node,
                            ops=[node.op.name])
    if vt.shape is None:
        return t
    shape = tuple(Const(d) if isinstance(d, int) else e for d, e in zip(vt.shape, t.shape))
    for d, e in zip(vt.shape, t.shape):
        if isinstance(d, int) and isinstance(e, Const) and e.value != d:
            raise LoweringError(f"lowering computed dims {t.shape} for %{v.name} of type {vt} "
                                "(a bug in kiln's lowering)", node=node, ops=[node.op.name])
    if shape == tuple(t.shape):
        return t
    return Tensor(shape, t.dtype, t.at, t.buffer, t.write)


def _output_buffer(ctx: LowerContext, v: Value, claimed: set) -> Buffer:
    """The OUTPUT buffer of one output slot: the one the value was written to, the memory of a
    temp it reshapes, or else a copy."""
    buf = ctx.written_buffer(v)
    if buf is None or buf.kind is not BufferKind.OUTPUT or buf in claimed:
        t = ctx.tensor(v)
        buf = _adopt_reshaped_temp(ctx, v, t)
        if buf is None:
            buf = ctx.new_buffer(v.name, t.shape, t.dtype, BufferKind.OUTPUT)
            ctx.materialize(t, buf, "copy")
    claimed.add(buf)
    return buf


def _adopt_reshaped_temp(ctx: LowerContext, v: Value, t: Tensor) -> Buffer | None:
    """When an output is a reshaping view of all of a temp (Exp, then Reshape), the temp
    becomes a view of a new OUTPUT buffer, so the kernel that writes it writes the output."""
    view = t.buffer
    if view is None or view.base is None:
        return None
    root = view.root
    if root.kind is not BufferKind.TEMP or not is_contiguous(view) or \
            not E.is_const(view.offset, 0) or \
            not E.same(E.product(view.shape), E.product(root.shape)):
        return None
    out = ctx.new_buffer(v.name, t.shape, t.dtype, BufferKind.OUTPUT)
    root.base, root.kind = out, BufferKind.OUTPUT      # same row-major memory, no copy
    return out


def _live_kernels(kernels: list, outputs: list) -> list:
    """Kernels in order, without those whose stores no later kernel reads and no output holds."""
    live_roots = {b.root for b in outputs}
    kept = []
    for k in reversed(kernels):
        if any(b.root in live_roots for b in buffers_written(k.body)):
            kept.append(k)
            live_roots |= {b.root for b in buffers_read(k.body)}
    return kept[::-1]


def _all_buffers(inputs: list, outputs: list, kernels: list) -> list:
    """Every buffer of the program, each root before its views, in order of first use."""
    seen: dict = {}

    def add(b: Buffer):
        if b.base is not None:
            add(b.base)
        seen.setdefault(b, None)
    for b in inputs:
        add(b)
    for k in kernels:
        for b in buffers_used(k.body):
            add(b)
    for b in outputs:
        add(b)
    return list(seen)


# --- what the back end can take ------------------------------------------------------------------

def _all_nodes(graph: Graph):
    """The graph's nodes, with fused groups' bodies opened (they lower node by node) and
    followed by the nodes of their subgraphs (If branches, Loop and Scan bodies)."""
    for node in graph.nodes:
        if node.op is ops.Fused:
            yield from _all_nodes(node.attrs["body"])
        else:
            yield node
            for a in node.attrs.values():
                if isinstance(a, Graph):
                    yield from _all_nodes(a)


def check_lowerable(graph: Graph) -> None:
    """Raise one LoweringError naming every op without a lowering and every value whose type
    the back end lacks, so a model's problems are reported at once."""
    missing: dict[str, list[str]] = {}
    bad_types: list[str] = []
    for v in graph.inputs:
        if not _native(v.type):
            bad_types.append(f"graph input '{v.name}': {v.type}")
    for node in _all_nodes(graph):
        if lowering_for(node.op) is None:
            missing.setdefault(node.op.name, []).append(describe_node(node))
            continue
        for v in [*node.inputs, *node.outputs]:
            if v is not None and not _native(v.type):
                bad_types.append(f"{describe_node(node)}: %{v.name} is {v.type}")
                break
    if not missing and not bad_types:
        return
    lines = []
    if missing:
        lines.append("no native lowering for " + ", ".join(
            f"{op} ({len(nodes)} node{'s' if len(nodes) > 1 else ''}"
            f"{': ' + UNLOWERED[op] if op in UNLOWERED else ''})"
            for op, nodes in sorted(missing.items())))
    if bad_types:
        lines.append("element types the native back end lacks: " + "; ".join(bad_types))
    raise LoweringError("; ".join(lines), ops=sorted(missing),
                        hint="run the model with the interpreter (backend 'interpreter'), or "
                             "rewrite these ops/types into supported ones")


def _native(t) -> bool:
    return isinstance(t, TensorType) and t.dtype in NATIVE_DTYPES
