"""THE list of benchmarks bench/run runs: one entry each. Adding a benchmark is adding an
entry to BENCHMARKS (and, to compare it with something, a line in report.COMPARISONS).

An entry's program prints result rows `name,value,unit,baseline,ratio` on stdout. An entry
whose program is not built and that is marked `planned` reports "not yet implemented"; a peer
whose Python module is missing reports "peer not installed"; anything else that goes wrong
reports FAILED with the reason."""
import time
from dataclasses import dataclass, field

PYTHON = "/usr/bin/python3"  # Debian's: the one that sees python3-distributed and mpi4py
SCALING_NODES = [1, 2, 4, 8, 16]
SCALING_NODES_QUICK = [1, 2]
QUICK_ARRAY_MIB = 16  # --quick: a smaller array, so the CI smoke stays short


@dataclass
class Bench:
    name: str
    section: str
    command: object  # ctx -> argv, called just before the run (it may read the clock)
    needs: list = field(default_factory=list)  # paths under the build folder
    planned: str = ""  # not written yet: why, shown while `needs` is missing
    peer_module: str = ""  # a Python module the peer needs (checked with PYTHON)
    timeout_s: int = 300
    quick: bool = True  # also part of --quick (else a "skipped (--quick)" row)
    alias: tuple = ()  # (new name, name prefix, unit): copy the first matching row
    times_shutdown: bool = False  # the program prints task_bench's shutdown stamp
    derive: object = None  # [(name, value, unit)] -> more rows computed from them


def task_bench(ctx, ranks, label, scenarios, *extra, vnodes=False):
    argv = ["mpirun", "-n", str(ranks), ctx.build("bin/raympi")]
    if vnodes:
        argv += ["--ranks-per-node", "1"]
    argv += [ctx.build("bench/tasks/task_bench"), "--label", label, "--only", scenarios]
    if ctx.quick:
        argv += ["--warmup", "50", "--sync-tasks", "200", "--sync-runs", "2",
                 "--async-tasks", str(ctx.quick_tasks), "--async-runs", "2", "--array-runs", "1",
                 "--array-mib", str(QUICK_ARRAY_MIB)]
    return argv + list(extra)


def launch_epoch_us():
    return ["--launch-epoch-us", "%.0f" % (time.time() * 1e6)]


def peer_flags(ctx, sync_tasks, async_tasks):
    if ctx.quick:
        return ["--sync-tasks", str(max(10, sync_tasks // 10)),
                "--async-tasks", str(max(10, async_tasks // 10)), "--runs", "1",
                "--array-mib", str(QUICK_ARRAY_MIB)]
    return ["--sync-tasks", str(sync_tasks), "--async-tasks", str(async_tasks)]


RAYMPI_NEEDS = ["bin/raympi", "bench/tasks/task_bench"]

BENCHMARKS = [
    # Baselines: the same machine with nothing of raympi.
    Bench("mpi.pingpong", "baselines",
          lambda ctx: ["mpirun", "-n", "2", ctx.build("bench/baseline/mpi_pingpong")]
          + (["--iters", "5000", "--warmup", "500", "--runs", "3"] if ctx.quick else []),
          needs=["bench/baseline/mpi_pingpong"], timeout_s=120,
          derive=lambda rows: [(n.replace("half_rtt", "rtt"), 2 * v, u)
                               for n, v, u in rows if n.endswith(".half_rtt")]),
    # Raw MPI_Get over a Win_create window on a shm arena (what raylets use), chunked Rget,
    # Win_allocate, and an ObjectManager pull of the same bytes, for 1 MiB, 64 MiB, 1 GiB.
    Bench("mpi.get", "baselines",
          lambda ctx: ["mpirun", "-n", "2", ctx.build("bench/baseline/mpi_get_bench")]
          + (["--skip-1g", "--runs", "1"] if ctx.quick else []),
          needs=["bench/baseline/mpi_get_bench"], timeout_s=300,
          alias=("mpi.get.GBps", "mpi.get_win_create_64MiB", "GB/s")),
    # Raw HDF5 write/read of N objects beside the raylet's spill/restore of the same objects
    # (SpillManager + Hdf5SpillStorage), same process, same directory, same sizes.
    Bench("hdf5.write_read", "baselines",
          lambda ctx: [ctx.build("bench/baseline/hdf5_bench")]
          + (["--sizes-mib", "1", "--total-mib", "32", "--runs", "1"] if ctx.quick else []),
          needs=["bench/baseline/hdf5_bench"], timeout_s=300),
    # raympi.
    Bench("raympi.1node", "raympi",
          lambda ctx: task_bench(ctx, 1, "raympi.1node", "sync,async,clients,map,array"),
          needs=RAYMPI_NEEDS),
    Bench("raympi.2vnodes", "raympi",
          lambda ctx: task_bench(ctx, 2, "raympi.2vnodes", "sync,async,array", "--array-node",
                                 "1", vnodes=True),
          needs=RAYMPI_NEEDS, quick=False),
    Bench("objects", "raympi",
          lambda ctx: ["mpirun", "-n", "2", ctx.build("bin/raympi"), "--ranks-per-node", "1",
                       "--object-store-memory", "1536MiB" if ctx.quick else "3GiB",
                       "--object-store-prefault", ctx.build("bench/objects/object_bench")]
          + (["--small-calls", "2000", "--big-mib", "256", "--remote-mib", "1,64", "--runs", "2"]
             if ctx.quick else []),
          needs=["bin/raympi", "bench/objects/object_bench"], timeout_s=300),
    # The same cross-node Gets with same-host reads off: the one-sided MPI path that nodes on
    # different hosts take (virtual nodes of one host map each other's stores by default).
    Bench("objects_mpi", "raympi",
          lambda ctx: ["mpirun", "-n", "2", "-x", "RAYMPI_SAME_HOST_READS=0",
                       ctx.build("bin/raympi"), "--ranks-per-node", "1",
                       "--object-store-memory", "1536MiB" if ctx.quick else "3GiB",
                       "--object-store-prefault", ctx.build("bench/objects/object_bench"),
                       "--label", "objects_mpi", "--small-calls", "1000", "--big-mib", "64"]
          + (["--remote-mib", "1,64", "--runs", "2"] if ctx.quick else []),
          needs=["bin/raympi", "bench/objects/object_bench"], timeout_s=300),
    # Spilling end to end: Put and GetView of 256 MiB through a 128 MiB store, spill files in
    # the default spill directory ($TMPDIR or /tmp), where hdf5_bench writes too.
    Bench("spill", "raympi",
          lambda ctx: ["mpirun", "-n", "1", ctx.build("bin/raympi"), "--object-store-memory",
                       "128MiB", "--object-store-prefault", ctx.build("bench/objects/spill_bench")],
          needs=["bin/raympi", "bench/objects/spill_bench"], timeout_s=300, quick=False),
    Bench("actors", "raympi",
          lambda ctx: ["mpirun", "-n", "1", ctx.build("bin/raympi"),
                       ctx.build("bench/actors/actor_bench")]
          + (["--calls", "2000"] if ctx.quick else []),
          needs=["bin/raympi", "bench/actors/actor_bench"], timeout_s=300),
    # GCS capacity: 3 ranks flood rank 0's GcsServer with heartbeats, next to a raw MPI receive
    # of the same bytes in the same run (the row carries its own baseline and ratio).
    Bench("gcs", "raympi",
          lambda ctx: ["mpirun", "-n", "3", ctx.build("bench/gcs/gcs_bench")]
          + (["--reports", "5000", "--runs", "2"] if ctx.quick else []),
          needs=["bench/gcs/gcs_bench"], timeout_s=120),
    # Placement groups: batches of 100 one-bundle groups created, waited for and removed
    # (Ray's `placement group create/removal`), and one group at a time.
    Bench("pg", "raympi",
          lambda ctx: ["mpirun", "-n", "1", ctx.build("bin/raympi"), "--resources",
                       '{"custom": 100}', ctx.build("bench/pg/pg_bench")]
          + (["--runs", "3", "--serial", "50"] if ctx.quick else []),
          needs=["bin/raympi", "bench/pg/pg_bench"], timeout_s=300),
    # Peers, from Debian packages (bench/install-peers.sh).
    Bench("mpi4py", "peers",
          lambda ctx: ["mpirun", "-n", "1", PYTHON, ctx.repo("bench/peers/mpi4py_bench.py")]
          + peer_flags(ctx, 2000, 10000),
          peer_module="mpi4py.futures", timeout_s=300),
    Bench("dask", "peers",
          lambda ctx: [PYTHON, ctx.repo("bench/peers/dask_bench.py")] + peer_flags(ctx, 300, 2000),
          peer_module="distributed", timeout_s=300),
]


def scaling_benchmarks(nodes):
    """Async throughput, start-up and shut-down on K virtual nodes of 1 rank each."""
    out = []
    for k in nodes:
        label = f"raympi.scale.vnodes{k}"
        out.append(Bench(
            label, "scaling",
            lambda ctx, k=k, label=label: task_bench(ctx, k, label, "async", vnodes=True)
            + launch_epoch_us(),
            needs=RAYMPI_NEEDS, timeout_s=120 + 30 * k, times_shutdown=True))
    return out
