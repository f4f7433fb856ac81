"""Algebraic simplification: the rule tables of kiln/passes/rules/, applied to a fixed point.

ALGEBRA holds the identities, involutions, shape compositions, reassociation, distributivity and
strength reduction; EXPORTER_PATTERNS puts back the ops exporters spell out (LayerNorm, GELU,
softmax, linear layers). Rules that change results for NaN/Inf/-0 run only with fast_math.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..ir.graph import Graph
from ..rewrite.driver import apply_rules
from ..rewrite.pass_manager import Pass, PassContext
from .rules.algebra import ALGEBRA
from .rules.exporter_patterns import EXPORTER_PATTERNS

RULES = EXPORTER_PATTERNS + ALGEBRA   # recognition first: algebra would rewrite the spellings


@dataclass(frozen=True)
class Simplify(Pass):
    name: ClassVar[str] = "simplify"

    def run(self, graph: Graph, ctx: PassContext) -> Graph:
        apply_rules(graph, RULES, ctx, fast_math=ctx.options.fast_math)
        return graph
