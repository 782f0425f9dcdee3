#!/usr/bin/python3
"""mpi4py.futures peer: MPIPoolExecutor with --workers spawned workers.

    mpirun -n 1 /usr/bin/python3 bench/peers/mpi4py_bench.py [--sync-tasks N] ...
"""
import os

from mpi4py.futures import MPIPoolExecutor

import peer_common
from peer_tasks import echo, noop


def main():
    flags = peer_common.parse_flags(__doc__)
    here = os.path.dirname(os.path.abspath(__file__))
    with MPIPoolExecutor(max_workers=flags.workers, path=[here]) as pool:
        pool.submit(noop, 0).result()  # waits for the spawned workers to be up

        def many(n):
            futures = [pool.submit(noop, i) for i in range(n)]
            return [f.result() for f in futures]

        peer_common.run_all(
            "mpi4py",
            flags,
            sync_call=lambda i: pool.submit(noop, i).result(),
            async_calls=many,
            array_round_trip=lambda a: pool.submit(echo, a).result(),
            # map as called by default (one task per message), and tuned to ship 64 chunks:
            # one message per chunk, the batching a user of map can ask for.
            bulk_calls={
                "async_map": lambda n: list(pool.map(noop, range(n))),
                "async_map_chunked": lambda n: list(
                    pool.map(noop, range(n), chunksize=max(1, n // 64))),
            },
        )


if __name__ == "__main__":
    main()
