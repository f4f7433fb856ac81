"""The op table as a whole: every op is tested somewhere, docs/ops.md is current, every OpDef is
well formed."""

import re
from pathlib import Path

from kiln.ir.op_table_doc import render
from kiln.ir.opdef import FusionKind
from kiln.ir.ops import OP_TABLE

ROOT = Path(__file__).resolve().parents[2]


def test_every_op_has_a_test():
    text = "".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    untested = [name for name in OP_TABLE
                if not re.search(rf"[\"'.]{name}[\"'(]", text)]
    assert not untested, f"ops without a test: {untested}"


def test_docs_ops_md_is_current():
    assert (ROOT / "docs" / "ops.md").read_text() == render(), \
        "regenerate with: python -m kiln.ir.op_table_doc > docs/ops.md"


def test_opdefs_are_well_formed():
    assert len(OP_TABLE) >= 130
    for name, op in OP_TABLE.items():
        assert op.name == name
        assert isinstance(op.kind, FusionKind)
        assert callable(op.infer) and callable(op.reference)
        assert op.since_version >= 1
        assert op.doc, f"{name} has no doc line"
        variadic = [o for o in op.inputs if o.variadic]
        assert len(variadic) <= 1 and (not variadic or op.inputs[-1].variadic), name
