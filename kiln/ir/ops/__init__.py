"""The op table. Importing this package registers every op family.

`ops.Add` (module attribute) or `get_op("Add")` give the OpDef; `OP_TABLE` maps names to OpDefs.
"""

from .registry import OP_TABLE, define, get_op

from . import (  # noqa: F401  (each module registers its ops)
    elementwise, activations, cast, reduce, normalization, loss, linalg, attention, recurrent,
    shape, movement, layout, indexing, conv, pool, rnn, quantize, signal, image, resize, control,
    sequence, strings, ml, random, training, fused,
)


def __getattr__(name: str):
    try:
        return OP_TABLE[name]
    except KeyError:
        raise AttributeError(f"kiln has no op named {name!r}") from None


__all__ = ["OP_TABLE", "define", "get_op"]
