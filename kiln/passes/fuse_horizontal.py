"""Horizontal fusion: sibling matrix products of one activation become one wider product.

Attention computes Q, K and V as three products of the same activation x by three constant
weights, each plus its bias:  q = x·Wq + bq,  k = x·Wk + bk,  v = x·Wv + bv.  Concatenating the
weights along the output axis gives the same numbers from one product,

    qkv = x·[Wq | Wk | Wv] + [bq | bk | bv]        q, k, v = Split(qkv, [Nq, Nk, Nv], axis=-1)

so x is read once, the product runs as one larger (better shaped) kernel, and the three parts
are views of its result: Split lowers to index mappings, no copy.

A group is two or more MatMul nodes reading the same first operand with constant 2-D second
operands of one dtype and one K (or Gemm nodes with transA=0, alpha=1, the same kind of C
operand). When every member's result feeds only an Add of a constant bias along the last axis
(a [N] vector, leading 1s allowed), the biases are concatenated too and the Add is taken in;
members with a bias and members without form separate groups. The members' result Values are
kept (they become the Split's outputs), so names and types are unchanged. Weights no longer read
are left for dead code elimination.

Merging pays only when the parts are read as views: a member whose result is a graph output
(it would be copied out of the merged result) or is read by an elementwise or broadcast op
(which would otherwise have been fused into the product as its epilogue, and would now be a
kernel of its own) stays as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..ir import ops
from ..ir.graph import Graph, Node, Value
from ..ir.opdef import FusionKind
from ..ir.types import TensorType
from ..rewrite.analyses import UseDef
from ..rewrite.pass_manager import Pass, PassContext


@dataclass(frozen=True)
class FuseHorizontal(Pass):
    min_group: int = 2
    name: ClassVar[str] = "fuse_horizontal"

    def run(self, graph: Graph, ctx: PassContext) -> Graph:
        uses = UseDef(graph)
        groups: dict[tuple, list[Node]] = {}
        for n in graph.nodes:
            key = _key(n)
            if key is not None:
                groups.setdefault(key, []).append(n)
        for members in groups.values():
            with_bias: list = []
            without: list = []
            for n in members:
                bias = _bias(n, uses)
                result = bias[0].outputs[0] if bias is not None else n.outputs[0]
                if _read_as_view(result, uses):
                    (with_bias if bias is not None else without).append(n)
            for part, take_bias in ((with_bias, True), (without, False)):
                if len(part) >= self.min_group:
                    _merge(graph, part, uses, take_bias)
                    ctx.count(f"merged {len(part)} {part[0].op.name}")
        return graph


def _read_as_view(v: Value, uses: UseDef) -> bool:
    """Whether merging loses nothing for this result: not a graph output, and no reader that
    fusion would have made the product's epilogue."""
    return id(v) not in uses.outputs and all(
        n.op.kind not in (FusionKind.ELEMENTWISE, FusionKind.BROADCAST)
        for n in uses.uses(v))


def _weight(n: Node) -> np.ndarray:
    """The member's second operand as a [K, N] matrix."""
    w = n.inputs[1].data
    return w.T if n.op is ops.Gemm and n.attr("transB") else w


def _has_c(n: Node) -> bool:
    return n.op is ops.Gemm and len(n.inputs) > 2 and n.inputs[2] is not None


def _key(n: Node) -> tuple | None:
    """What a node must share with its siblings to merge with them (None: not a candidate)."""
    if n.op not in (ops.MatMul, ops.Gemm) or len(n.inputs) < 2 or len(n.outputs) != 1:
        return None
    a, b, y = n.inputs[0], n.inputs[1], n.outputs[0]
    if a is None or a.is_constant or b is None or not b.is_constant or b.data.ndim != 2:
        return None
    if not isinstance(y.type, TensorType) or y.type.shape is None or not y.type.shape:
        return None
    if n.op is ops.Gemm:
        if n.attr("transA") or n.attr("alpha") != 1.0:
            return None
        c = n.inputs[2] if _has_c(n) else None
        if c is not None and (not c.is_constant or n.attr("beta") != 1.0 or
                              _vector(c.data, _weight(n).shape[1]) is None):
            return None
        return (n.op, id(a), b.data.dtype.str, _weight(n).shape[0], c is not None)
    return (n.op, id(a), b.data.dtype.str, b.data.shape[0])


def _vector(data: np.ndarray, n: int) -> np.ndarray | None:
    """A constant that broadcasts along the last axis only, as an [n] vector (else None)."""
    if data.ndim == 0 or data.shape[-1] not in (1, n) or any(d != 1 for d in data.shape[:-1]):
        return None
    return np.broadcast_to(data.reshape(-1), (n,))


def _bias(n: Node, uses: UseDef) -> tuple[Node, np.ndarray] | None:
    """The Add of a constant [N] bias that alone reads a MatMul's result, and that bias."""
    y = n.outputs[0]
    readers = uses.uses(y)
    if n.op is not ops.MatMul or len(readers) != 1 or id(y) in uses.outputs:
        return None
    add = readers[0]
    if add.op is not ops.Add or len(add.inputs) != 2:
        return None
    other = add.inputs[1] if add.inputs[0] is y else add.inputs[0]
    if other is y or not other.is_constant or other.data.dtype != n.inputs[1].data.dtype:
        return None
    if other.data.ndim > len(y.type.shape) or other.data.shape[-1] != _weight(n).shape[1]:
        return None
    vec = _vector(other.data, _weight(n).shape[1])
    return None if vec is None else (add, vec)


def _merge(graph: Graph, members: list[Node], uses: UseDef, take_bias: bool) -> None:
    first = members[0]
    a = first.inputs[0]
    weights = [_weight(n) for n in members]
    sizes = [w.shape[1] for w in weights]
    biases = [_bias(n, uses) if take_bias else None for n in members]
    results: list[Value] = [b[0].outputs[0] if take_bias else n.outputs[0]
                            for n, b in zip(members, biases)]
    shape = first.outputs[0].type.shape
    dtype = first.outputs[0].type.dtype
    wide = TensorType(dtype, tuple(shape[:-1]) + (sum(sizes),))
    base = first.name or results[0].name
    w = graph.add_constant(np.concatenate(weights, axis=1), f"{base}.merged_weight")
    inputs = [a, w]
    if first.op is ops.Gemm and _has_c(first):
        inputs.append(graph.add_constant(np.concatenate(
            [_vector(n.inputs[2].data, k) for n, k in zip(members, sizes)]), f"{base}.merged_c"))
    product = Node(first.op, inputs, {}, [graph.new_value(f"{base}.merged", wide)], base)
    new = [product]
    out = product.outputs[0]
    if take_bias:
        bias = graph.add_constant(np.concatenate([b[1] for b in biases]), f"{base}.merged_bias")
        new.append(Node(ops.Add, [out, bias], {}, [graph.new_value(f"{base}.merged_biased", wide)],
                        base))
        out = new[-1].outputs[0]
    split = _small_constant(graph, np.array(sizes, np.int64), f"{base}.split")
    new.append(Node(ops.Split, [out, split], {"axis": len(shape) - 1}, results, base))
    at = graph.nodes.index(first)
    old = list(members) + ([b[0] for b in biases] if take_bias else [])
    graph.remove_nodes(old)
    for v in results:                 # the Split keeps the members' result values and names
        graph.claim(v.name)
    graph.nodes[at:at] = new


def _small_constant(graph: Graph, data: np.ndarray, name: str) -> Value:
    """An equal constant already in the graph (the split sizes of every layer are the same), or
    a new one: the pipeline's common subexpression elimination would merge them anyway."""
    for c in graph.constants:
        if c.data.dtype == data.dtype and c.data.shape == data.shape and \
                np.array_equal(c.data, data):
            return c
    return graph.add_constant(data, name)
