"""What the peer benchmarks share: flags, timing loops, the 64 MiB array, and rows printed in
the runner's format `name,value,unit,,` (the runner adds baselines and ratios)."""
import argparse
import statistics
import sys
import time


def parse_flags(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--sync-tasks", type=int, default=2000)
    p.add_argument("--async-tasks", type=int, default=10000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--array-mib", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    return p.parse_args()


def make_array(mib):
    """A float64 array of `mib` MiB: numpy when installed (what users pass), else stdlib."""
    count = mib * (1 << 20) // 8
    try:
        import numpy

        return numpy.arange(count, dtype=numpy.float64)
    except ImportError:
        import array

        return array.array("d", range(count))


def same_array(a, b):
    return len(a) == len(b) and a[1] == b[1] and a[-1] == b[-1]


def median_of_runs(runs, one_run):
    """Runs `one_run` once to warm up, then `runs` times; returns the median result."""
    one_run()
    return statistics.median(one_run() for _ in range(runs))


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def row(name, value, unit):
    print(f"{name},{value:.3f},{unit},,", flush=True)


def run_all(prefix, flags, sync_call, async_calls, array_round_trip, bulk_calls=None):
    """The three scenarios of bench/run, with the same names as raympi's rows.
    sync_call(i) -> value; async_calls(n) -> list of values; array_round_trip(a) -> array;
    bulk_calls: {scenario name: fn(n) -> list of values}, the peer's bulk APIs (map)."""

    def sync_run():
        n = flags.sync_tasks
        seconds = timed(lambda: [check(sync_call(i) == i, "sync") for i in range(n)])
        return seconds * 1e6 / n

    def async_run():
        n = flags.async_tasks
        values = []
        seconds = timed(lambda: values.extend(async_calls(n)))
        check(values == list(range(n)), "async")
        return n / seconds

    data = make_array(flags.array_mib)

    def array_run():
        back = []
        seconds = timed(lambda: back.append(array_round_trip(data)))
        check(same_array(back[0], data), "array")
        return seconds

    us = median_of_runs(flags.runs, sync_run)
    row(f"{prefix}.sync.us_per_task", us, "us")
    row(f"{prefix}.async.tasks_per_s_median", median_of_runs(flags.runs, async_run), "tasks/s")
    for scenario, calls in (bulk_calls or {}).items():
        async_calls = calls
        row(f"{prefix}.{scenario}.tasks_per_s_median", median_of_runs(flags.runs, async_run),
            "tasks/s")
    s = median_of_runs(flags.runs, array_run)
    name = f"{prefix}.array_{flags.array_mib}MiB"
    row(f"{name}.round_trip_ms", s * 1e3, "ms")
    row(f"{name}.GBps", 2 * flags.array_mib * (1 << 20) / s / 1e9, "GB/s")


def check(ok, what):
    if not ok:
        print(f"peer benchmark: {what} returned a wrong value", file=sys.stderr)
        sys.exit(1)
