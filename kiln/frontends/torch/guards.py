"""What a frozen graph assumes about the weights it compiled in, checked on every call.

A graph compiled with `freeze` has the values of its parameters and buffers baked into the
native code. `WeightGuard` records, for each of those inputs, what identifies its value:

    the tensor object        a replaced parameter (`model.fc.weight = nn.Parameter(...)`,
                             `load_state_dict(..., assign=True)`) is another object
    its `_version` counter   every in-place write through the tensor or a view sharing its
                             version counter bumps it: `p.add_(1)` under no_grad,
                             `p.detach().copy_(...)`, `p[0] = 1`, `load_state_dict(...)`
    its data_ptr             `p.data = other` swaps the storage without bumping the version
    shape, dtype, stride     named by `changes` only: a change of them makes Dynamo's own
                             guards fail, and Dynamo traces again

`holds(args)` is the per-call check: an identity test, one version read and one data_ptr read
per frozen tensor (a few hundred nanoseconds for a small model; measured by
`python -m benchmarks.dynamo_report --guard-cost`). Writes that bypass the version counter
are NOT seen: through `p.data` (`p.data.copy_(...)`, `p.data.add_(1)`: `.data` is a tensor
with a version counter of its own), through a NumPy array sharing the memory (`p.numpy()`,
`torch.from_numpy`), through ctypes/DLPack or by native code writing to data_ptr.
"""

from __future__ import annotations

import torch


def guardable(t: torch.Tensor) -> bool:
    """Whether changes to `t` can be detected: inference tensors (made under
    torch.inference_mode) have no version counter."""
    return not t.is_inference()


class WeightGuard:
    """The identity of the tensors at some positions of a graph's inputs, at compile time."""

    def __init__(self, tensors: dict[int, torch.Tensor]):
        self.tensors = dict(tensors)                    # keeps the objects alive: `is` stays exact
        self._fast = [(i, t, t._version, t.data_ptr()) for i, t in self.tensors.items()]
        self._layout = {i: (tuple(t.shape), t.dtype, t.stride()) for i, t in self.tensors.items()}

    def holds(self, args) -> bool:
        for i, t, version, ptr in self._fast:
            a = args[i]
            if a is not t or a._version != version or a.data_ptr() != ptr:
                return False
        return True

    def changes(self, args) -> list[str]:
        """What changed, one line per tensor (empty if `holds(args)`)."""
        out = []
        for i, t, version, ptr in self._fast:
            a = args[i]
            if a is not t:
                out.append(f"input {i}: another tensor object")
            elif a._version != version:
                out.append(f"input {i}: written in place (version {version} -> {a._version})")
            elif a.data_ptr() != ptr:
                out.append(f"input {i}: its storage was replaced")
            elif (tuple(a.shape), a.dtype, a.stride()) != self._layout[i]:
                out.append(f"input {i}: shape, dtype or stride changed")
        return out
