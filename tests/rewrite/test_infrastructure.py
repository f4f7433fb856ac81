"""Pass infrastructure: analyses (use-def, dominators, post-dominators), caching and
invalidation, instruments, the pattern language."""

import io

import numpy as np
import pytest

from kiln.errors import VerificationError
from kiln.ir import GraphBuilder, ops, tensor
from kiln.ir.dtypes import DType
from kiln.ir.graph import Node
from kiln.rewrite.analyses import ENTRY, EXIT, Dominators, PostDominators, UseDef
from kiln.rewrite.instruments import PrintIR, VerifyEach, format_statistics
from kiln.rewrite.pass_manager import FixedPoint, Pass, PassContext, PassManager
from kiln.rewrite.pattern import AnyOf, Const, Match, P, Var, all_equal, group
from kiln.passes.eliminate_dead_code import EliminateDeadCode
from kiln.passes.simplify import Simplify

f32 = DType.float32


def course_dominator_graph():
    """The course's figure: node 3 feeds 4, 5 and 6, which meet at 7, then 8."""
    b = GraphBuilder()
    x = b.input("x", tensor(f32, 4))
    n3 = b.Relu(x, name="3")
    n4 = b.Exp(n3, name="4")
    n5 = b.Neg(n3, name="5")
    n6 = b.Abs(n3, name="6")
    n7 = b.Sum(n4, n5, n6, name="7")
    n8 = b.Tanh(n7, name="8")
    b.output(n8)
    return b.graph


def by_name(graph):
    return {n.name: n for n in graph.nodes}


def test_post_dominators_of_the_course_figure():
    g = course_dominator_graph()
    pdom, n = PostDominators(g), by_name(g)
    for k in "456":
        assert pdom.parent(n[k]) is n["7"]
    assert pdom.parent(n["3"]) is n["7"]     # every path from 3 reaches 7 first
    assert pdom.parent(n["7"]) is n["8"]
    assert pdom.parent(n["8"]) == EXIT


def test_dominators_of_the_course_figure():
    g = course_dominator_graph()
    dom, n = Dominators(g), by_name(g)
    assert dom.parent(n["3"]) == ENTRY
    for k in "4567":
        assert dom.parent(n[k]) is n["3"]
    assert dom.parent(n["8"]) is n["7"]


def test_usedef_counts_readers_and_outputs():
    g = course_dominator_graph()
    ud, n = UseDef(g), by_name(g)
    assert len(ud.uses(n["3"].outputs[0])) == 3
    assert ud.is_used(n["8"].outputs[0]) and not ud.uses(n["8"].outputs[0])


class _Counting(Pass):
    name = "counting"

    def run(self, graph, ctx):
        ctx.analyses.get(UseDef, graph)
        ctx.count("ran")
        return graph


def test_analyses_are_cached_and_invalidated_by_a_change():
    g = course_dominator_graph()
    ctx = PassContext()
    a = ctx.analyses.get(UseDef, g)
    assert ctx.analyses.get(UseDef, g) is a
    PassManager([_Counting()]).run(g, ctx)          # no change: cache kept
    assert ctx.analyses.get(UseDef, g) is a
    n = by_name(g)
    g.replace_all_uses(n["7"].outputs[0], n["4"].outputs[0])
    PassManager([EliminateDeadCode()]).run(g, ctx)  # changes the graph: cache dropped
    assert ctx.analyses.get(UseDef, g) is not a


class _Breaks(Pass):
    name = "breaks-ssa"

    def run(self, graph, ctx):
        graph.nodes.reverse()
        return graph


def test_verify_each_names_the_pass_that_broke_the_graph():
    ctx = PassContext(instruments=[VerifyEach()])
    with pytest.raises(VerificationError, match="after pass breaks-ssa"):
        PassManager([_Breaks()]).run(course_dominator_graph(), ctx)


def test_print_after_named_pass_and_statistics():
    out = io.StringIO()
    b = GraphBuilder()
    x = b.input("x", tensor(f32, 4))
    b.output(b.Identity(b.Neg(b.Neg(x))))
    ctx = PassContext(instruments=[PrintIR(after={"simplify"}, stream=out)])
    PassManager([FixedPoint((Simplify(),)), EliminateDeadCode()]).run(b.graph, ctx)
    text = out.getvalue()
    assert text.count("IR after simplify") == 2 and "eliminate_dead_code" not in text
    table = format_statistics(ctx.records)
    assert "rule neg-neg: 1" in table and "simplify" in table and "rounds: 2" in table
    simplify = next(r for r in ctx.records if r.name == "simplify")
    assert (simplify.nodes_before, simplify.nodes_after, simplify.added, simplify.removed) == (3, 1, 0, 2)


def test_pattern_matching_commutative_groups_attributes_and_constants():
    b = GraphBuilder()
    x = b.input("x", tensor(f32, 4))
    zero = b.constant(np.zeros(4, np.float32), "zero")
    add = b.Add(zero, x)
    act = b.LeakyRelu(add, alpha=0.5)
    b.output(act)
    n = b.graph.nodes
    users = lambda v: 1  # noqa: E731
    m = Match()
    assert P.Add(Var("v"), Const("c", all_equal(0)), name="root").match_node(n[0], m, users)
    assert m.v is x and m.c is zero and m.root is n[0]
    assert P.LeakyRelu(Var("v"), alpha=0.5).match_node(n[1], Match(), users)
    assert not P.LeakyRelu(Var("v"), alpha=0.25).match_node(n[1], Match(), users)
    assert AnyOf({ops.Relu, ops.LeakyRelu})(P.Add(Var("a"), Var("b"))).match_node(n[1], Match(), users)
    unary = group(lambda op: op.kind.value == "elementwise")
    assert ops.LeakyRelu in unary.ops and ops.Add not in unary.ops
    # a value read twice is not matched inside a pattern unless shared=True
    assert not P.LeakyRelu(P.Add(Var("a"), Var("b"))).match_node(n[1], Match(), lambda v: 2)
    assert P.LeakyRelu(P.Add(Var("a"), Var("b"), shared=True)).match_node(n[1], Match(), lambda v: 2)
