"""The pattern language: match ops, op groups, operands, attributes and constants.

    x, c = Var("x"), Const("c", all_equal(0.0))
    P.Add(x, c)                       # Add with a constant-zero operand, either side (commutative)
    P.Transpose(P.Transpose(x, name="inner"), name="outer")
    AnyOf({ops.Relu, ops.Sigmoid})(x) # an op group
    P.LeakyRelu(x, alpha=0.5)         # attribute equal to a value, or given as a predicate

A match binds names to Values (Var, Const) and Nodes (`name=` on an op pattern). Operands of
commutative binary ops are tried in both orders. A value that is read by more than one node can
only be matched at the root (matching it inside would duplicate work), unless `shared=True`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..ir.graph import Node, Value
from ..ir.opdef import OpDef, Trait
from ..ir.ops import get_op


class Match(dict):
    """Captured Values and Nodes by name; read as m["x"] or m.x."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class Pattern:
    def match(self, v: Value | None, m: Match, users) -> bool:
        raise NotImplementedError


class Var(Pattern):
    """Any value (optionally one that satisfies `where(value)`); the same name must bind the
    same value everywhere in a pattern."""

    def __init__(self, name: str, where: Callable[[Value], bool] | None = None):
        self.name, self.where = name, where

    def match(self, v, m, users) -> bool:
        if v is None or (self.where is not None and not self.where(v)):
            return False
        if self.name in m:
            return m[self.name] is v
        m[self.name] = v
        return True


class Const(Var):
    """A constant value, optionally with a predicate on its data (see all_equal)."""

    def __init__(self, name: str, data_where: Callable[[np.ndarray], bool] | None = None):
        super().__init__(name, lambda v: v.is_constant and (data_where is None or data_where(v.data)))


class OpPattern(Pattern):
    def __init__(self, ops: frozenset, args: tuple, attrs: dict, name: str | None, shared: bool):
        self.ops, self.args, self.attrs, self.name, self.shared = ops, args, attrs, name, shared

    def match(self, v, m, users) -> bool:
        if v is None or v.producer is None:
            return False
        return self.match_node(v.producer, m, users, root=False, value=v)

    def match_node(self, node: Node, m: Match, users, root: bool = True, value=None) -> bool:
        if node.op not in self.ops:
            return False
        if not root and not self.shared and users(value) > 1:
            return False
        if len(node.inputs) != len(self.args) and self.args is not None:
            return False
        for key, want in self.attrs.items():
            got = node.attr(key)
            if callable(want) and not isinstance(want, (int, float, str, tuple)):
                if not want(got):
                    return False
            elif got != want:
                return False
        orders = [self.args]
        if len(self.args) == 2 and node.op.has(Trait.COMMUTATIVE):
            orders.append(self.args[::-1])
        for args in orders:
            trial = Match(m)
            if all(p.match(x, trial, users) for p, x in zip(args, node.inputs)):
                if self.name:
                    trial[self.name] = node
                m.clear()
                m.update(trial)
                return True
        return False


class _OpFactory:
    """P.Add(x, y, name="add", alpha=...) makes an OpPattern for the op named Add."""

    def __getattr__(self, opname: str):
        op = get_op(opname)
        return AnyOf({op})


class AnyOf:
    """An op group: AnyOf({ops.Relu, ops.Tanh})(x) matches either."""

    def __init__(self, ops):
        self.ops = frozenset(ops)

    def __call__(self, *args: Pattern, name: str | None = None, shared: bool = False, **attrs):
        return OpPattern(self.ops, tuple(args), attrs, name, shared)


P = _OpFactory()


def group(predicate: Callable[[OpDef], bool]) -> AnyOf:
    """The group of ops in the table satisfying a predicate, e.g. group(lambda o: o.kind is ...)."""
    from ..ir.ops import OP_TABLE
    return AnyOf({op for op in OP_TABLE.values() if predicate(op)})


def all_equal(value: float) -> Callable[[np.ndarray], bool]:
    """Predicate: every element of the constant equals `value` (and there is at least one)."""
    def check(data: np.ndarray) -> bool:
        return data.size > 0 and data.dtype.kind in "biuf" and bool(np.all(data == value))
    return check


def is_scalar(v: Value) -> bool:
    t = v.type
    return getattr(t, "shape", None) is not None and all(d == 1 for d in t.shape)
