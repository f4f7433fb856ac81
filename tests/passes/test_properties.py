"""Every pass, on random graphs: the verifier stays green, results stay equal, a second run is a no-op.
And the property test has teeth: a deliberately wrong rule is caught."""

import numpy as np
import pytest
from hypothesis import HealthCheck, find, given, settings

from kiln.ir.interpreter import interpret
from kiln.passes.eliminate_common_subexpressions import EliminateCommonSubexpressions
from kiln.passes.eliminate_dead_code import EliminateDeadCode
from kiln.passes.fold_constants import FoldConstants
from kiln.passes.fuse import Fuse
from kiln.passes.simplify import Simplify
from kiln.pipeline import pipeline
from kiln.rewrite.driver import Rule, apply_rules
from kiln.rewrite.pass_manager import Pass
from kiln.rewrite.pattern import P, Var
from tests.passes.helpers import check_pass, run_passes
from tests.strategies import graphs, random_inputs

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))

PASSES = {
    "fold_constants": [FoldConstants()],
    "eliminate_common_subexpressions": [EliminateCommonSubexpressions()],
    "eliminate_dead_code": [EliminateDeadCode()],
    "simplify": [Simplify()],
    "fuse": [Fuse()],
    "O2": pipeline(2),
}


@pytest.mark.parametrize("name", PASSES)
@SETTINGS
@given(g=graphs())
def test_pass_preserves_results(name, g):
    check_pass(g, PASSES[name], random_inputs(g), rtol=1e-4, atol=1e-4)


class _SwapSubOperands(Pass):
    name = "broken"

    def run(self, graph, ctx):
        x, y = Var("x"), Var("y")
        rule = Rule("sub-swap", P.Sub(x, y, name="root"), lambda m, r: r.Sub(m.y, m.x))
        apply_rules(graph, [rule], ctx, max_steps=1)
        return graph


def _broken_result_differs(g) -> bool:
    out, _ = run_passes(g, [_SwapSubOperands()])
    feeds = random_inputs(g)
    for w, o in zip(interpret(g, feeds), interpret(out, feeds)):
        if not np.allclose(w, o, rtol=1e-4, atol=1e-4, equal_nan=True):
            return True
    return False


def test_a_broken_rule_is_caught():
    found = find(graphs(), _broken_result_differs,
                 settings=settings(max_examples=300, deadline=None,
                                   suppress_health_check=list(HealthCheck)))
    assert any(n.op.name == "Sub" for n in found.nodes)
