"""kiln's thread pool, written in LLVM IR: `build_pool_module(triple) -> ir.Module`.

Generated code reaches every core through one call, `kiln_parallel_for(body, ctx, n)`, that runs
`body(ctx, begin, end)` over contiguous chunks of [0, n), one chunk per thread. Why it is IR and not
Python threads or libgomp: DESIGN.md ("Thread runtime") measured ~5 µs for 50 parallel regions this
way, against ~32 µs for GOMP_parallel and ~170 µs for a Python thread per call.

The protocol, in one place:

* Threads: the caller is worker 0; workers 1..T-1 are made with `pthread_create` on the first call
  after `kiln_pool_configure` (lazily) and pinned to the allowed CPUs (unpinned, Linux tends to wake
  a worker on the caller's core after a futex sleep).
* A job is published under the pool lock: the caller writes body/ctx/n/threads into `job`, then
  bumps `job.gen` to g. Chunk i (of T, contiguous, possibly empty) is claimed by moving
  `claims[i]` from g - 1 to g; its runner then counts it in `done.finished`. Worker i waits for
  `job.gen` to change and claims chunk i. The caller runs chunk 0, then claims every chunk no
  worker has started (a worker still waking up or descheduled never holds the loop up; if it has
  not started by the time the caller finished an equal chunk, the caller running it is the
  sooner end), then waits until `finished` has counted the T - 1 other chunks.
* A worker that read a job's fields after the job ended (the caller may be writing the next one)
  fails its claim and drops them: a claim succeeds only while its job is running.
* A new worker starts from the generation recorded before `pthread_create` (packed in its
  argument), so it cannot miss a job published before it got to run.
* Waits spin (about `spin_ns`, yielding the CPU every ~33 µs) and then sleep on the futex; a
  sleeper counts itself in a waiter word first, so a `futex` wake syscall is made only when
  someone sleeps. The publisher's look at the sleepers is unfenced: a worker falling asleep at
  that instant sleeps through one job, whose chunk the caller then runs itself.
* Nesting: a body that calls `kiln_parallel_for` runs the inner loop serially on its own thread
  (the lock owner or a worker is recognised by `pthread_self`). Another thread calling while a job
  runs waits for the lock (Drepper's three-state futex mutex), so concurrent callers serialize.
"""

from __future__ import annotations

from contextlib import contextmanager

from llvmlite import ir

MAX_THREADS = 256                 # tids/cpus table size; also the largest accepted thread count
CPU_SET_BYTES = 128               # glibc's cpu_set_t: 1024 CPUs
FUTEX_WAIT_PRIVATE = 128
FUTEX_WAKE_PRIVATE = 129
CLOCK_MONOTONIC = 1
INT_MAX = 2**31 - 1
LOCK_SPIN_TRIES = 1000            # spins on a held pool lock before sleeping on it
SPIN_CHECK_EVERY = 64             # pauses between two clock reads while spinning (~2 µs)
SPIN_YIELD_EVERY = 1024           # pauses between two sched_yield calls (~33 µs; ~0.5 µs each)
SYS_FUTEX = {"x86_64": 202, "aarch64": 98}
# The spin-wait hint: x86 `pause`, arm `yield` (hint #1), as intrinsics (no inline asm parser).
SPIN_HINT = {"x86_64": ("llvm.x86.sse2.pause", ()), "aarch64": ("llvm.aarch64.hint", (1,))}

VOID = ir.VoidType()
I32 = ir.IntType(32)
I64 = ir.IntType(64)
I8P = ir.IntType(8).as_pointer()
BODY = ir.FunctionType(VOID, [I8P, I64, I64])       # body(ctx, begin, end)
WORKER_MAIN = ir.FunctionType(I8P, [I8P])
TIMESPEC = ir.LiteralStructType([I64, I64])

# Field numbers of the shared structs (each struct sits on its own cache line).
JOB_GEN, JOB_THREADS, JOB_BODY, JOB_CTX, JOB_N = range(5)    # job: written by the caller
CLAIM_LINE = ir.ArrayType(I32, 16)                           # claims[i][0] on its own line
DONE_FINISHED, DONE_WAITERS = range(2)                       # done: workers -> caller
LOCK_WORD, LOCK_OWNER = range(2)                             # lock: 0 free, 1 held, 2 contended


def build_pool_module(triple: str) -> ir.Module:
    """The pool as an IR module for `triple` (x86_64 or aarch64 Linux)."""
    arch = triple.split("-")[0]
    if arch not in SYS_FUTEX:
        raise NotImplementedError(f"kiln's thread pool supports x86_64 and aarch64, not {arch}")
    return _PoolBuilder(triple, arch).module


def _i32(v: int) -> ir.Constant:
    return ir.Constant(I32, v)


def _i64(v: int) -> ir.Constant:
    return ir.Constant(I64, v)


def _align(ty: ir.Type) -> int:
    return 4 if ty == I32 else 8


class _PoolBuilder:
    def __init__(self, triple: str, arch: str):
        self.module = ir.Module(name="kiln_threadpool")
        self.module.triple = triple
        self.sys_futex = SYS_FUTEX[arch]
        self.spin_hint = SPIN_HINT[arch]
        self._declare_libc()
        self._define_globals()
        self.pause = self._emit_pause()
        self.now_ns = self._emit_now_ns()
        self.futex_wait = self._emit_futex("kiln_pool_futex_wait", FUTEX_WAIT_PRIVATE)
        self.futex_wake = self._emit_futex("kiln_pool_futex_wake", FUTEX_WAKE_PRIVATE)
        self.await_change = self._emit_await_change()
        self.claim_and_run = self._emit_claim_and_run()
        self.lock_slow = self._emit_lock_slow()
        self.unlock = self._emit_unlock()
        self.lock = self._emit_lock()
        self.pin_to_cpu = self._emit_pin_to_cpu()
        self.worker_main = self._emit_worker_main()
        self.stop_workers = self._emit_stop_workers()
        self.start_workers = self._emit_start_workers()
        self._emit_num_threads()
        self._emit_parallel_for()
        self._emit_configure()
        self._emit_shutdown()
        self._emit_after_fork()

    # ---- declarations -------------------------------------------------------------------------

    def _declare(self, name, ret, args, var_arg=False):
        return ir.Function(self.module, ir.FunctionType(ret, args, var_arg=var_arg), name)

    def _declare_libc(self):
        self.pthread_create = self._declare(
            "pthread_create", I32, [I64.as_pointer(), I8P, WORKER_MAIN.as_pointer(), I8P])
        self.pthread_join = self._declare("pthread_join", I32, [I64, I8P.as_pointer()])
        self.pthread_self = self._declare("pthread_self", I64, [])
        self.syscall = self._declare("syscall", I64, [I64], var_arg=True)
        self.sched_setaffinity = self._declare("sched_setaffinity", I32, [I32, I64, I8P])
        self.clock_gettime = self._declare("clock_gettime", I32, [I32, TIMESPEC.as_pointer()])
        self.sched_yield = self._declare("sched_yield", I32, [])

    def _global(self, name, ty, align=None):
        gv = ir.GlobalVariable(self.module, ty, name)
        gv.linkage = "internal"
        gv.initializer = ir.Constant(ty, None)
        gv.align = align or _align(ty)
        return gv

    def _define_globals(self):
        self.job = self._global("kiln_pool_job", ir.LiteralStructType(
            [I32, I32, BODY.as_pointer(), I8P, I64]), align=64)
        self.done = self._global("kiln_pool_done", ir.LiteralStructType([I32, I32]), align=64)
        self.claims = self._global("kiln_pool_claims", ir.ArrayType(CLAIM_LINE, MAX_THREADS),
                                   align=64)  # the job generation that last claimed chunk i
        self.sleepers = self._global("kiln_pool_sleepers", I32, align=64)   # asleep on job.gen
        self.lock_gv = self._global("kiln_pool_lock", ir.LiteralStructType([I32, I64]), align=64)
        self.want = self._global("kiln_pool_want", I32)         # configured threads (with caller)
        self.running = self._global("kiln_pool_running", I32)   # threads started (with caller)
        self.stop = self._global("kiln_pool_stop", I32)
        self.spin_ns = self._global("kiln_pool_spin_ns", I64)
        self.ncpus = self._global("kiln_pool_ncpus", I32)       # 0: do not pin
        self.cpus = self._global("kiln_pool_cpus", ir.ArrayType(I32, MAX_THREADS))
        self.tids = self._global("kiln_pool_tids", ir.ArrayType(I64, MAX_THREADS))
        self.want.initializer = _i32(1)
        self.running.initializer = _i32(1)

    # ---- small helpers (Python functions emitting IR into a builder) ---------------------------

    @staticmethod
    def _field(b, gv, index):
        return b.gep(gv, [_i32(0), _i32(index)], inbounds=True)

    @staticmethod
    def _load(b, ptr, ordering="monotonic"):
        return b.load_atomic(ptr, ordering, _align(ptr.type.pointee))

    @staticmethod
    def _store(b, value, ptr, ordering="monotonic"):
        b.store_atomic(value, ptr, ordering, _align(value.type))

    def _function(self, name, ret, args, exported=False, cold=False):
        fn = ir.Function(self.module, ir.FunctionType(ret, args), name)
        if not exported:
            fn.linkage = "internal"
        if cold:                    # kept out of line: the hot path of a parallel loop stays short
            fn.attributes.add("noinline")
            fn.attributes.add("cold")
        return fn, ir.IRBuilder(fn.append_basic_block("entry"))

    @staticmethod
    def _chunk(b, index, threads, n):
        """[begin, end) of chunk `index` of `threads` over [0, n): sizes differ by at most one."""
        q = b.udiv(n, threads)
        r = b.urem(n, threads)
        begin = b.add(b.mul(q, index), b.select(b.icmp_unsigned("<", index, r), index, r))
        extra = b.zext(b.icmp_unsigned("<", index, r), I64)
        return begin, b.add(begin, b.add(q, extra))

    def _call_chunk(self, b, body, ctx, begin, end):
        with b.if_then(b.icmp_signed("<", begin, end)):
            b.call(body, [ctx, begin, end])

    @staticmethod
    @contextmanager
    def _for_range(b, start, stop):
        """`for (i = start; i < stop; ++i)` around the IR emitted in the with-block; yields i."""
        fn, before = b.function, b.block
        head, body, after = (fn.append_basic_block(f"for.{part}")
                             for part in ("head", "body", "end"))
        b.branch(head)
        b.position_at_end(head)
        index = b.phi(I64)
        index.add_incoming(_i64(start) if isinstance(start, int) else start, before)
        b.cbranch(b.icmp_unsigned("<", index, stop), body, after)
        b.position_at_end(body)
        yield index
        index.add_incoming(b.add(index, _i64(1)), b.block)
        b.branch(head)
        b.position_at_end(after)

    # ---- OS primitives ------------------------------------------------------------------------

    def _emit_pause(self):
        fn, b = self._function("kiln_pool_pause", VOID, [])
        name, args = self.spin_hint
        hint = self._declare(name, VOID, [I32] * len(args))
        b.call(hint, [_i32(a) for a in args])
        b.ret_void()
        return fn

    def _emit_now_ns(self):
        fn, b = self._function("kiln_pool_now_ns", I64, [])
        ts = b.alloca(TIMESPEC)
        b.call(self.clock_gettime, [_i32(CLOCK_MONOTONIC), ts])
        sec = b.load(self._field(b, ts, 0))
        nsec = b.load(self._field(b, ts, 1))
        b.ret(b.add(b.mul(sec, _i64(1_000_000_000)), nsec))
        return fn

    def _emit_futex(self, name, op):
        """futex(word, op, value): wait while *word == value, or wake up to `value` sleepers."""
        fn, b = self._function(name, VOID, [I32.as_pointer(), I32])
        word, value = fn.args
        b.call(self.syscall, [_i64(self.sys_futex), word, _i64(op), b.zext(value, I64),
                              ir.Constant(I8P, None)])
        b.ret_void()
        return fn

    def _emit_await_change(self):
        """await_change(word, old, waiters) -> the first value of *word that is not `old`.

        Spins about `spin_ns`, then sleeps on the futex, counted in *waiters while it may sleep.
        The spin yields the CPU now and then: if the thread it waits for was put on the same CPU
        (on a busy machine), spinning through its time slices would only hold it up.
        """
        fn, b = self._function("kiln_pool_await_change", I32,
                               [I32.as_pointer(), I32, I32.as_pointer()])
        word, old, waiters = fn.args
        spin = fn.append_basic_block("spin")
        check_clock = fn.append_basic_block("check_clock")
        sleep = fn.append_basic_block("sleep")
        done = fn.append_basic_block("done")
        entry = b.block
        deadline = b.add(b.call(self.now_ns, []), self._load(b, self.spin_ns))
        b.branch(spin)

        b.position_at_end(spin)
        count = b.phi(I64)
        count.add_incoming(_i64(0), entry)
        value = self._load(b, word, "acquire")
        changed = b.icmp_unsigned("!=", value, old)
        keep_spinning = fn.append_basic_block("keep_spinning")
        b.cbranch(changed, done, keep_spinning)
        b.position_at_end(keep_spinning)
        b.call(self.pause, [])
        next_count = b.add(count, _i64(1))
        count.add_incoming(next_count, keep_spinning)
        at_check = b.icmp_unsigned("==", b.and_(next_count, _i64(SPIN_CHECK_EVERY - 1)), _i64(0))
        b.cbranch(at_check, check_clock, spin)
        b.position_at_end(check_clock)
        at_yield = b.icmp_unsigned("==", b.and_(next_count, _i64(SPIN_YIELD_EVERY - 1)), _i64(0))
        with b.if_then(at_yield):
            b.call(self.sched_yield, [])
        count.add_incoming(next_count, b.block)
        b.cbranch(b.icmp_signed("<", b.call(self.now_ns, []), deadline), spin, sleep)

        b.position_at_end(sleep)
        b.atomic_rmw("add", waiters, _i32(1), "seq_cst")
        with b.if_then(b.icmp_unsigned("==", self._load(b, word, "seq_cst"), old)):
            b.call(self.futex_wait, [word, old])
        b.atomic_rmw("sub", waiters, _i32(1), "seq_cst")
        after_sleep = self._load(b, word, "acquire")
        sleep_end = b.block
        b.cbranch(b.icmp_unsigned("!=", after_sleep, old), done, sleep)

        b.position_at_end(done)
        result = b.phi(I32)
        result.add_incoming(value, spin)
        result.add_incoming(after_sleep, sleep_end)
        b.ret(result)
        return fn

    def _emit_claim_and_run(self):
        """claim_and_run(chunk, gen, threads, body, ctx, n): run the chunk unless claimed."""
        fn, b = self._function("kiln_pool_claim_and_run", VOID,
                               [I64, I32, I64, BODY.as_pointer(), I8P, I64])
        index, gen, threads, body, ctx, n = fn.args
        claim = b.gep(self.claims, [_i32(0), index, _i32(0)], inbounds=True)
        free = b.sub(gen, _i32(1))
        # Look before trying: a failed cmpxchg would take the line from the worker that owns it.
        with b.if_then(b.icmp_unsigned("==", self._load(b, claim), free)):
            pair = b.cmpxchg(claim, free, gen, "seq_cst", "monotonic")
            with b.if_then(b.extract_value(pair, 1)):
                begin, end = self._chunk(b, index, threads, n)
                self._call_chunk(b, body, ctx, begin, end)
                finished = self._field(b, self.done, DONE_FINISHED)
                b.atomic_rmw("add", finished, _i32(1), "seq_cst")
                waiters = self._load(b, self._field(b, self.done, DONE_WAITERS), "seq_cst")
                with b.if_then(b.icmp_unsigned("!=", waiters, _i32(0)), likely=False):
                    b.call(self.futex_wake, [finished, _i32(INT_MAX)])
        b.ret_void()
        return fn

    # ---- the pool lock ------------------------------------------------------------------------

    def _emit_lock_slow(self):
        """Take the lock after a failed fast attempt: spin a little, then futex (state 2)."""
        fn, b = self._function("kiln_pool_lock_slow", VOID, [], cold=True)
        word = self._field(b, self.lock_gv, LOCK_WORD)
        entry = b.block
        spin = fn.append_basic_block("spin")
        sleep = fn.append_basic_block("sleep")
        acquired = fn.append_basic_block("acquired")
        b.branch(spin)

        b.position_at_end(spin)
        tries = b.phi(I64)
        tries.add_incoming(_i64(0), entry)
        try_take = fn.append_basic_block("try_take")
        spin_more = fn.append_basic_block("spin_more")
        b.cbranch(b.icmp_unsigned("==", self._load(b, word), _i32(0)), try_take, spin_more)
        b.position_at_end(try_take)
        pair = b.cmpxchg(word, _i32(0), _i32(1), "acquire", "monotonic")
        b.cbranch(b.extract_value(pair, 1), acquired, spin_more)
        b.position_at_end(spin_more)
        b.call(self.pause, [])
        next_tries = b.add(tries, _i64(1))
        tries.add_incoming(next_tries, spin_more)
        b.cbranch(b.icmp_unsigned("<", next_tries, _i64(LOCK_SPIN_TRIES)), spin, sleep)

        b.position_at_end(sleep)
        previous = b.atomic_rmw("xchg", word, _i32(2), "acquire")
        wait = fn.append_basic_block("wait")
        b.cbranch(b.icmp_unsigned("==", previous, _i32(0)), acquired, wait)
        b.position_at_end(wait)
        b.call(self.futex_wait, [word, _i32(2)])
        b.branch(sleep)

        b.position_at_end(acquired)
        b.ret_void()
        return fn

    def _emit_lock(self):
        fn, b = self._function("kiln_pool_lock_acquire", VOID, [])
        pair = b.cmpxchg(self._field(b, self.lock_gv, LOCK_WORD), _i32(0), _i32(1),
                         "acquire", "monotonic")
        with b.if_then(b.not_(b.extract_value(pair, 1)), likely=False):
            b.call(self.lock_slow, [])
        b.ret_void()
        return fn

    def _emit_unlock(self):
        fn, b = self._function("kiln_pool_unlock", VOID, [])
        word = self._field(b, self.lock_gv, LOCK_WORD)
        previous = b.atomic_rmw("xchg", word, _i32(0), "release")
        with b.if_then(b.icmp_unsigned("==", previous, _i32(2)), likely=False):
            b.call(self.futex_wake, [word, _i32(1)])
        b.ret_void()
        return fn

    # ---- workers ------------------------------------------------------------------------------

    def _emit_pin_to_cpu(self):
        """pin_to_cpu(worker index): bind the calling thread to cpus[index % ncpus]."""
        fn, b = self._function("kiln_pool_pin_to_cpu", VOID, [I64])
        (index,) = fn.args
        ncpus = b.zext(self._load(b, self.ncpus), I64)
        with b.if_then(b.icmp_unsigned("!=", ncpus, _i64(0))):
            words = CPU_SET_BYTES // 8
            mask = b.alloca(ir.ArrayType(I64, words))
            b.store(ir.Constant(ir.ArrayType(I64, words), None), mask)
            slot = b.gep(self.cpus, [_i32(0), b.urem(index, ncpus)], inbounds=True)
            cpu = b.zext(self._load(b, slot), I64)
            word = b.gep(mask, [_i32(0), b.lshr(cpu, _i64(6))], inbounds=True)
            b.store(b.shl(_i64(1), b.and_(cpu, _i64(63))), word)
            b.call(self.sched_setaffinity, [_i32(0), _i64(CPU_SET_BYTES), b.bitcast(mask, I8P)])
        b.ret_void()
        return fn

    def _emit_worker_main(self):
        """A worker: wait for a new job generation, claim and run its chunk; exit on stop."""
        fn, b = self._function("kiln_pool_worker_main", I8P, [I8P])
        packed = b.ptrtoint(fn.args[0], I64)
        index = b.and_(packed, _i64(0xFFFF))
        first_seen = b.trunc(b.lshr(packed, _i64(16)), I32)
        b.call(self.pin_to_cpu, [index])
        entry = b.block
        loop = fn.append_basic_block("loop")
        work = fn.append_basic_block("work")
        leave = fn.append_basic_block("leave")
        b.branch(loop)

        b.position_at_end(loop)
        seen = b.phi(I32)
        seen.add_incoming(first_seen, entry)
        gen = b.call(self.await_change, [self._field(b, self.job, JOB_GEN), seen, self.sleepers])
        stop = self._load(b, self.stop, "acquire")
        b.cbranch(b.icmp_unsigned("!=", stop, _i32(0)), leave, work)

        b.position_at_end(work)
        # Atomic reads: the job may already be over and its fields being rewritten (see claims).
        threads = b.zext(self._load(b, self._field(b, self.job, JOB_THREADS)), I64)
        body = self._load(b, self._field(b, self.job, JOB_BODY))
        ctx = self._load(b, self._field(b, self.job, JOB_CTX))
        n = self._load(b, self._field(b, self.job, JOB_N))
        b.call(self.claim_and_run, [index, gen, threads, body, ctx, n])
        seen.add_incoming(gen, b.block)
        b.branch(loop)

        b.position_at_end(leave)
        b.ret(ir.Constant(I8P, None))
        return fn

    def _emit_start_workers(self):
        """With the lock held and no workers: start want - 1 of them; running = threads made."""
        fn, b = self._function("kiln_pool_start_workers", VOID, [], cold=True)
        want = b.zext(self._load(b, self.want), I64)
        gen32 = self._load(b, self._field(b, self.job, JOB_GEN))
        gen = b.zext(gen32, I64)
        self._store(b, _i32(0), self.stop)
        with self._for_range(b, 1, want) as index:
            claim = b.gep(self.claims, [_i32(0), index, _i32(0)], inbounds=True)
            self._store(b, gen32, claim)                   # chunk `index` of job gen + 1 is free
            arg = b.inttoptr(b.or_(b.shl(gen, _i64(16)), index), I8P)
            slot = b.gep(self.tids, [_i32(0), index], inbounds=True)
            status = b.call(self.pthread_create,
                            [slot, ir.Constant(I8P, None), self.worker_main, arg])
            with b.if_then(b.icmp_unsigned("!=", status, _i32(0)), likely=False):
                self._store(b, b.trunc(index, I32), self.running, "seq_cst")   # fewer threads
                b.ret_void()
        self._store(b, b.trunc(want, I32), self.running, "seq_cst")
        b.ret_void()
        return fn

    def _emit_stop_workers(self):
        """With the lock held: tell the workers to leave, join them; running = 1."""
        fn, b = self._function("kiln_pool_stop_workers", VOID, [], cold=True)
        running = b.zext(self._load(b, self.running, "seq_cst"), I64)
        with b.if_then(b.icmp_unsigned(">", running, _i64(1))):
            # running first: a thread made later may reuse a joined worker's pthread_t.
            self._store(b, _i32(1), self.running, "seq_cst")
            self._store(b, _i32(1), self.stop, "seq_cst")
            gen = self._field(b, self.job, JOB_GEN)
            b.atomic_rmw("add", gen, _i32(1), "seq_cst")
            b.call(self.futex_wake, [gen, _i32(INT_MAX)])
            with self._for_range(b, 1, running) as index:
                tid = b.load(b.gep(self.tids, [_i32(0), index], inbounds=True))
                b.call(self.pthread_join, [tid, ir.Constant(I8P.as_pointer(), None)])
            self._store(b, _i32(0), self.stop, "seq_cst")
        b.ret_void()
        return fn

    # ---- exported functions -------------------------------------------------------------------

    def _emit_num_threads(self):
        fn, b = self._function("kiln_num_threads", I32, [], exported=True)
        b.ret(self._load(b, self.want))

    def _emit_parallel_for(self):
        fn, b = self._function("kiln_parallel_for", VOID, [BODY.as_pointer(), I8P, I64],
                               exported=True)
        body, ctx, n = fn.args
        serial = fn.append_basic_block("serial")
        try_lock = fn.append_basic_block("try_lock")
        contended = fn.append_basic_block("contended")
        locked = fn.append_basic_block("locked")
        leave = fn.append_basic_block("leave")
        with b.if_then(b.icmp_signed("<=", n, _i64(0)), likely=False):
            b.ret_void()
        one_thread = b.icmp_unsigned("<=", self._load(b, self.want), _i32(1))
        b.cbranch(b.or_(one_thread, b.icmp_signed("==", n, _i64(1))), serial, try_lock)

        b.position_at_end(serial)
        b.call(body, [ctx, _i64(0), n])
        b.ret_void()

        b.position_at_end(try_lock)
        word = self._field(b, self.lock_gv, LOCK_WORD)
        pair = b.cmpxchg(word, _i32(0), _i32(1), "acquire", "monotonic")
        b.cbranch(b.extract_value(pair, 1), locked, contended)

        # Held: by this thread or a worker (a nested call: run serially) or by another caller.
        b.position_at_end(contended)
        me = b.call(self.pthread_self, [])
        owner = self._load(b, self._field(b, self.lock_gv, LOCK_OWNER))
        scan = fn.append_basic_block("scan_workers")
        b.cbranch(b.icmp_unsigned("==", me, owner), serial, scan)
        b.position_at_end(scan)
        running = b.zext(self._load(b, self.running, "seq_cst"), I64)
        with self._for_range(b, 1, running) as index:
            tid = self._load(b, b.gep(self.tids, [_i32(0), index], inbounds=True))
            not_me = fn.append_basic_block("not_me")
            b.cbranch(b.icmp_unsigned("==", tid, me), serial, not_me)
            b.position_at_end(not_me)
        b.call(self.lock_slow, [])
        b.branch(locked)

        b.position_at_end(locked)
        owner_slot = self._field(b, self.lock_gv, LOCK_OWNER)
        self._store(b, b.call(self.pthread_self, []), owner_slot)
        with b.if_then(b.icmp_unsigned("!=", self._load(b, self.running),
                                       self._load(b, self.want)), likely=False):
            b.call(self.stop_workers, [])
            b.call(self.start_workers, [])
        threads = self._load(b, self.running)
        alone = fn.append_basic_block("alone")
        publish = fn.append_basic_block("publish")
        b.cbranch(b.icmp_unsigned("<=", threads, _i32(1)), alone, publish)
        b.position_at_end(alone)                 # want == 1 now, or no worker could be made
        b.call(body, [ctx, _i64(0), n])
        b.branch(leave)

        b.position_at_end(publish)
        self._store(b, threads, self._field(b, self.job, JOB_THREADS))
        self._store(b, body, self._field(b, self.job, JOB_BODY))
        self._store(b, ctx, self._field(b, self.job, JOB_CTX))
        self._store(b, n, self._field(b, self.job, JOB_N))
        # No chunk of an earlier job can finish now: `finished` moves only for this one.
        finished = self._field(b, self.done, DONE_FINISHED)
        target = b.add(self._load(b, finished), b.sub(threads, _i32(1)))
        gen_word = self._field(b, self.job, JOB_GEN)
        # A plain release store (only lock holders write gen): the caller goes on to its chunk
        # while the line travels. Without a fence the sleeper check may miss a worker falling
        # asleep this instant; it then skips this job (the caller runs its chunk) and is woken
        # by the next one.
        gen = b.add(self._load(b, gen_word), _i32(1))
        self._store(b, gen, gen_word, "release")
        with b.if_then(b.icmp_unsigned("!=", self._load(b, self.sleepers), _i32(0))):
            b.call(self.futex_wake, [gen_word, _i32(INT_MAX)])
        threads64 = b.zext(threads, I64)
        begin, end = self._chunk(b, _i64(0), threads64, n)
        self._call_chunk(b, body, ctx, begin, end)
        with self._for_range(b, 1, threads64) as index:      # chunks no worker has started
            b.call(self.claim_and_run, [index, gen, threads64, body, ctx, n])
        wait = fn.append_basic_block("wait")
        wait_more = fn.append_basic_block("wait_more")
        b.branch(wait)
        b.position_at_end(wait)
        count = self._load(b, finished, "acquire")
        b.cbranch(b.icmp_unsigned("==", count, target), leave, wait_more)
        b.position_at_end(wait_more)
        b.call(self.await_change, [finished, count, self._field(b, self.done, DONE_WAITERS)])
        b.branch(wait)

        b.position_at_end(leave)
        self._store(b, _i64(0), owner_slot)
        b.call(self.unlock, [])
        b.ret_void()

    def _emit_configure(self):
        """configure(threads, spin_ns, cpus, ncpus): stop the workers; the next job starts them."""
        fn, b = self._function("kiln_pool_configure", VOID, [I32, I64, I32.as_pointer(), I32],
                               exported=True)
        threads, spin_ns, cpus, ncpus = fn.args
        b.call(self.lock, [])
        b.call(self.stop_workers, [])
        self._store(b, threads, self.want)
        self._store(b, spin_ns, self.spin_ns)
        self._store(b, ncpus, self.ncpus)
        with self._for_range(b, 0, b.zext(ncpus, I64)) as index:
            cpu = b.load(b.gep(cpus, [index], inbounds=True))
            self._store(b, cpu, b.gep(self.cpus, [_i32(0), index], inbounds=True))
        b.call(self.unlock, [])
        b.ret_void()

    def _emit_shutdown(self):
        """shutdown(): join the workers; later calls run serially on the caller."""
        fn, b = self._function("kiln_pool_shutdown", VOID, [], exported=True)
        b.call(self.lock, [])
        b.call(self.stop_workers, [])
        self._store(b, _i32(1), self.want)
        b.call(self.unlock, [])
        b.ret_void()

    def _emit_after_fork(self):
        """In a forked child no worker exists: forget them and free the lock; the next job
        restarts them."""
        fn, b = self._function("kiln_pool_after_fork", VOID, [], exported=True)
        self._store(b, _i32(1), self.running)
        self._store(b, _i32(0), self.stop)
        self._store(b, _i32(0), self.sleepers)
        self._store(b, _i32(0), self._field(b, self.done, DONE_WAITERS))
        self._store(b, _i64(0), self._field(b, self.lock_gv, LOCK_OWNER))
        self._store(b, _i32(0), self._field(b, self.lock_gv, LOCK_WORD))
        b.ret_void()
