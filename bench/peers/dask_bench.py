#!/usr/bin/python3
"""Dask distributed peer: a LocalCluster of --workers processes, one thread each.

    /usr/bin/python3 bench/peers/dask_bench.py [--sync-tasks N] ...

The array is scattered first (Dask's Put), then passed to a task that returns it.
"""
import logging

from distributed import Client, LocalCluster

import peer_common
from peer_tasks import echo, noop


def main():
    flags = peer_common.parse_flags(__doc__)
    logging.getLogger("distributed").setLevel(logging.ERROR)
    with LocalCluster(n_workers=flags.workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.submit(noop, 0, pure=False).result()

        def many(n):
            return client.gather([client.submit(noop, i, pure=False) for i in range(n)])

        def array_round_trip(a):
            ref = client.scatter(a)
            return client.submit(echo, ref, pure=False).result()

        peer_common.run_all(
            "dask",
            flags,
            sync_call=lambda i: client.submit(noop, i, pure=False).result(),
            async_calls=many,
            array_round_trip=array_round_trip,
        )


if __name__ == "__main__":
    main()
