"""Which ops the native lowering tests exercise, read from the test sources.

An op counts as tested natively when a test function that runs on the native back end (it takes
the `backend` fixture, which runs every such test with the Loop IR interpreter and with native
code; it names "native"; or it compiles with compile_graph, compile_program or kiln.compile)
mentions it: as a string (check_op(backend, "Add", ...), a
parametrize list), as a builder call or attribute (b.Add(...), ops.Add), directly or through the
module-level constants and helper functions the test uses. Docstrings and `match=` patterns do
not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).parent.parent
NATIVE_CALLS = frozenset({"compile_graph", "compile_program", "compile"})


def _mentions(tree: ast.AST, names: set[str]) -> tuple[set[str], set[str]]:
    """(op names mentioned in tree, identifiers it reads)."""
    ops, ids = set(), set()
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.Module)) and node.body and \
                isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant):
            skip.add(id(node.body[0].value))                     # docstring
        if isinstance(node, ast.keyword) and node.arg == "match":
            skip.update(id(n) for n in ast.walk(node.value))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
            ops.add(node.value)
        elif isinstance(node, ast.Attribute) and node.attr in names:
            ops.add(node.attr)
        elif isinstance(node, ast.Name):
            ids.add(node.id)
    return ops, ids


def _runs_native(fn: ast.FunctionDef) -> bool:
    if any(a.arg == "backend" for a in fn.args.args):
        return True
    for n in ast.walk(fn):
        if isinstance(n, ast.Constant) and n.value == "native":
            return True
        if isinstance(n, ast.Call):
            f = n.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
            if name in NATIVE_CALLS:
                return True
    return False


def ops_tested_in(source: str, names: set[str]) -> set[str]:
    """The ops the native tests of one test module exercise."""
    tree = ast.parse(source)
    defs: dict[str, ast.AST] = {}                # module-level helpers and constants
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defs[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name):
                    defs[t.id] = node
    tested: set[str] = set()
    for fn in tree.body:
        if not (isinstance(fn, ast.FunctionDef) and fn.name.startswith("test")
                and _runs_native(fn)):
            continue
        seen, todo = set(), [fn]
        while todo:
            node = todo.pop()
            ops, ids = _mentions(node, names)
            tested |= ops
            for i in ids:
                if i in defs and i not in seen:
                    seen.add(i)
                    todo.append(defs[i])
    return tested


def natively_tested_ops(names: set[str], directory: Path = TESTS) -> dict[str, list[str]]:
    """op name -> the test modules under `directory` whose native tests exercise it."""
    out: dict[str, list[str]] = {}
    for path in sorted(directory.rglob("test_*.py")):
        for op in ops_tested_in(path.read_text(), names):
            out.setdefault(op, []).append(str(path.relative_to(directory)))
    return out
