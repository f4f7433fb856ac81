"""A kernel order with fewer bytes live at once: greedy list scheduling over the dependences.

Kernels touch buffers (reads and writes). Two kernels that touch one buffer, at least one of
them writing it, keep their order; the others are free to move. At each step the ready kernel
that grows the live bytes least (bytes it brings to life minus bytes whose last user it is)
runs next, the earlier kernel on ties. Greedy: the caller keeps the new order only when the
plan it gives is smaller.
"""

from __future__ import annotations


def order_for_memory(accesses: list, nbytes: dict) -> list:
    """`accesses[k] = (reads, writes)` (sets of buffers); `nbytes`: buffer -> bytes for the ones
    that cost memory. Returns the kernels' indexes in a dependence-respecting order."""
    n = len(accesses)
    last_writer: dict = {}
    readers: dict = {}
    deps = [set() for _ in range(n)]
    users: dict = {}
    for k, (reads, writes) in enumerate(accesses):
        for r in reads:
            if r in last_writer:
                deps[k].add(last_writer[r])
        for w in writes:
            if w in last_writer:
                deps[k].add(last_writer[w])
            deps[k].update(readers.get(w, ()))
        for r in reads:
            readers.setdefault(r, set()).add(k)
        for w in writes:
            last_writer[w] = k
            readers[w] = set()
        for b in set(reads) | set(writes):
            if b in nbytes:
                users[b] = users.get(b, 0) + 1
    deps = [d - {k} for k, d in enumerate(deps)]
    waiting = [len(d) for d in deps]
    dependents = [[] for _ in range(n)]
    for k, d in enumerate(deps):
        for i in d:
            dependents[i].append(k)
    ready = {k for k in range(n) if not waiting[k]}
    born: set = set()
    order = []
    while ready:
        def growth(k):
            reads, writes = accesses[k]
            touched = [b for b in set(reads) | set(writes) if b in nbytes]
            new = sum(nbytes[b] for b in touched if b not in born)
            freed = sum(nbytes[b] for b in touched if users[b] == 1)
            return new - freed, k
        k = min(ready, key=growth)
        ready.remove(k)
        order.append(k)
        reads, writes = accesses[k]
        for b in set(reads) | set(writes):
            if b in nbytes:
                born.add(b)
                users[b] -= 1
        for j in dependents[k]:
            waiting[j] -= 1
            if not waiting[j]:
                ready.add(j)
    if len(order) != n:
        raise ValueError("kernel dependences have a cycle")
    return order
