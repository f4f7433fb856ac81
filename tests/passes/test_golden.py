"""Golden before/after IR per pass: tests/passes/golden/NAME.kir holds the input graph (its first
line names the passes), NAME.after.kir the expected output. `pytest --accept` rewrites the
.after files from the current output; review the diff before committing it.

Every case is also checked numerically: interpret(before) ≈ interpret(after) on random inputs.
"""

from pathlib import Path

import numpy as np
import pytest

from kiln.ir.interpreter import interpret
from kiln.ir.parser import parse_graph
from kiln.ir.printer import print_graph
from kiln.ir.verifier import verify
from kiln.pipeline import ALL_PASSES
from tests.passes.helpers import run_passes

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.stem for p in GOLDEN.glob("*.kir") if not p.stem.endswith(".after"))


def _feeds(graph):
    rng = np.random.default_rng(0)
    return {v.name: rng.standard_normal([d if isinstance(d, int) else 3 for d in v.type.shape])
            .astype(v.type.dtype.np) for v in graph.inputs}


@pytest.mark.parametrize("case", CASES)
def test_golden(case, request):
    text = (GOLDEN / f"{case}.kir").read_text()
    header = text.splitlines()[0]
    assert header.startswith("// passes:"), "first line must be '// passes: a,b,c'"
    passes = [ALL_PASSES[n.strip()]() for n in header.split(":", 1)[1].split(",")]
    before = parse_graph(text)
    verify(before)
    after, _ = run_passes(before, passes)
    verify(after)
    got = print_graph(after)
    expected = GOLDEN / f"{case}.after.kir"
    if request.config.getoption("--accept"):
        expected.write_text(got)
    assert got == expected.read_text()
    feeds = _feeds(before)
    for w, g in zip(interpret(before, feeds), interpret(after, feeds)):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
