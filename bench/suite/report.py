"""What bench/run prints and writes: every measured row, then raympi against its baselines,
peers and targets (ratio = raympi value / baseline value), then the scaling table."""
import json
import re
from dataclasses import dataclass

import results
from results import Row

RAY_ASYNC = 8000  # Ray's published single_client_tasks_async (ray microbenchmark), tasks/s
RAY_PUTS = 5000  # single_client_put_calls, calls/s
RAY_GETS = 10000  # single_client_get_calls, calls/s
RAY_PUT_GBPS = 20  # single_client_put_gigabytes, GB/s
RAY_ACTOR_SYNC = 2000  # 1_1_actor_calls_sync, calls/s
RAY_ACTOR_ASYNC = 8000  # 1_1_actor_calls_async, calls/s
RAY_ACTOR_N_N = 27000  # n_n_actor_calls_async, calls/s
RAY_PG = 838  # placement_group_create/removal (release_logs/2.22.0/microbenchmark.json), /s


@dataclass
class Compare:
    rows: str  # regex over raympi row names
    baseline: object  # a row name (may use the regex's groups as {0}), or (value, label)
    target: str = ""
    met: object = None  # (value, ratio) -> bool


COMPARISONS = [
    Compare(r"raympi\.\w+\.sync\.us_per_task", "mpi.pingpong_8B.rtt", "<= 20x MPI RTT",
            lambda v, r: r <= 20),
    Compare(r"raympi\.\w+\.sync\.us_per_task", (10.0, "target 10 us"), "< 10 us",
            lambda v, r: v < 10),
    Compare(r"raympi\.\w+\.sync\.us_per_task", "mpi4py.sync.us_per_task"),
    Compare(r"raympi\.\w+\.sync\.us_per_task", "dask.sync.us_per_task"),
    Compare(r"raympi\.1node\.async\.tasks_per_s_median", (RAY_ASYNC, "Ray published"),
            ">= 10x Ray", lambda v, r: r >= 10),
    Compare(r"raympi\.1node\.async\.tasks_per_s_median", "mpi4py.async.tasks_per_s_median",
            ">= 1x mpi4py", lambda v, r: r >= 1),
    Compare(r"raympi\.1node\.async\.tasks_per_s_median", "mpi4py.async_map.tasks_per_s_median"),
    Compare(r"raympi\.1node\.async\.tasks_per_s_median",
            "mpi4py.async_map_chunked.tasks_per_s_median"),
    # The same calls as a chunked map on both sides (raympi Task(...).Map, mpi4py chunksize).
    Compare(r"raympi\.1node\.async_map_chunked\.tasks_per_s_median",
            "mpi4py.async_map_chunked.tasks_per_s_median", ">= 1x mpi4py", lambda v, r: r >= 1),
    Compare(r"raympi\.1node\.async_clients\d+\.tasks_per_s_median",
            "mpi4py.async.tasks_per_s_median", ">= 1x mpi4py", lambda v, r: r >= 1),
    Compare(r"raympi\.1node\.async\.tasks_per_s_median", "dask.async.tasks_per_s_median"),
    # {0}: the array size in the raympi row's name (--quick uses a smaller one).
    Compare(r"raympi\.1node\.array_(\d+)MiB\.round_trip_ms", "mpi4py.array_{0}MiB.round_trip_ms"),
    Compare(r"raympi\.1node\.array_(\d+)MiB\.round_trip_ms", "dask.array_{0}MiB.round_trip_ms"),
    # An array round trip copies the array several times (Put, the task's by-value parameter,
    # its return, Get): informative against MPI_Get, not the transfer target.
    Compare(r"raympi\.\w+\.array_\d+MiB\.GBps", "mpi.get.GBps"),
    # The transfer target: a Get on node 0 of an object on node 1 (one RMA pull).
    Compare(r"objects\.get_remote_(\d+)MiB\.GBps", "mpi.get_win_create_{0}MiB", ">= 0.8x MPI_Get",
            lambda v, r: r >= 0.8),
    # The same Gets over one-sided MPI, as between hosts (RAYMPI_SAME_HOST_READS=0).
    Compare(r"objects_mpi\.get_remote_(\d+)MiB\.GBps", "mpi.get_win_create_{0}MiB",
            ">= 0.8x MPI_Get", lambda v, r: r >= 0.8),
    # A Get of an object made 20 ms earlier: every runtime process was asleep (informative).
    Compare(r"objects(?:_mpi)?\.get_remote_idle_(\d+)MiB\.GBps", "mpi.get_win_create_{0}MiB"),
    Compare(r"objects\.pull_(\d+MiB)$", "mpi.get_win_create_{0}", ">= 0.8x MPI_Get",
            lambda v, r: r >= 0.8),
    # Spilling (issue 7): the raylet's spill and restore against raw HDF5, same sizes.
    Compare(r"spill\.spill_(\d+MiB)", "hdf5.write_{0}"),
    Compare(r"spill\.restore_(\d+MiB)", "hdf5.read_{0}"),
    Compare(r"spill\.put_(\d+MiB)", "hdf5.write_{0}"),
    Compare(r"spill\.get_(\d+MiB)", "hdf5.read_{0}"),
    Compare(r"objects\.put_small\.calls_per_s", (RAY_PUTS, "Ray published"), ">= 1x Ray",
            lambda v, r: r >= 1),
    Compare(r"objects\.get_small\.calls_per_s", (RAY_GETS, "Ray published"), ">= 1x Ray",
            lambda v, r: r >= 1),
    Compare(r"objects\.put_\d+MiB\.GBps", (RAY_PUT_GBPS, "Ray published"), ">= 1x Ray",
            lambda v, r: r >= 1),
    Compare(r"gcs\.heartbeats\.reports_per_s", "mpi.raw_heartbeat_messages.msgs_per_s"),
    Compare(r"actors\.1_1\.sync\.calls_per_s", (RAY_ACTOR_SYNC, "Ray published"), ">= 10x Ray",
            lambda v, r: r >= 10),
    # Ray's figure is for batches of 1000 calls, each waited for (ray_perf.py), as is this row;
    # actors.1_1.async_all_at_once (every call before any wait) has no Ray figure.
    Compare(r"actors\.1_1\.async\.calls_per_s", (RAY_ACTOR_ASYNC, "Ray published"),
            ">= 10x Ray", lambda v, r: r >= 10),
    Compare(r"actors\.n_n\.async\.calls_per_s", (RAY_ACTOR_N_N, "Ray published"), ">= 10x Ray",
            lambda v, r: r >= 10),
    Compare(r"pg\.create_removal\.groups_per_s", (RAY_PG, "Ray published"), ">= 1x Ray",
            lambda v, r: r >= 1),
    # One group at a time is two round trips to the GCS plus its two-phase commit.
    Compare(r"pg\.sync_\w+\.us_per_group", "mpi.pingpong_8B.rtt"),
]


def measured_rows(measurements, name_to_section):
    rows = []
    for name in measurements.order:
        samples = measurements.samples[name]
        rows.append(Row(name, measurements.median(name), measurements.units[name],
                        section=name_to_section(name), samples=samples))
    return rows


def comparison_rows(measurements, status_of):
    """One row per (raympi row, baseline) pair. status_of(row name) -> (status, reason) of the
    benchmark that should have produced a missing baseline."""
    out = []
    for c in COMPARISONS:
        for m in filter(None, (re.fullmatch(c.rows, n) for n in measurements.order)):
            name = m.group(0)
            value = measurements.median(name)
            unit = measurements.units[name]
            if isinstance(c.baseline, tuple):
                base, base_name = c.baseline
            else:
                base_name = c.baseline.format(*m.groups())
                base = measurements.median(base_name)
            row = Row(f"{name} vs {base_name}", value, unit, base, base_name,
                      section="comparisons", target=c.target)
            if base is None:
                row.status, row.reason = status_of(base_name)
            elif base > 0:
                row.ratio = value / base
                if c.met:
                    row.target_met = bool(c.met(value, row.ratio))
            out.append(row)
    return out


def fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"


def print_table(rows, out):
    """Comparison rows print the raympi row under `benchmark` and the baseline's name after
    the ratio, so that the columns stay aligned."""
    section = None
    for r in rows:
        if r.section != section:
            section = r.section
            print(f"\n== {section}", file=out)
            print(f"{'benchmark':<48} {'value':>9} {'unit':<8} {'baseline':>9} {'ratio':>7}  "
                  + ("vs, target" if section == "comparisons" else ""), file=out)
        name = r.name.split(" vs ")[0]
        if r.status != results.OK:
            vs = f" vs {r.baseline_name}" if r.baseline_name else ""
            reason = f": {r.reason}" if r.reason else ""
            print(f"{name:<48} {r.status}{vs}{reason}", file=out)
            continue
        extra = r.baseline_name
        if r.target:
            met = {True: "MET", False: "MISSED", None: ""}[r.target_met]
            extra += f"  [target {r.target}: {met}]"
        print(f"{name:<48} {fmt(r.value):>9} {r.unit:<8} {fmt(r.baseline):>9} "
              f"{fmt(r.ratio):>7}  {extra}", file=out)


def print_scaling(scaling, out):
    if not scaling:
        return
    print("\n== scaling: K virtual nodes of 1 rank (mpirun -n K raympi --ranks-per-node 1), "
          "medians", file=out)
    print(f"{'K':>4} {'async tasks/s':>14} {'first result ms':>16} {'init ms':>9} "
          f"{'shutdown ms':>12}", file=out)
    for k, p in sorted(scaling.items()):
        print(f"{k:>4} {fmt(p.get('tasks_per_s')):>14} {fmt(p.get('first_result_ms')):>16} "
              f"{fmt(p.get('init_ms')):>9} {fmt(p.get('shutdown_ms')):>12}", file=out)


def write_json(path, machine, rows, scaling, failed):
    doc = {"benchmark": "raympi bench/run", "machine": machine, "failed": failed,
           "rows": [r.as_json() for r in rows],
           "scaling": {str(k): v for k, v in sorted(scaling.items())}}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    import os
    os.replace(tmp, path)
