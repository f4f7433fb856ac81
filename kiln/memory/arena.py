"""Offsets in one arena for blocks with known sizes and lifetimes.

A `Block` is `size` bytes live over the kernels `start..end` (inclusive: it is written by kernel
`start` and last read by kernel `end`). Two blocks whose lifetimes share a kernel must not
overlap in the arena; blocks that never live at the same time may share memory.

Two classic algorithms, and the bound neither can beat:

* `reuse_same_size` — reference counting with a free list (the textbook's algorithm): walk the
  kernels in order, give each block born at a kernel a free block of exactly its size (or new
  memory at the end of the arena), and return blocks to the free list after their last use.
* `greedy_by_size` — the XLA heap simulator / TFLite arena planner's best fit: place the biggest
  blocks first, each in the smallest gap between the already placed blocks it lives alongside
  (or after all of them).
* `lower_bound` — the most bytes live during any one kernel.

`best_plan` runs both and keeps the smaller arena.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Block:
    size: int       # bytes (already rounded up to the alignment)
    start: int      # first kernel that uses it
    end: int        # last kernel that uses it (>= start)

    def overlaps_in_time(self, other: "Block") -> bool:
        return self.start <= other.end and other.start <= self.end


@dataclass(frozen=True)
class ArenaPlan:
    offsets: tuple      # one byte offset per block, in the order the blocks were given
    size: int           # bytes of arena the offsets need
    algorithm: str


def lower_bound(blocks) -> int:
    """The most bytes live during one kernel: no arena can be smaller."""
    events: dict[int, int] = {}
    for b in blocks:
        events[b.start] = events.get(b.start, 0) + b.size
        events[b.end + 1] = events.get(b.end + 1, 0) - b.size
    peak = live = 0
    for t in sorted(events):
        live += events[t]
        peak = max(peak, live)
    return peak


def reuse_same_size(blocks) -> ArenaPlan:
    """Reference counting over the kernel order with a free list of same-size blocks."""
    blocks = list(blocks)
    offsets = [0] * len(blocks)
    born: dict[int, list] = {}
    dies: dict[int, list] = {}
    for i, b in enumerate(blocks):
        born.setdefault(b.start, []).append(i)
        dies.setdefault(b.end, []).append(i)
    free: dict[int, list] = {}          # size -> offsets of free blocks of that size
    top = 0
    for t in sorted(set(born) | set(dies)):
        for i in born.get(t, ()):        # allocate before releasing: a kernel's inputs and
            size = blocks[i].size        # outputs are live together
            if free.get(size):
                offsets[i] = free[size].pop()
            else:
                offsets[i] = top
                top += size
        for i in dies.get(t, ()):
            free.setdefault(blocks[i].size, []).append(offsets[i])
    return ArenaPlan(tuple(offsets), top, "reuse_same_size")


def greedy_by_size(blocks) -> ArenaPlan:
    """Biggest first; each block goes in the smallest gap among the blocks it lives with."""
    blocks = list(blocks)
    offsets = [0] * len(blocks)
    order = sorted(range(len(blocks)), key=lambda i: (-blocks[i].size, blocks[i].start, i))
    placed: list[int] = []
    top = 0
    for i in order:
        b = blocks[i]
        if b.size == 0:
            continue
        neighbours = sorted((offsets[j], offsets[j] + blocks[j].size) for j in placed
                            if blocks[j].overlaps_in_time(b))
        best, best_gap, cursor = None, None, 0
        for lo, hi in neighbours:
            gap = lo - cursor
            if gap >= b.size and (best_gap is None or gap < best_gap):
                best, best_gap = cursor, gap
            cursor = max(cursor, hi)
        offsets[i] = cursor if best is None else best
        placed.append(i)
        top = max(top, offsets[i] + b.size)
    return ArenaPlan(tuple(offsets), top, "greedy_by_size")


ALGORITHMS = (greedy_by_size, reuse_same_size)


def best_plan(blocks) -> ArenaPlan:
    """The smallest arena any of the algorithms finds (the first listed wins ties)."""
    blocks = list(blocks)
    return min((algorithm(blocks) for algorithm in ALGORITHMS), key=lambda p: p.size)


def conflicts(blocks, offsets) -> list:
    """Pairs (i, j) of blocks live at the same time whose memory overlaps (should be none)."""
    out = []
    for i, a in enumerate(blocks):
        for j in range(i + 1, len(blocks)):
            b = blocks[j]
            if a.size and b.size and a.overlaps_in_time(b) and \
                    offsets[i] < offsets[j] + b.size and offsets[j] < offsets[i] + a.size:
                out.append((i, j))
    return out
