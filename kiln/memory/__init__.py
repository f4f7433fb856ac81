"""Memory planning's algorithms, independent of any IR: blocks with sizes and lifetimes in, arena
offsets out (`arena`). kiln/passes/plan_memory.py applies them to a lowered Program."""
