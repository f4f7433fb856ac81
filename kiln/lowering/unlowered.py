"""The ops of kiln's op table that the native back end does not lower, and why: {op: reason}.

`lower_graph` rejects a graph holding any of them with one LoweringError naming them (run such
models with the interpreter). tests/lowering/test_native_coverage.py keeps this table exact:
an op without a lowering must be listed here, and an op that gains a lowering must leave it
(and gain a native test).
"""

_STRINGS = "works on strings, and the native back end has no string type"

UNLOWERED: dict[str, str] = {
    "StringConcat": _STRINGS,
    "StringSplit": _STRINGS,
    "RegexFullMatch": _STRINGS + " (nor a regular expression engine)",
    "StringNormalizer": _STRINGS,
}
