"""Passes, the context they run in, and the pass manager that runs them with instruments.

A pass is a small frozen dataclass: its fields are its typed options, `name` says what it is
called in pipelines and on the command line, and `run(graph, ctx)` returns the (usually
mutated) graph. A pass that keeps an analysis valid lists it in `preserves`; everything else is
invalidated after the pass changes the graph.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import ClassVar, Sequence

from ..ir.graph import Graph
from ..options import CompileOptions
from .analyses import AnalysisManager


@dataclass(frozen=True)
class Pass:
    name: ClassVar[str] = "pass"
    preserves: ClassVar[frozenset] = frozenset()

    def run(self, graph: Graph, ctx: "PassContext") -> Graph:
        raise NotImplementedError


@dataclass
class PassRecord:
    """What one run of one pass did."""

    name: str
    nodes_before: int
    nodes_after: int = 0
    added: int = 0              # live nodes after that were not there before
    removed: int = 0            # live nodes before that are gone
    seconds: float = 0.0
    changed: bool = False
    counters: dict = field(default_factory=dict)   # e.g. {"rule add-zero": 3, "folded": 7}


class PassContext:
    def __init__(self, options: CompileOptions | None = None, instruments: Sequence = ()):
        self.options = options or CompileOptions()
        self.analyses = AnalysisManager()
        self.instruments = list(instruments)
        self.records: list[PassRecord] = []
        self._current: PassRecord | None = None

    def count(self, key: str, n: int = 1) -> None:
        """Add to a statistic of the running pass (rules fired, nodes folded, ...)."""
        if self._current is not None:
            self._current.counters[key] = self._current.counters.get(key, 0) + n

    def run_pass(self, p: Pass, graph: Graph) -> Graph:
        live_before = live_nodes(graph)
        record = PassRecord(p.name, len(live_before))
        for ins in self.instruments:
            ins.before_pass(p, graph, self)
        outer, self._current = self._current, record
        before = fingerprint(graph)
        start = time.perf_counter()
        try:
            graph = p.run(graph, self)
        finally:
            self._current = outer
        record.seconds = time.perf_counter() - start
        live_after = live_nodes(graph)
        record.nodes_after = len(live_after)
        record.added = len(live_after - live_before)
        record.removed = len(live_before - live_after)
        record.changed = fingerprint(graph) != before
        if record.changed:
            self.analyses.invalidate(keep=p.preserves)
        self.records.append(record)
        for ins in self.instruments:
            ins.after_pass(p, graph, self, record)
        return graph


class PassManager:
    """Runs passes in order. `PassManager(passes).run(graph, ctx)`."""

    def __init__(self, passes: Sequence[Pass]):
        self.passes = list(passes)

    def run(self, graph: Graph, ctx: PassContext | None = None) -> Graph:
        ctx = ctx or PassContext()
        for p in self.passes:
            graph = ctx.run_pass(p, graph)
        return graph


@dataclass(frozen=True)
class FixedPoint(Pass):
    """Runs its passes in turn until a round changes nothing (or `max_rounds` is reached)."""

    passes: tuple = ()
    max_rounds: int = 8
    name: ClassVar[str] = "fixed-point"

    def run(self, graph: Graph, ctx: PassContext) -> Graph:
        for round_ in range(self.max_rounds):
            before = fingerprint(graph)
            for p in self.passes:
                graph = ctx.run_pass(p, graph)
            if fingerprint(graph) == before:
                ctx.count("rounds", round_ + 1)
                break
        else:
            ctx.count("rounds", self.max_rounds)
        return graph


def live_nodes(graph: Graph) -> set[int]:
    """Ids of the live nodes: those with a path to a graph output (dead ones wait for DCE)."""
    from ..ir.graph import subgraphs
    live = {id(v) for v in graph.outputs}
    nodes = set()
    for node in reversed(graph.nodes):
        if any(v is not None and id(v) in live for v in node.outputs):
            nodes.add(id(node))
            live.update(id(v) for v in node.inputs if v is not None)
            for g in subgraphs(node):
                live.update(id(v) for v in g.captured_values())
    return nodes


def fingerprint(graph: Graph) -> str:
    """A cheap identity of the graph's structure: its printed text with constants by reference."""
    from ..ir.printer import print_graph
    return print_graph(graph, inline_limit=0)
