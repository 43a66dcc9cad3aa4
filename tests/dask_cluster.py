"""A Dask LocalCluster of 2 worker processes for tests: the executor the engine uses, short retries, and the test
module pickled by value (workers need not import it)."""

import contextlib
import sys


@contextlib.contextmanager
def local_test_cluster(module_name: str, allowed_failures: int = 1, memory_limit: str = "1GiB"):
    """Yield a started :class:`DaskExecutor` of 2 worker processes (1 thread each); closed on exit.

    ``allowed_failures``: deaths a task may cause before the run stops (Dask's default is 3; fewer keeps the
    killed-worker tests short)."""
    import cloudpickle
    import dask

    from balanced_sampling_plugin.compute import DaskExecutor

    module = sys.modules[module_name]
    cloudpickle.register_pickle_by_value(module)
    try:
        with dask.config.set({"distributed.scheduler.allowed-failures": allowed_failures}):
            executor = DaskExecutor(n_workers=2, threads_per_worker=1, memory_limit=memory_limit)
            executor.client.wait_for_workers(2, timeout=60)
        try:
            yield executor
        finally:
            executor.close()
    finally:
        cloudpickle.unregister_pickle_by_value(module)
