#!/usr/bin/python3
"""ctest bench.quick_smoke: `bench/run --quick` works end to end.

    bench_quick_smoke.py SOURCE_DIR BUILD_DIR OUT_DIR

Checks that the JSON parses and every raympi row (1 node, scaling) has a number. Timings are
not checked: a smoke test, not a performance gate. A peer that failed is reported, not
fatal (peers run only where bench/install-peers.sh installed them)."""
import json
import math
import os
import shutil
import subprocess
import sys

source, build, out = sys.argv[1:4]
shutil.rmtree(out, ignore_errors=True)
cmd = [os.path.join(source, "bench", "run"), "--quick", "--tasks", "500", "--deadline", "110",
       "--no-peers", "--build", build, "--out", out]
rc = subprocess.run(cmd).returncode
with open(os.path.join(out, "bench.json")) as f:
    doc = json.load(f)
rows = {r["name"]: r for r in doc["rows"]}
problems = []
for r in doc["rows"]:
    if r["section"] in ("raympi", "scaling") and r["status"] == "ok":
        if not isinstance(r["value"], (int, float)) or not math.isfinite(r["value"]):
            problems.append(f"{r['name']}: no number ({r['value']!r})")
for name in ["raympi.1node.sync.us_per_task", "raympi.1node.async.tasks_per_s_median",
             "raympi.1node.array_16MiB.GBps", "raympi.scale.vnodes1.startup.first_result_ms",
             "raympi.scale.vnodes2.shutdown_ms", "mpi.pingpong_8B.rtt",
             "hdf5.write_1MiB", "spill.spill_1MiB", "spill.restore_1MiB"]:
    if name not in rows:
        problems.append(f"{name}: missing")
peers = {"mpi4py", "dask"}
not_peers = [n for n in doc["failed"] if n not in peers]
if not_peers:
    problems.append(f"FAILED: {not_peers}")
if rc != 0 and not doc["failed"]:
    problems.append(f"bench/run exited {rc} with no FAILED row")
for n in sorted(peers & set(doc["failed"])):
    print(f"bench.quick_smoke: warning: peer {n} FAILED: {rows[n]['reason']}")
for p in problems:
    print(f"bench.quick_smoke: {p}")
sys.exit(1 if problems else 0)
