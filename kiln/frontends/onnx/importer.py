"""ONNX ModelProto -> kiln Graph.

The importer first walks the whole model (subgraphs and functions included) and raises one
UnsupportedOpError naming every op kiln cannot run. Then it converts, in order:

- initializers and Constant nodes become graph constants (the NumPy array is held, not copied);
  a graph input that is also an initializer (old models) is a constant too, unless its name is
  passed in `feed_initializers`, in which case it becomes a real input that must be fed (the
  onnx.backend API does this by itself when such a name is fed);
- each node maps to the kiln op of the same name; a node written against an older opset is
  first upgraded to the newest form (adapters.py);
- a model-local function, or an op kiln lacks whose ONNX schema has a function body, is
  expanded into its body's nodes (ops kiln implements are never expanded);
- subgraph attributes (If/Loop/Scan bodies) become kiln Graphs whose `parent` is the enclosing
  graph; names of enclosing scopes resolve to the outer Values.

Every node output gets the type kiln's inference gives it, refined by the model's value_info
where the two agree. Graph outputs keep their ONNX names; node names are kept for messages.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import AttributeProto, defs

from ...errors import AttributeValueError, ModelLoadError, UnsupportedOpError
from ...ir.attrs import check_attr_values
from ...ir.dtypes import DType
from ...ir.graph import Graph, Node, Value
from ...ir.infer import infer_types
from ...ir.opdef import AttrKind, OpDef
from ...ir.ops import OP_TABLE
from ...ir.types import OptionalType, SequenceType, TensorType, Type, refine, types_compatible
from . import adapters
from .adapters import NodeDraft
from .functions import local_function_attrs, resolve_attribute_refs, schema_attrs, schema_function
from .load import load_external_data, load_model, parse_model
from .protos import (ACCEPTS, decode_attributes, normalize_domain, onnx_kind_names,
                     sparse_to_array, tensor_to_array, type_from_proto)
from .support import check_supported, classify, qualified_name

MAX_FUNCTION_DEPTH = 64
A = AttributeProto


def import_model(model: onnx.ModelProto | str | os.PathLike | bytes, *,
                 feed_initializers=(), expand=None) -> Graph:
    """Convert an ONNX model (a ModelProto, a file path or serialized bytes) into a kiln Graph.

    `expand(op) -> bool`, given a kiln OpDef, asks for that op to be imported through its ONNX
    function body (its definition in simpler ops) when ONNX has one, instead of as itself: the
    native back end uses it for ops it has no lowering for (Attention, the losses...)."""
    if isinstance(model, (str, os.PathLike)):
        model = load_model(model)
    elif isinstance(model, (bytes, bytearray, memoryview)):
        model = parse_model(bytes(model))
        load_external_data(model, None)
    elif not isinstance(model, onnx.ModelProto):
        raise ModelLoadError(f"cannot import a {type(model).__name__}",
                             hint="pass an onnx.ModelProto, a file path or the model's bytes")
    else:
        load_external_data(model, None)  # raises if external data was left unloaded
    return _Importer(model, set(feed_initializers), expand).run()


class _Scope:
    """Names visible while converting one graph (or one function body)."""

    def __init__(self, graph: Graph, parent: "_Scope | None", declared: dict[str, Type]):
        self.graph = graph
        self.parent = parent
        self.vals: dict[str, Value | None] = {}
        self.declared = declared      # value_info and output types of the ONNX graph

    def lookup(self, name: str):
        s = self
        while s is not None:
            if name in s.vals:
                return s.vals[name]
            s = s.parent
        raise KeyError(name)

    def define(self, name: str, v: Value | None) -> None:
        self.vals[name] = v


class _Importer:
    def __init__(self, model: onnx.ModelProto, feed_initializers: set[str], expand=None):
        self.model = model
        self.feed_initializers = feed_initializers
        self.expand = expand
        self.opsets = {normalize_domain(o.domain): o.version for o in model.opset_import}
        if "" not in self.opsets and model.ir_version < 3:
            self.opsets[""] = 1
        self.functions = {(normalize_domain(f.domain), f.name, f.overload): f
                          for f in model.functions}
        self.depth = 0

    def run(self) -> Graph:
        check_supported(self)
        graph = self.import_graph(self.model.graph, None, self.opsets)
        return graph

    # --- graphs ----------------------------------------------------------------------------
    def import_graph(self, gp: onnx.GraphProto, parent: _Scope | None, opsets: dict,
                     input_hints: list[Type | None] | None = None) -> Graph:
        graph = Graph(gp.name or "main")
        graph.parent = parent.graph if parent is not None else None
        declared = {}
        for vi in list(gp.value_info) + list(gp.output):
            if vi.type.WhichOneof("value") is not None:
                t = type_from_proto(vi.type, f"value '{vi.name}'")
                if t is not None:
                    declared[vi.name] = t
        scope = _Scope(graph, parent, declared)
        inits = {t.name: t for t in gp.initializer}
        sparse = {s.values.name: s for s in gp.sparse_initializer}
        fed = {i.name for i in gp.input} & self.feed_initializers if parent is None else set()
        for name, t in inits.items():
            if name not in fed:
                scope.define(name, graph.add_constant(tensor_to_array(t, "initializer"), name))
        for name, s in sparse.items():
            scope.define(name, graph.add_constant(sparse_to_array(s, "sparse initializer"), name))
        k = 0
        for inp in gp.input:
            if (inp.name in inits or inp.name in sparse) and inp.name not in fed:
                continue
            t = type_from_proto(inp.type, f"input '{inp.name}'")
            hint = input_hints[k] if input_hints is not None and k < len(input_hints) else None
            k += 1
            if t is None:
                t = hint
            if t is None:
                raise ModelLoadError(f"graph '{gp.name}' input '{inp.name}' has no type",
                                     hint="give every graph input a type in the model")
            scope.define(inp.name, graph.add_input(inp.name, t))
        for node in gp.node:
            self.import_node(node, scope, opsets)
        for out in gp.output:
            try:
                v = scope.lookup(out.name)
            except KeyError:
                raise ModelLoadError(f"graph output '{out.name}' is not produced by any node",
                                     hint="the model is malformed; check it with onnx.checker") from None
            if v is None:
                raise ModelLoadError(f"graph output '{out.name}' is an absent optional value")
            if v.name != out.name and v.producer is not None and not graph.taken(out.name) \
                    and any(o is v for o in v.producer.outputs) and v in _own_values(graph):
                v.name = graph.claim(out.name)
            graph.outputs.append(v)
        return graph

    # --- nodes -----------------------------------------------------------------------------
    def import_node(self, node: onnx.NodeProto, scope: _Scope, opsets: dict) -> None:
        domain = normalize_domain(node.domain)
        if domain == "" and node.op_type == "Constant":
            self._constant(node, scope)
            return
        inputs = [self._lookup(scope, n, node) if n else None for n in node.input]
        how, what, since = classify(self, node, opsets)
        if how == "kiln" and self.expand is not None and self.expand(OP_TABLE[what]):
            fproto = self._schema_body(node, opsets, inputs)
            if fproto is not None:
                schema = defs.get_schema(node.op_type, opsets.get(domain, 1), domain)
                self._expand(node, fproto, inputs, scope, opsets, schema_attrs(schema))
                return
        if how == "kiln":
            self._convert(node, what, since, inputs, scope, opsets)
        elif how == "local":
            self._expand(node, what, inputs, scope, opsets, local_function_attrs(what))
        elif how == "schema":
            fproto = schema_function(what, opsets.get(domain), node, inputs)
            if fproto is None:
                raise UnsupportedOpError(f"op {qualified_name(domain, node.op_type)} is not supported",
                                         ops=[node.op_type], node=_ErrNode(node))
            self._expand(node, fproto, inputs, scope, opsets, schema_attrs(what))
        else:
            raise UnsupportedOpError(f"op {qualified_name(domain, node.op_type)} is not supported"
                                     + (f": {what}" if what else ""),
                                     ops=[node.op_type], node=_ErrNode(node))

    def _schema_body(self, node: onnx.NodeProto, opsets: dict, inputs):
        """ONNX's function body for this node's op at the model's opset, or None."""
        domain = normalize_domain(node.domain)
        try:
            schema = defs.get_schema(node.op_type, opsets.get(domain, 1), domain)
        except defs.SchemaError:
            return None
        if not (schema.has_function or schema.has_context_dependent_function):
            return None
        return schema_function(schema, opsets.get(domain), node, inputs)

    def _lookup(self, scope: _Scope, name: str, node) -> Value | None:
        try:
            return scope.lookup(name)
        except KeyError:
            raise ModelLoadError(
                f"{node.op_type} node '{node.name}' reads '{name}', which no node, input or "
                f"initializer defines before it", hint="the model is malformed or not sorted "
                "topologically; check it with onnx.checker") from None

    def _constant(self, node: onnx.NodeProto, scope: _Scope) -> None:
        if len(node.attribute) != 1:
            raise AttributeValueError(
                f"Constant node '{node.name}' must have exactly one value attribute, "
                f"got {[a.name for a in node.attribute]}")
        a = node.attribute[0]
        if a.name == "value":
            arr = tensor_to_array(a.t, "constant")
        elif a.name == "sparse_value":
            arr = sparse_to_array(a.sparse_tensor)
        elif a.name == "value_float":
            arr = np.array(a.f, np.float32)
        elif a.name == "value_floats":
            arr = np.array(list(a.floats), np.float32)
        elif a.name == "value_int":
            arr = np.array(a.i, np.int64)
        elif a.name == "value_ints":
            arr = np.array(list(a.ints), np.int64)
        elif a.name == "value_string":
            arr = np.array(a.s.decode("utf-8"), dtype=object)
        elif a.name == "value_strings":
            arr = np.array([s.decode("utf-8") for s in a.strings], dtype=object).reshape(-1)
        else:
            raise AttributeValueError(f"Constant node '{node.name}' has unknown attribute '{a.name}'")
        scope.define(node.output[0], scope.graph.add_constant(arr, node.output[0] or "const"))

    def _convert(self, node: onnx.NodeProto, op_type: str, since: int | None, inputs, scope,
                 opsets) -> None:
        attrs, attr_types = decode_attributes(node)
        draft = NodeDraft(node.op_type, normalize_domain(node.domain), list(inputs), attrs,
                          list(node.output), node.name, attr_types=attr_types)
        ctx = _AdaptContext(self, scope, node, opsets)
        adapters.adapt(ctx, draft, since)
        op = OP_TABLE.get(draft.op_type)
        if op is None:
            raise UnsupportedOpError(f"op {draft.op_type} (needed for {node.op_type}) is not supported",
                                     ops=[draft.op_type], node=_ErrNode(node))
        knode = Node(op, _trim(draft.inputs), {}, [], node.name)
        knode.attrs = self._convert_attrs(op, draft, knode, scope, opsets)
        outs = list(draft.outputs)
        while outs and not outs[-1]:
            outs.pop()
        knode.outputs = [None] * len(outs)
        check_attr_values(op, knode.attrs, knode)
        types = infer_types(op, knode.inputs, knode.attrs, len(outs), knode)
        for i, (name, t) in enumerate(zip(outs, types)):
            if not name:
                continue
            if draft.finish is None:
                t = _refine(scope.declared.get(name), t)
                v = scope.graph.new_value(name, t)
            else:
                v = scope.graph.new_value(f"{name}_pre", t)
            v.producer = knode
            knode.outputs[i] = v
        scope.graph.append(knode)
        results = draft.finish(ctx, knode.outputs) if draft.finish else knode.outputs
        for name, v in zip(outs, results):
            if name:
                scope.define(name, v)

    def _convert_attrs(self, op: OpDef, draft: NodeDraft, knode: Node, scope: _Scope,
                       opsets: dict) -> dict:
        out = {}
        for name, value in draft.attrs.items():
            spec = op.attr_map.get(name)
            if spec is None:
                out[name] = value       # check_attr_values reports it, listing what the op takes
                continue
            onnx_type = draft.attr_types.get(name)
            if onnx_type is not None and onnx_type not in ACCEPTS[spec.kind]:
                raise AttributeValueError(
                    f"attribute '{name}' must be an ONNX {onnx_kind_names(spec.kind)}, "
                    f"got {A.AttributeType.Name(onnx_type)}", node=knode,
                    hint="the model is malformed; check it with onnx.checker")
            out[name] = self._attr_value(spec.kind, name, value, draft, knode, scope, opsets)
        return out

    def _attr_value(self, kind: AttrKind, name: str, value, draft: NodeDraft, knode: Node,
                    scope: _Scope, opsets: dict):
        if kind is AttrKind.DTYPE:
            if isinstance(value, DType):
                return value
            try:
                return DType.from_onnx(int(value))
            except (KeyError, TypeError, ValueError):
                raise AttributeValueError(f"attribute '{name}' is {value!r}, not an ONNX element type",
                                          node=knode) from None
        if isinstance(value, Graph) or (isinstance(value, tuple) and value
                                         and isinstance(value[0], Graph)):
            return value            # built by an adapter
        if kind is AttrKind.GRAPH:
            hints = subgraph_input_hints(draft, name)
            return self.import_graph(value, scope, opsets, hints)
        if kind is AttrKind.GRAPHS:
            return tuple(self.import_graph(g, scope, opsets) for g in value)
        if kind in (AttrKind.INTS, AttrKind.FLOATS, AttrKind.STRINGS) and not isinstance(value, tuple):
            return tuple(value) if isinstance(value, list) else value
        return value

    # --- functions -------------------------------------------------------------------------
    def _expand(self, node: onnx.NodeProto, fproto: onnx.FunctionProto, inputs, scope: _Scope,
                opsets: dict, defaults: dict[str, AttributeProto]) -> None:
        self.depth += 1
        if self.depth > MAX_FUNCTION_DEPTH:
            raise ModelLoadError(f"functions nest deeper than {MAX_FUNCTION_DEPTH} levels at "
                                 f"{node.op_type} node '{node.name}' (recursive function?)")
        caller = dict(defaults)
        caller.update({a.name: a for a in node.attribute})
        fopsets = dict(opsets)
        fopsets.update({normalize_domain(o.domain): o.version for o in fproto.opset_import})
        fscope = _Scope(scope.graph, None, {})
        for i, formal in enumerate(fproto.input):
            fscope.define(formal, inputs[i] if i < len(inputs) else None)
        for n in fproto.node:
            self.import_node(resolve_attribute_refs(n, caller), fscope, fopsets)
        for formal, actual in zip(fproto.output, node.output):
            if not actual:
                continue
            try:
                v = fscope.lookup(formal)
            except KeyError:
                raise ModelLoadError(f"function {fproto.name} does not define its output '{formal}'") from None
            scope.define(actual, v)
        self.depth -= 1


class _AdaptContext:
    """What an adapter may do: make constants, add helper nodes, look at input types."""

    def __init__(self, importer: _Importer, scope: _Scope, node: onnx.NodeProto, opsets: dict):
        self.importer = importer
        self.scope = scope
        self.node = node
        self.opsets = opsets

    def const(self, arr: np.ndarray, hint: str = "c") -> Value:
        return self.scope.graph.add_constant(np.asarray(arr), hint)

    def emit(self, op_type: str, inputs, attrs: dict | None = None, num_outputs: int = 1,
             names=None, graph: Graph | None = None) -> list[Value]:
        """Add a helper node to the current graph (or to `graph`, a subgraph being built)."""
        graph = graph or self.scope.graph
        op = OP_TABLE.get(op_type)
        if op is None:
            raise UnsupportedOpError(
                f"upgrading {self.node.op_type} from its old opset form needs op {op_type}, "
                f"which kiln does not have", ops=[op_type], node=_ErrNode(self.node))
        attrs = dict(attrs or {})
        knode = Node(op, list(inputs), attrs, [None] * num_outputs, self.node.name)
        check_attr_values(op, knode.attrs, knode)
        types = infer_types(op, knode.inputs, knode.attrs, num_outputs, knode)
        stem = self.node.name or self.node.op_type.lower()
        names = list(names or [f"{stem}_{op_type.lower()}"] * num_outputs)
        knode.outputs = [graph.new_value(n, t) for n, t in zip(names, types)]
        for v in knode.outputs:
            v.producer = knode
        graph.append(knode)
        return knode.outputs

    def subgraph(self, name: str) -> Graph:
        """An empty graph nested in the current one (a body the adapter builds)."""
        g = Graph(name)
        g.parent = self.scope.graph
        return g

    def import_body(self, body: onnx.GraphProto, inside: Graph, hints=None) -> Graph:
        """Import an ONNX body graph nested in `inside` (a graph from `subgraph`)."""
        return self.importer.import_graph(body, _Scope(inside, self.scope, {}), self.opsets, hints)

    def dim_size(self, v: Value, axis: int) -> Value:
        """An int64 scalar holding dimension `axis` of v."""
        t = v.type
        if isinstance(t, TensorType) and t.shape is not None and isinstance(t.shape[axis], int):
            return self.const(np.array(t.shape[axis], np.int64), f"{v.name}_dim{axis}")
        shape = self.emit("Shape", [v])[0]
        return self.emit("Gather", [shape, self.const(np.array(axis, np.int64), "axis")],
                         {"axis": 0})[0]

    def rank(self, v: Value | None) -> int | None:
        t = v.type if v is not None else None
        return t.rank if isinstance(t, TensorType) else None

    def dtype(self, v: Value) -> DType:
        if not isinstance(v.type, TensorType):
            self.fail(f"expected a tensor input, got {v.type}")
        return v.type.dtype

    def append_unit_dims(self, v: Value, k: int) -> Value:
        if v.is_constant:
            return self.const(v.data.reshape(v.data.shape + (1,) * k), f"{v.name}_expanded")
        r = self.rank(v)
        axes = self.const(np.arange(r, r + k, dtype=np.int64), f"{v.name}_axes")
        return self.emit("Unsqueeze", [v, axes])[0]

    def fail(self, message: str):
        raise UnsupportedOpError(message, ops=[self.node.op_type], node=_ErrNode(self.node))


class _ErrNode:
    """Stands in for a kiln Node in error messages before one exists."""

    def __init__(self, node: onnx.NodeProto):
        self.name = node.name
        self.op = type("op", (), {"name": node.op_type})()


# --- subgraph inputs ----------------------------------------------------------------------------

def subgraph_input_hints(draft: NodeDraft, attr: str) -> list[Type | None] | None:
    """Types for a body's inputs, for models that leave them undeclared."""
    ins = draft.inputs
    if draft.op_type == "Loop" and attr == "body":
        carried = [_loosen(v.type) if v is not None else None for v in ins[2:]]
        return [TensorType(DType.int64, ()), TensorType(DType.bool, ())] + carried
    if draft.op_type == "Scan" and attr == "body":
        n_scan = int(draft.attrs.get("num_scan_inputs", 0))
        n_state = len(ins) - n_scan
        axes = list(draft.attrs.get("scan_input_axes", ())) or [0] * n_scan
        hints = [v.type if v is not None else None for v in ins[:n_state]]
        for v, ax in zip(ins[n_state:], axes):
            t = v.type if v is not None else None
            if isinstance(t, TensorType) and t.shape is not None and t.shape:
                ax = ax + len(t.shape) if ax < 0 else ax
                t = TensorType(t.dtype, t.shape[:ax] + t.shape[ax + 1:])
            hints.append(t)
        return hints
    if draft.op_type == "SequenceMap" and attr == "body":
        out = []
        for v in ins:
            t = v.type if v is not None else None
            out.append(_loosen(t.elem) if isinstance(t, SequenceType) else t)
        return out
    return None


def _loosen(t: Type | None) -> Type | None:
    """The same kind of type with every dimension unknown (it may change between iterations)."""
    if isinstance(t, TensorType):
        return TensorType(t.dtype, None if t.shape is None else (None,) * len(t.shape))
    if isinstance(t, SequenceType):
        return SequenceType(_loosen(t.elem))
    if isinstance(t, OptionalType):
        return OptionalType(_loosen(t.elem))
    return t


# --- small helpers ------------------------------------------------------------------------------

def _refine(declared: Type | None, inferred: Type) -> Type:
    if declared is None or inferred is None:
        return inferred
    try:
        if types_compatible(declared, inferred):
            return refine(declared, inferred)
    except Exception:
        pass
    return inferred


def _trim(inputs: list) -> list:
    out = list(inputs)
    while out and out[-1] is None:
        out.pop()
    return out


def _own_values(graph: Graph):
    return [v for n in graph.nodes for v in n.outputs if v is not None]
