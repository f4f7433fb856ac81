"""Instruments watch passes run: print the IR around them, verify after each, time and count.

    ctx = PassContext(instruments=[PrintIR(after={"simplify"}), VerifyEach(), Timing()])
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TextIO

from ..ir.printer import print_graph
from ..ir.verifier import verify


class Instrument:
    def before_pass(self, p, graph, ctx) -> None:
        pass

    def after_pass(self, p, graph, ctx, record) -> None:
        pass


@dataclass
class PrintIR(Instrument):
    """Print the graph before and/or after passes: `True` for every pass, or a set of names."""

    before: bool | set = False
    after: bool | set = False
    stream: TextIO = field(default_factory=lambda: sys.stdout)

    def _wants(self, which, name: str) -> bool:
        return which is True or (isinstance(which, (set, frozenset, list, tuple)) and name in which)

    def before_pass(self, p, graph, ctx) -> None:
        if self._wants(self.before, p.name):
            self.stream.write(f"// ----- IR before {p.name} -----\n{print_graph(graph)}")

    def after_pass(self, p, graph, ctx, record) -> None:
        if self._wants(self.after, p.name):
            self.stream.write(f"// ----- IR after {p.name} -----\n{print_graph(graph)}")


class VerifyEach(Instrument):
    """Run the verifier after every pass; a failure names the pass that broke the graph."""

    def after_pass(self, p, graph, ctx, record) -> None:
        from ..errors import VerificationError
        try:
            verify(graph)
        except VerificationError as e:
            raise VerificationError(f"after pass {p.name}: {e.message}", rule=e.rule,
                                    node=e.node) from e


def format_statistics(records) -> str:
    """A table of what each pass run did: time, nodes before/after, counters."""
    rows = [("pass", "ms", "live nodes (+added -removed)", "changes")]
    for r in records:
        counters = ", ".join(f"{k}: {v}" for k, v in sorted(r.counters.items()))
        rows.append((r.name, f"{r.seconds * 1e3:.2f}",
                     f"{r.nodes_before} -> {r.nodes_after} (+{r.added} -{r.removed})",
                     counters or ("changed" if r.changed else "-")))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"{a:<{widths[0]}}  {b:>{widths[1]}}  {c:<{widths[2]}}  {d}" for a, b, c, d in rows]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)
