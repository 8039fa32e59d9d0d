"""The same 10,000-item workload on Python's parallel-map tools, per-item cost.

Each runs a trivial function (x * 2) over 10,000 items at concurrency 64
(or the tool's nearest knob) and prints the median of 5 runs as a per-item
cost. Tools that are not installed are reported and skipped.
"""

import asyncio
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

ITEMS = 10_000
CONCURRENCY = 64
ROUNDS = 5


def per_item(seconds):
    return seconds / ITEMS * 1e6  # microseconds


def timed(fn):
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
        assert len(out) == ITEMS and out[7] == 14, "wrong result"
    return statistics.median(times)


def asyncio_semaphore():
    async def double(x, sem):
        async with sem:
            return x * 2

    async def main():
        sem = asyncio.Semaphore(CONCURRENCY)
        return await asyncio.gather(*(double(x, sem) for x in range(ITEMS)))

    return asyncio.run(main())


def asyncio_gather():
    async def double(x):
        return x * 2

    async def main():
        return await asyncio.gather(*(double(x) for x in range(ITEMS)))

    return asyncio.run(main())


def thread_pool():
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        return list(pool.map(lambda x: x * 2, range(ITEMS)))


def double(x):
    return x * 2


def fastcore_parallel():
    from fastcore.parallel import parallel

    return list(parallel(double, range(ITEMS), n_workers=CONCURRENCY, threadpool=True, progress=False))


def flytekit_map_task():
    from peers_flytekit import wf

    return wf(xs=list(range(ITEMS)))


def flyte2_map():
    import flyte
    from peers_flyte2 import main

    flyte.init()
    run = flyte.with_runcontext(mode="local").run(main, n=ITEMS)
    outputs = run.outputs() if callable(getattr(run, "outputs", None)) else run
    # A single output may come back wrapped in a tuple.
    return outputs[0] if isinstance(outputs, tuple) else outputs


TOOLS = [
    ("asyncio.gather + Semaphore(64)", asyncio_semaphore),
    ("asyncio.gather (unbounded)", asyncio_gather),
    ("concurrent.futures ThreadPool(64)", thread_pool),
    ("fastcore.parallel (threads, 64)", fastcore_parallel),
    ("flytekit map_task (local)", flytekit_map_task),
    ("Flyte 2 flyte.map (local)", flyte2_map),
]


def main():
    print(f"{ITEMS} items of x*2, concurrency {CONCURRENCY}, median of {ROUNDS} (Python {sys.version.split()[0]})")
    for name, fn in TOOLS:
        try:
            seconds = timed(fn)
            print(f"  {name:<36} {per_item(seconds):10.2f} us/item")
        except Exception as e:  # a peer that does not install or run here
            print(f"  {name:<36} skipped: {type(e).__name__}: {str(e)[:120]}")


if __name__ == "__main__":
    main()
