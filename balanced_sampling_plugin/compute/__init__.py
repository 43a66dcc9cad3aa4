"""Where the heavy stages run: in this process (threads) or on a Dask cluster.

A stage cuts its work into coarse chunks and hands them to an executor
(:func:`executor_from_spec` makes one from the user's ``DASK_SCHEDULER`` / ``compute.scheduler`` text);
the stage never asks which kind it got. ``dask`` and ``distributed`` are imported only when a Dask
executor starts.
"""

from .executor import DaskExecutor, Executor, InProcessExecutor, executor_for, executor_from_spec, parse_spec

__all__ = ["DaskExecutor", "Executor", "InProcessExecutor", "executor_for", "executor_from_spec", "parse_spec"]
