"""Text → Graph IR: reads what `printer.print_graph` writes (grammar in docs/ir.md).

Tensors printed by reference (`#name`) are looked up in the `weights` mapping given to
`parse_graph`; `printer.collect_weights(graph)` builds it. Node types are read as written, so a
parsed graph is exactly what was printed; run the verifier to check the types against inference.
"""

from __future__ import annotations

import json
import re
from typing import Mapping

import numpy as np

from ..errors import IRParseError
from .attrs import check_attr_values
from .dtypes import DType
from .graph import Graph, Node, Value
from .opdef import AttrKind
from .ops import OP_TABLE
from .types import OptionalType, SequenceType, TensorType, Type

_TOKEN = re.compile(r"""
    (?P<ws>\s+|\#\s[^\n]*|//[^\n]*)
  | (?P<sigil>[%@#])(?P<sname>[A-Za-z0-9_.]+|"(?:[^"\\]|\\.)*")
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<number>-?(?:\d+\.\d*(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+|\.\d+(?:[eE][-+]?\d+)?|\d+|inf\b|nan\b))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<arrow>->)
  | (?P<punct>[()\[\]{}<>,:=*?])
""", re.VERBOSE)


class _Tok:
    __slots__ = ("kind", "text", "pos")

    def __init__(self, kind, text, pos):
        self.kind, self.text, self.pos = kind, text, pos

    def __repr__(self):
        return f"{self.kind}:{self.text!r}"


def _tokenize(text: str) -> list[_Tok]:
    toks, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise IRParseError(f"unexpected character {text[pos]!r} at {_where(text, pos)}")
        kind = m.lastgroup
        if kind == "sname":
            sigil, name = m.group("sigil"), m.group("sname")
            toks.append(_Tok(sigil, json.loads(name) if name.startswith('"') else name, pos))
        elif kind != "ws":
            toks.append(_Tok(kind, m.group(kind), pos))
        pos = m.end()
    toks.append(_Tok("eof", "", pos))
    return toks


def _where(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"line {line}, column {col}"


def parse_graph(text: str, weights: Mapping[str, np.ndarray] | None = None) -> Graph:
    p = _Parser(text, weights or {})
    g = p.graph(parent=None, scope={})
    p.expect("eof")
    return g


def parse_type(text: str) -> Type:
    p = _Parser(text, {})
    t = p.type()
    p.expect("eof")
    return t


class _Parser:
    def __init__(self, text: str, weights: Mapping[str, np.ndarray]):
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.weights = weights

    # --- token helpers --------------------------------------------------------------------
    def peek(self, kind=None, text=None) -> bool:
        t = self.toks[self.i]
        return (kind is None or t.kind == kind) and (text is None or t.text == text)

    def next(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def expect(self, kind, text=None) -> _Tok:
        t = self.toks[self.i]
        if t.kind != kind or (text is not None and t.text != text):
            want = text or kind
            got = t.text or t.kind
            self.fail(f"expected {want!r}, found {got!r}")
        self.i += 1
        return t

    def accept(self, kind, text=None) -> bool:
        if self.peek(kind, text):
            self.i += 1
            return True
        return False

    def fail(self, message: str, tok: _Tok | None = None):
        tok = tok or self.toks[self.i]
        raise IRParseError(f"{message} at {_where(self.text, tok.pos)}")

    # --- graphs ---------------------------------------------------------------------------
    def graph(self, parent: Graph | None, scope: dict) -> Graph:
        self.expect("ident", "graph")
        g = Graph(self.expect("@").text)
        g.parent = parent
        scope = dict(scope)      # names of enclosing graphs stay visible
        self.expect("punct", "(")
        while not self.peek("punct", ")"):
            name = self.expect("%").text
            self.expect("punct", ":")
            v = Value(g.claim(name), self.type())
            g.inputs.append(v)
            self._define(scope, v)
            if not self.accept("punct", ","):
                break
        self.expect("punct", ")")
        self.expect("punct", "{")
        while True:
            if self.accept("ident", "const"):
                self._constant(g, scope)
            elif self.peek("ident", "return"):
                break
            else:
                self._node(g, scope)
        self.expect("ident", "return")
        if not self.peek("punct", "}"):
            g.outputs.append(self._use(scope))
            while self.accept("punct", ","):
                g.outputs.append(self._use(scope))
        self.expect("punct", "}")
        return g

    def _define(self, scope: dict, v: Value):
        scope[v.name] = v

    def _use(self, scope: dict) -> Value | None:
        if self.accept("ident", "_"):
            return None
        tok = self.expect("%")
        if tok.text not in scope:
            self.fail(f"use of undefined value %{tok.text}", tok)
        return scope[tok.text]

    def _constant(self, g: Graph, scope: dict):
        name = self.expect("%").text
        self.expect("punct", ":")
        t = self.type()
        self.expect("punct", "=")
        if not isinstance(t, TensorType) or t.shape is None:
            self.fail("a constant needs a tensor type with a known shape")
        data = self.tensor_body(t, name)
        v = Value(g.claim(name), t, data=data)
        g.constants.append(v)
        self._define(scope, v)

    def _node(self, g: Graph, scope: dict):
        results: list[tuple[str, Type] | None] = []
        while True:
            if self.accept("ident", "_"):
                results.append(None)
            else:
                name = self.expect("%").text
                self.expect("punct", ":")
                results.append((name, self.type()))
            if not self.accept("punct", ","):
                break
        self.expect("punct", "=")
        optok = self.expect("ident")
        op = OP_TABLE.get(optok.text)
        if op is None:
            self.fail(f"unknown op {optok.text!r}", optok)
        self.expect("punct", "(")
        inputs = []
        while not self.peek("punct", ")"):
            inputs.append(self._use(scope))
            if not self.accept("punct", ","):
                break
        self.expect("punct", ")")
        outputs = [None if r is None else Value(g.claim(r[0]), r[1]) for r in results]
        attrs = {}
        if self.accept("punct", "{"):
            while not self.peek("punct", "}"):
                atok = self.expect("ident")
                spec = op.attr_map.get(atok.text)
                if spec is None:
                    self.fail(f"{op.name} has no attribute {atok.text!r}", atok)
                self.expect("punct", "=")
                attrs[atok.text] = self.attr_value(spec.kind, g, scope)
                if not self.accept("punct", ","):
                    break
            self.expect("punct", "}")
        name = ""
        if self.accept("ident", "loc"):
            self.expect("punct", "(")
            name = json.loads(self.expect("string").text)
            self.expect("punct", ")")
        node = Node(op, inputs, attrs, outputs, name)
        try:
            check_attr_values(op, node.attrs, node)
        except Exception as e:
            self.fail(str(e), optok)
        g.nodes.append(node)
        for v in outputs:
            if v is not None:
                self._define(scope, v)

    # --- types ----------------------------------------------------------------------------
    def type(self) -> Type:
        tok = self.expect("ident")
        if tok.text in ("seq", "opt"):
            self.expect("punct", "<")
            elem = self.type()
            self.expect("punct", ">")
            return SequenceType(elem) if tok.text == "seq" else OptionalType(elem)
        try:
            dtype = DType.from_short(tok.text)
        except KeyError:
            self.fail(f"unknown element type {tok.text!r}", tok)
        self.expect("punct", "[")
        if self.accept("punct", "*"):
            self.expect("punct", "]")
            return TensorType(dtype, None)
        dims = []
        while not self.peek("punct", "]"):
            if self.accept("punct", "?"):
                dims.append(None)
            elif self.peek("number"):
                dims.append(int(self.next().text))
            elif self.peek("string"):
                dims.append(json.loads(self.next().text))
            else:
                dims.append(self.expect("ident").text)
            if not self.accept("punct", ","):
                break
        self.expect("punct", "]")
        return TensorType(dtype, tuple(dims))

    # --- attribute values -----------------------------------------------------------------
    def attr_value(self, kind: AttrKind, g: Graph, scope: dict):
        if kind is AttrKind.GRAPH:
            return self.graph(g, scope)
        if kind is AttrKind.GRAPHS:
            self.expect("punct", "[")
            out = []
            while not self.peek("punct", "]"):
                out.append(self.graph(g, scope))
                if not self.accept("punct", ","):
                    break
            self.expect("punct", "]")
            return tuple(out)
        if kind is AttrKind.DTYPE:
            tok = self.expect("ident")
            try:
                return DType.from_short(tok.text)
            except KeyError:
                self.fail(f"unknown element type {tok.text!r}", tok)
        if kind is AttrKind.TYPE:
            self.expect("ident", "type")
            self.expect("punct", "<")
            t = self.type()
            self.expect("punct", ">")
            return t
        if kind is AttrKind.TENSOR:
            self.expect("ident", "tensor")
            self.expect("punct", "<")
            t = self.type()
            self.expect("punct", ">")
            return self.tensor_body(t, None)
        if self.peek("punct", "["):
            return tuple(self.scalar_list())
        return self.scalar()

    def scalar(self):
        tok = self.next()
        if tok.kind == "number":
            text = tok.text
            if text in ("inf", "-inf", "nan", "-nan") or any(c in text for c in ".eE"):
                return float(text)
            return int(text)
        if tok.kind == "string":
            return json.loads(tok.text)
        if tok.kind == "ident" and tok.text in ("true", "false"):
            return tok.text == "true"
        if tok.kind == "ident" and tok.text in ("inf", "nan"):
            return float(tok.text)
        self.fail(f"expected a value, found {tok.text!r}", tok)

    def scalar_list(self) -> list:
        self.expect("punct", "[")
        out = []
        while not self.peek("punct", "]"):
            out.append(self.scalar())
            if not self.accept("punct", ","):
                break
        self.expect("punct", "]")
        return out

    def tensor_body(self, t: TensorType, default_name: str | None) -> np.ndarray:
        if self.peek("#"):
            tok = self.next()
            if tok.text not in self.weights:
                self.fail(f"tensor #{tok.text} is not among the weights given to the parser", tok)
            data = np.asarray(self.weights[tok.text])
        else:
            values = self.scalar_list()
            if t.dtype is DType.string:
                data = np.array(values, dtype=object)
            else:
                data = np.array(values, dtype=np.float64 if t.dtype.is_float else None)
                data = data.astype(t.dtype.np) if data.size else np.zeros(0, t.dtype.np)
        try:
            return data.reshape(t.shape)
        except ValueError:
            self.fail(f"tensor of {data.size} elements does not fit type {t}")
