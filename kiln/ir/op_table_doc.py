"""Renders the op table as Markdown: `python -m kiln.ir.op_table_doc > docs/ops.md`."""

from __future__ import annotations

from .opdef import REQUIRED
from .ops import OP_TABLE


def render() -> str:
    ops = sorted(OP_TABLE.values(), key=lambda o: (o.domain, o.name))
    lines = [
        "# kiln op table",
        "",
        f"{len(ops)} ops. Generated from `kiln/ir/ops/` by `python -m kiln.ir.op_table_doc`;",
        "do not edit by hand. Signatures follow the ONNX opset given as `since`.",
        "",
        "| op | domain | since | kind | inputs | outputs | attributes |",
        "|---|---|---|---|---|---|---|",
    ]
    for op in ops:
        ins = ", ".join(_operand(o) for o in op.inputs)
        outs = ", ".join(_operand(o) for o in op.outputs)
        attrs = ", ".join(a.name + ("" if a.default is not REQUIRED else " (required)") for a in op.attrs)
        lines.append(f"| {op.name} | {op.domain or 'ai.onnx'} | {op.since_version} | "
                     f"{op.kind.value} | {ins} | {outs} | {attrs} |")
    return "\n".join(lines) + "\n"


def _operand(o) -> str:
    return o.name + ("?" if o.optional else "") + ("*" if o.variadic else "")


if __name__ == "__main__":
    print(render(), end="")
