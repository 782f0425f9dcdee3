"""bench/run: runs every entry of benchmarks.BENCHMARKS (and the scaling runs) REPEATS times,
interleaved, and reports per row the median; see report.py for the table and JSON."""
import argparse
import importlib.util
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import time

import benchmarks
import procs
import report
import results
import svg_plot
from results import Row

SKIPPED = "skipped"


class Context:
    def __init__(self, args, repo):
        self.quick = args.quick
        self.quick_tasks = args.tasks
        self._build = os.path.abspath(args.build or os.path.join(repo, "build"))
        self._repo = repo

    def build(self, path):
        return os.path.join(self._build, path)

    def repo(self, path):
        return os.path.join(self._repo, path)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="bench/run", description=(
        "Runs every raympi microbenchmark, its raw-MPI baselines and the installed peers "
        "(bench/install-peers.sh), prints one table and writes bench.json and scaling.svg."))
    p.add_argument("--quick", action="store_true", help="short runs (CI smoke)")
    p.add_argument("--build", help="build folder (default: build); this script builds nothing")
    p.add_argument("--out", help="output folder (default: a new /tmp/raympi-bench.* folder)")
    p.add_argument("--repeats", type=int, help="runs of each entry; rows are medians "
                   "(default 3, --quick 1)")
    p.add_argument("--tasks", type=int, default=2000, help="async tasks per run with --quick")
    p.add_argument("--only", help="regex: run only the entries whose name matches")
    p.add_argument("--no-peers", action="store_true", help="leave the peers out")
    p.add_argument("--no-scaling", action="store_true", help="leave the scaling runs out")
    p.add_argument("--scaling-nodes", help="comma list of K (default 1,2,4,8,16; --quick 1,2)")
    p.add_argument("--timeout", type=int, help="seconds per run, for every entry")
    p.add_argument("--deadline", type=float, help="seconds for the whole of bench/run: runs "
                   "are cut to fit, and what does not fit is FAILED")
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    return args


def python_has(module):
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec('{module}') is None)"
    try:
        return subprocess.run([benchmarks.PYTHON, "-c", code], capture_output=True,
                              timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def precheck(entry, ctx, args):
    """(status, reason) before running: what stops the entry from running at all."""
    if args.quick and not entry.quick:
        return SKIPPED, "not part of --quick"
    if entry.peer_module:
        if args.no_peers:
            return SKIPPED, "--no-peers"
        if not python_has(entry.peer_module):
            return results.PEER_MISSING, (f"{benchmarks.PYTHON} cannot import "
                                          f"{entry.peer_module}; run bench/install-peers.sh")
    missing = [n for n in entry.needs if not os.access(ctx.build(n), os.X_OK)]
    if missing and entry.planned:
        return results.NOT_IMPLEMENTED, entry.planned
    if missing:
        return results.FAILED, (f"not built: {', '.join(missing)} (cmake --build "
                                f"{ctx.build('')} -j2)")
    return results.OK, ""


def run_entry(entry, ctx, args, out_dir, repeat, measurements, section_of):
    log = os.path.join(out_dir, "logs", f"{entry.name}.{repeat}.log")
    timeout = args.timeout or entry.timeout_s
    if args.deadline:
        left = int(args.deadline - (time.monotonic() - args.started))
        if left < 2:
            raise procs.RunFailed(f"not run: the --deadline of {args.deadline:g} s was used up")
        timeout = min(timeout, left)
    print(f"[bench/run] {entry.name} (repeat {repeat})", file=sys.stderr, flush=True)
    text, _, exit_epoch = procs.run(entry.command(ctx), timeout, log, env=mpi_env(ctx))
    rows = procs.parse_rows(text)
    if not rows:
        raise procs.RunFailed(f"printed no result rows (log {log})")
    if entry.derive:
        rows += entry.derive(rows)
    if entry.alias:
        new, prefix, unit = entry.alias
        matching = [(new, v, u) for n, v, u in rows if n.startswith(prefix) and u == unit]
        rows += matching[:1]
    if entry.times_shutdown:
        stamp = re.search(r"task_bench: shutdown_epoch_us=([0-9.]+)", text)
        if not stamp:
            raise procs.RunFailed(f"no shut-down stamp in the output (log {log})")
        rows.append((f"{entry.name}.shutdown_ms",
                     (exit_epoch * 1e6 - float(stamp.group(1))) / 1e3, "ms"))
    for name, value, unit in rows:
        measurements.add(name, value, unit)
        section_of[name] = entry.section


def mpi_env(ctx):
    """scripts/mpi-env.sh, for the MPI jobs: root allowed, TCP on loopback, oversubscribe."""
    env = dict(os.environ)
    env.update({"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                "OMPI_MCA_rmaps_base_oversubscribe": "1"})
    env.setdefault("OMPI_MCA_btl_tcp_if_include", "lo")
    env.setdefault("OMPI_MCA_oob_tcp_if_include", "lo")
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # keep the source tree clean of __pycache__
    return env


def busy_percent():
    """How busy the machine is over one second, from /proc/stat (others share it)."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:8]]
        return sum(v), v[3] + v[4]
    t0, i0 = sample()
    time.sleep(1)
    t1, i1 = sample()
    return round(100 - 100 * (i1 - i0) / max(1, t1 - t0))


def machine_info(repo, args, busy):
    def cmd(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True,
                                  timeout=30).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "unknown"
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"host": socket.gethostname(), "cpus": os.cpu_count(), "cpu_model": cpu,
            "os": platform.platform(), "mpi": cmd(["mpirun", "--version"]),
            "raympi_commit": cmd(["git", "-C", repo, "rev-parse", "--short", "HEAD"]),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "quick": args.quick,
            "repeats": args.repeats, "busy_percent_before": busy,
            "loadavg_before": os.getloadavg()[0]}


def main(argv, repo):
    args = parse_args(argv)
    args.started = time.monotonic()
    # Stopped from outside (a ctest timeout): SystemExit ends the running job's process group.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ctx = Context(args, repo)
    out_dir = os.path.abspath(args.out or os.path.join(
        "/tmp", time.strftime("raympi-bench.%Y%m%d-%H%M%S")))
    os.makedirs(os.path.join(out_dir, "logs"), exist_ok=True)
    nodes = benchmarks.SCALING_NODES_QUICK if args.quick else benchmarks.SCALING_NODES
    if args.scaling_nodes:
        nodes = [int(k) for k in args.scaling_nodes.split(",")]
    entries = list(benchmarks.BENCHMARKS)
    entries += [] if args.no_scaling else benchmarks.scaling_benchmarks(nodes)
    if args.only:
        entries = [e for e in entries if re.search(args.only, e.name)]
    busy = busy_percent()
    machine = machine_info(repo, args, busy)

    status = {e.name: precheck(e, ctx, args) for e in entries}
    measurements, section_of = results.Measurements(), {}
    for repeat in range(1, args.repeats + 1):
        for e in entries:
            if status[e.name][0] != results.OK:
                continue
            try:
                run_entry(e, ctx, args, out_dir, repeat, measurements, section_of)
            except (procs.RunFailed, OSError) as err:
                status[e.name] = (results.FAILED, str(err))
                print(f"[bench/run] {e.name} FAILED: {err}", file=sys.stderr, flush=True)
    machine["busy_percent_after"] = busy_percent()

    def status_of(row_name):
        for e in entries:
            if row_name.startswith(e.name) and status[e.name][0] != results.OK:
                return status[e.name]
        return results.FAILED, "not measured"

    rows = [Row(e.name, section=e.section, status=s, reason=r)
            for e in entries for s, r in [status[e.name]] if s != results.OK]
    rows += report.measured_rows(measurements, lambda n: section_of[n])
    order = ["baselines", "raympi", "peers", "scaling"]
    rows.sort(key=lambda r: order.index(r.section))  # stable: keeps the entries' order
    rows += report.comparison_rows(measurements, status_of)
    scaling = scaling_points(nodes, measurements)
    failed = sorted(n for n, (s, _) in status.items() if s == results.FAILED)

    json_path = os.path.join(out_dir, "bench.json")
    report.write_json(json_path, machine, rows, scaling, failed)
    svg_path = os.path.join(out_dir, "scaling.svg")
    if scaling:
        ks = sorted(scaling)
        svg_plot.write(svg_path, f"raympi {machine['raympi_commit']}, {machine['cpus']} CPUs, "
                       f"medians of {args.repeats}", ks,
                       [("async throughput", "tasks/s",
                         [scaling[k].get("tasks_per_s") for k in ks]),
                        ("start-up to first result", "ms",
                         [scaling[k].get("first_result_ms") for k in ks]),
                        ("shut-down", "ms", [scaling[k].get("shutdown_ms") for k in ks])])

    out = sys.stdout
    print(f"raympi benchmarks: {machine['cpus']} CPUs ({machine['cpu_model']}), "
          f"{machine['mpi']}, raympi {machine['raympi_commit']}, medians of {args.repeats} "
          f"repeat(s); machine {busy}% busy before, {machine['busy_percent_after']}% after",
          file=out)
    report.print_table(rows, out)
    report.print_scaling(scaling, out)
    print("\nratio = value / baseline (for us and ms lower is better, for tasks/s and GB/s "
          "higher is better)", file=out)
    print(f"JSON: {json_path}" + (f"\nplot: {svg_path}" if scaling else ""), file=out)
    print(f"logs: {os.path.join(out_dir, 'logs')}", file=out)
    if max(busy, machine["busy_percent_after"]) > 20:
        print("warning: the machine was busy with other work; figures read low", file=out)
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=out)
        return 1
    return 0


def scaling_points(nodes, m):
    points = {}
    for k in nodes:
        label = f"raympi.scale.vnodes{k}"
        p = {"tasks_per_s": m.median(f"{label}.async.tasks_per_s_median"),
             "first_result_ms": m.median(f"{label}.startup.first_result_ms"),
             "init_ms": m.median(f"{label}.startup.init_ms"),
             "shutdown_ms": m.median(f"{label}.shutdown_ms")}
        if any(v is not None for v in p.values()):
            points[k] = p
    return points
