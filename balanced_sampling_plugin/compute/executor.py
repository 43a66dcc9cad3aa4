"""Executors: run a stage's chunks in this process (threads) or on a Dask cluster, the same way.

A stage plans coarse chunks (e.g. 1 000-5 000 mask windows of one raster), then calls
``executor.map_chunks(function, chunks, progress, sizes)``. ``function(chunk, stop)`` must be a
module-level function (Dask pickles it) that returns a picklable result (a pandas frame, numpy arrays);
``stop()`` says whether the run was cancelled, so a long chunk can return early in-process (on a
cluster it always says False: cancelling there cancels the futures, and a running chunk finishes).
Results come back in the order of ``chunks``; progress advances by ``sizes`` (units of work, e.g.
patches) as chunks finish; a cancel raises :class:`~balanced_sampling_plugin.errors.OperationCanceled`.

``dask`` and ``distributed`` are imported only when a :class:`DaskExecutor` starts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any, Callable, Optional, Sequence, Union

from ..dependencies import SCALE_OUT, missing_packages, pip_command, python_interpreter, shell_line
from ..errors import BalancedSamplingError, MissingDependencyError
from ..i18n import _
from ..progress import Progress, as_progress

#: Seconds between two looks at the cancel flag while chunks run.
POLL_SECONDS = 0.2
#: Seconds the Dask loop sleeps when no task finished since its last look.
IDLE_SECONDS = 0.01
#: Tasks of one map_chunks call on the cluster at once, per worker thread (at least MIN_IN_FLIGHT); the rest wait
#: in the client and are submitted as these finish, so the scheduler never holds a whole 10 M-patch run.
IN_FLIGHT_PER_THREAD = 4
MIN_IN_FLIGHT = 64
#: Threads of each worker process of a LocalCluster the engine starts.
LOCAL_THREADS_PER_WORKER = 1
#: Memory limit of each LocalCluster worker: this share of the machine's memory, split between the workers...
LOCAL_MEMORY_SHARE = 0.8
#: ...and at most this much (bytes) each.
LOCAL_MEMORY_CAP = 4 << 30
#: Seconds to wait for a scheduler address to answer.
CONNECT_TIMEOUT = 20
#: The packages a Dask executor needs (import names; pip names are the same).
DASK_MODULES = SCALE_OUT

Function = Callable[[Any, Callable[[], bool]], Any]
#: Called in the caller's thread as each chunk's result arrives: ``on_result(index, result)``; the result is
#: then not kept (``map_chunks`` returns None in its place), so a caller that writes results away (e.g. into a
#: memory map) never holds them all.
ResultHook = Optional[Callable[[int, Any], None]]


class Executor:
    """Where chunks run. Use as a context manager: resources (a cluster) are released on exit."""

    #: Words for the log, e.g. "in this process (2 threads)".
    description = ""
    #: Whether chunks run in this process (a stage may then keep its own in-process loop).
    in_process = True

    def map_chunks(self, function: Function, chunks: Sequence[Any], progress: Optional[Progress] = None,
                   sizes: Optional[Sequence[int]] = None, on_result: ResultHook = None) -> list:
        raise NotImplementedError

    def worker_threads(self) -> int:
        """Threads that run chunks at once (in-process: the pool's; on a cluster: every worker's, now)."""
        return 1

    @contextlib.contextmanager
    def worker_setup(self, name: str, setup: Callable[[], None], teardown: Optional[Callable[[], None]] = None):
        """Within the block, ``setup()`` has run once in every worker process before its tasks (e.g. to load a
        model once per worker), and ``teardown()`` runs there on exit. In this process there is nothing to do:
        tasks set themselves up on first use."""
        yield

    def close(self) -> None:
        """Release what the executor started (nothing by default)."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _sizes(chunks: Sequence[Any], sizes: Optional[Sequence[int]]) -> list[int]:
    return [1] * len(chunks) if sizes is None else [int(s) for s in sizes]


class InProcessExecutor(Executor):
    """Chunks on a thread pool of this process (the default; numpy and rasterio release the GIL).

    ``workers``: threads (default ``min(4, cpu count)``).
    """

    def __init__(self, workers: Optional[int] = None):
        workers = min(4, os.cpu_count() or 1) if workers is None else int(workers)
        if workers < 1:
            raise BalancedSamplingError(_("workers must be at least 1; got {workers}.").format(workers=workers))
        self.workers = workers
        self.description = _("in this process ({n} threads)").format(n=workers)

    def worker_threads(self) -> int:
        return self.workers

    def map_chunks(self, function: Function, chunks: Sequence[Any], progress: Optional[Progress] = None,
                   sizes: Optional[Sequence[int]] = None, on_result: ResultHook = None) -> list:
        progress = as_progress(progress)
        sizes = _sizes(chunks, sizes)
        total, done = sum(sizes), 0
        stop = threading.Event()
        results: list = [None] * len(chunks)
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            pending = {pool.submit(function, chunk, stop.is_set): i for i, chunk in enumerate(chunks)}
            try:
                while pending:
                    finished, _running = wait(pending, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
                    for future in finished:
                        i = pending.pop(future)
                        result = future.result()  # re-raises a chunk's error
                        if on_result is None:
                            results[i] = result
                        else:
                            on_result(i, result)
                        done += sizes[i]
                    progress.update(done, total)  # raises OperationCanceled when the user cancelled
            except BaseException:
                stop.set()  # running chunks return at their next look at stop()
                for future in pending:
                    future.cancel()
                raise
        return results


def _never_stop() -> bool:
    return False


def _run_on_worker(function: Function, chunk: Any) -> Any:
    """A chunk on a Dask worker. An engine error comes back as itself, without its cause: the cause (e.g. a
    rasterio error) may not pickle, and Dask would then send a bare ``Exception`` with the text."""
    try:
        return function(chunk, _never_stop)
    except BalancedSamplingError as exc:
        kind, args = type(exc), exc.args
    try:
        clean = kind(*args)
    except Exception:  # a subclass with another signature
        clean = BalancedSamplingError(*args)
    raise clean  # outside the except block: no __context__ either


def parse_spec(spec: Optional[str]) -> tuple[str, Optional[object]]:
    """``""``/None -> ``("inprocess", None)``; ``"local"`` -> ``("local", None)``; ``"local:N"`` ->
    ``("local", N)``; a scheduler address (``tcp://host:8786``, ``tls://…``, ``host:8786``) -> ``("address", text)``.

    Raises :class:`BalancedSamplingError` naming the text and the accepted forms.
    """
    text = (spec or "").strip()
    if not text or text.lower() in ("inprocess", "in-process", "none"):
        return "inprocess", None
    match = re.fullmatch(r"local(?::\s*(\S+))?", text, flags=re.IGNORECASE)
    if match:
        if match.group(1) is None:
            return "local", None
        try:
            n = int(match.group(1))
        except ValueError:
            n = 0
        if n < 1:
            raise BalancedSamplingError(
                _("The Dask scheduler '{spec}' asks for a local cluster, but '{n}' is not a number of workers (1 or "
                  "more), e.g. local:2.").format(spec=text, n=match.group(1)))
        return "local", n
    if re.fullmatch(r"(tcp|tls|ws|wss|ucx|inproc)://\S+", text, flags=re.IGNORECASE) or \
            re.fullmatch(r"[A-Za-z0-9_.\-\[\]:]+:\d{1,5}", text):
        return "address", text
    raise BalancedSamplingError(
        _("The Dask scheduler '{spec}' is not understood. Leave it empty to run in this process, write local:N for "
          "a cluster of N worker processes on this machine, or give a scheduler address such as "
          "tcp://host:8786.").format(spec=text))


def executor_from_spec(spec: Optional[str] = "", n_workers: Optional[int] = None, workers: Optional[int] = None,
                       threads_per_worker: Optional[int] = None, memory_limit: Optional[object] = None) -> Executor:
    """An executor from the user's scheduler text (see :func:`parse_spec`).

    ``n_workers`` gives the worker count of a bare ``local`` (default: the CPU count) and must agree with
    ``local:N``; ``workers`` is the thread count in-process; ``threads_per_worker`` and ``memory_limit``
    (bytes or text like ``"2GiB"``) shape a local cluster. Nothing starts until the first ``map_chunks``.
    """
    kind, value = parse_spec(spec)
    if kind == "inprocess":
        return InProcessExecutor(workers)
    if kind == "address":
        local_only = [name for name, given in (("n_workers", n_workers), ("threads_per_worker", threads_per_worker),
                                               ("memory_limit", memory_limit)) if given is not None]
        if local_only:
            raise BalancedSamplingError(
                _("{options} shape only a local cluster (local:N); the workers of the scheduler {address} keep their "
                  "own (as given to dask worker). Remove {options}, or use local:N.").format(
                    options=", ".join(local_only), address=value))
        return DaskExecutor(address=str(value))
    if n_workers is not None and (int(n_workers) < 1 or (value is not None and int(n_workers) != value)):
        raise BalancedSamplingError(
            _("n_workers ({n}) does not fit the Dask scheduler '{spec}': give the worker count once, as local:N or "
              "as n_workers (1 or more).").format(n=n_workers, spec=spec))
    count = value if value is not None else (int(n_workers) if n_workers is not None else os.cpu_count() or 1)
    return DaskExecutor(n_workers=count, threads_per_worker=threads_per_worker, memory_limit=memory_limit)


@contextlib.contextmanager
def executor_for(executor: Union[Executor, str, None], workers: Optional[int] = None):
    """What a stage runs on: an :class:`Executor` the caller owns (or None), as it is; a scheduler text (see
    :func:`executor_from_spec`; ``workers``: threads in-process) opened here and closed when the block ends."""
    if executor is None or isinstance(executor, Executor):
        yield executor
        return
    with executor_from_spec(executor, workers=workers) as own:
        yield own


def require_dask(spec: str) -> None:
    """Raise a :class:`MissingDependencyError` naming dask/distributed and how to install them, if missing."""
    missing = missing_packages(DASK_MODULES)
    if missing:
        raise MissingDependencyError(
            _("Running on a Dask cluster ({spec}) needs the Python packages {packages}, which are not installed. "
              "Install them into the Python that QGIS uses: `{command}` (the OSGeo4W Shell on Windows), or leave "
              "the Dask scheduler empty to run in this process.").format(
                spec=spec, packages=", ".join(missing), command=shell_line(pip_command(missing))))


def _local_memory_limit(n_workers: int) -> int:
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 << 30
    return int(min(LOCAL_MEMORY_CAP, max(256 << 20, total * LOCAL_MEMORY_SHARE / n_workers)))


def _use_python_for_workers() -> None:
    """Worker processes are spawned with ``sys.executable``; inside QGIS that may be QGIS itself, or whatever
    ``python3`` comes first on the PATH (another interpreter, which fails on this one's standard library). Then
    the interpreter QGIS embeds (:func:`~balanced_sampling_plugin.dependencies.python_interpreter`) is used."""
    executable = os.path.abspath(sys.executable or "")
    prefixes = {os.path.abspath(p) for p in (sys.exec_prefix, sys.base_exec_prefix)}
    ours = os.path.isfile(executable) and os.path.basename(executable).lower().startswith("python") and \
        any(executable.startswith(prefix + os.sep) for prefix in prefixes)
    if not ours:
        import multiprocessing

        multiprocessing.set_executable(python_interpreter())


def _refuse_unreachable(address: str) -> None:
    """Fail at once when nothing listens at a TCP scheduler address (connection refused, unknown host), instead of
    after Dask's connect timeout; a slow or silent network is left to Dask's own timeout."""
    import socket

    match = re.fullmatch(r"(?:tcp://)?\[?([^\]/]+?)\]?:(\d{1,5})/?", address.strip(), flags=re.IGNORECASE)
    if not match:
        return  # tls://, ws://, ucx://: Dask's own connect says what is wrong
    host, port = match.group(1), int(match.group(2))
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
    except socket.timeout:
        return
    except OSError as exc:
        raise BalancedSamplingError(
            _("Cannot reach the Dask scheduler at {address}: {error}. Check that the scheduler runs there and listens "
              "on that port, or leave the Dask scheduler empty to run in this process.").format(
                address=address, error=exc.strerror or exc)) from None


class DaskExecutor(Executor):
    """Chunks as Dask futures: on the scheduler at ``address``, or on a LocalCluster of ``n_workers``
    worker processes (``threads_per_worker`` threads each, ``memory_limit`` each) that this executor
    starts on first use and closes in :meth:`close`."""

    in_process = False

    def __init__(self, address: Optional[str] = None, n_workers: Optional[int] = None,
                 threads_per_worker: Optional[int] = None, memory_limit: Optional[object] = None):
        self.address = address
        self.n_workers = int(n_workers or os.cpu_count() or 1) if address is None else None
        self.threads_per_worker = int(threads_per_worker or LOCAL_THREADS_PER_WORKER)
        if self.threads_per_worker < 1:
            raise BalancedSamplingError(_("threads_per_worker must be at least 1; got {n}.").format(
                n=self.threads_per_worker))
        self.memory_limit = memory_limit if memory_limit is not None or address else \
            _local_memory_limit(self.n_workers)
        self.spec = address or f"local:{self.n_workers}"
        self.description = (_("on the Dask scheduler {address}").format(address=address) if address else
                            _("on a local Dask cluster of {n} worker processes").format(n=self.n_workers))
        self.max_in_flight: Optional[int] = None  # None: IN_FLIGHT_PER_THREAD x the cluster's threads
        self._client = None
        self._cluster = None

    @property
    def client(self):
        """The ``distributed.Client`` (started, or connected, on first use)."""
        if self._client is None:
            self._start()
        return self._client

    def _start(self) -> None:
        require_dask(self.spec)
        import distributed

        if self.address is None:
            _use_python_for_workers()
            try:
                self._cluster = distributed.LocalCluster(
                    n_workers=self.n_workers, threads_per_worker=self.threads_per_worker, processes=True,
                    memory_limit=self.memory_limit, dashboard_address=None, silence_logs=logging.ERROR)
                self._client = distributed.Client(self._cluster)
            except (OSError, RuntimeError, TimeoutError, ValueError) as exc:
                self.close()
                raise BalancedSamplingError(
                    _("Could not start a local Dask cluster of {n} worker processes ({error}). Leave the Dask "
                      "scheduler empty to run in this process, or start a Dask scheduler and workers yourself "
                      "and give its address.").format(n=self.n_workers, error=exc)) from exc
        else:
            _refuse_unreachable(self.address)
            try:
                self._client = distributed.Client(self.address, timeout=CONNECT_TIMEOUT)
            except (OSError, TimeoutError, ValueError) as exc:
                raise BalancedSamplingError(
                    _("Cannot reach the Dask scheduler at {address} ({error}). Check that the scheduler runs and "
                      "that this machine can reach it, or leave the Dask scheduler empty to run in this "
                      "process.").format(address=self.address, error=exc)) from exc

    def map_chunks(self, function: Function, chunks: Sequence[Any], progress: Optional[Progress] = None,
                   sizes: Optional[Sequence[int]] = None, on_result: ResultHook = None) -> list:
        progress = as_progress(progress)
        sizes = _sizes(chunks, sizes)
        total, done = sum(sizes), 0
        progress.check_canceled()
        client = self.client
        import distributed

        name = getattr(function, "__name__", "chunk").strip("_")
        token = uuid.uuid4().hex[:12]
        position: dict = {}
        futures: list = []  # submitted and not yet collected
        results: list = [None] * len(chunks)
        finished = distributed.as_completed()

        def submit(count: int) -> None:
            """The next ``count`` chunks in one map call (one message to the scheduler, not one per task)."""
            first = len(position)
            indices = range(first, min(len(chunks), first + count))
            if not indices:
                return
            keys = [f"{name}-{token}-{i}" for i in indices]
            new = client.map(_run_on_worker, [function] * len(indices), [chunks[i] for i in indices], key=keys,
                             pure=False)
            position.update({future.key: i for future, i in zip(new, indices)})
            futures.extend(new)
            finished.update(new)

        # At most ``limit`` tasks on the cluster at once: the chunks' data (~90 bytes a patch) waits here,
        # not in the scheduler's memory, and a cancel has little to withdraw.
        limit = self.max_in_flight or max(MIN_IN_FLIGHT, IN_FLIGHT_PER_THREAD * sum(client.nthreads().values()))
        submit(limit)
        collected = 0
        try:
            while collected < len(chunks):
                batch = finished.next_batch(block=False)
                if not batch:
                    progress.update(done, total)  # raises OperationCanceled when the user cancelled
                    time.sleep(IDLE_SECONDS)
                    continue
                # One gather per batch of finished tasks: one round trip, not one per result.
                for future, result in zip(batch, self._gather(client, batch, chunks, position)):
                    i = position[future.key]
                    if on_result is None:
                        results[i] = result
                    else:
                        on_result(i, result)
                    done += sizes[i]
                    future.release()  # the result is here: the worker may drop it
                collected += len(batch)
                in_flight = len(position) - collected
                if in_flight <= limit // 2:
                    submit(limit - in_flight)
                progress.update(done, total)
        except BaseException:
            client.cancel([f for f in futures if not f.done()])
            raise
        return results

    def worker_threads(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    @contextlib.contextmanager
    def worker_setup(self, name: str, setup: Callable[[], None], teardown: Optional[Callable[[], None]] = None):
        """``setup()`` as a Dask ``WorkerPlugin``: it runs on every worker now and on any worker that joins (or
        restarts after being killed) while the block runs; on exit the plugin is removed and ``teardown()`` runs
        on each worker. An engine error in ``setup()`` comes back as itself."""
        client = self.client
        import distributed

        class _Setup(distributed.WorkerPlugin):  # defined here: distributed is imported on this path only
            def __init__(self):
                self.name = name

            def setup(self, worker):
                _run_on_worker(lambda _chunk, _stop: setup(), None)

            def teardown(self, worker):
                if teardown is not None:
                    teardown()

        try:
            client.register_plugin(_Setup(), name=name)
        except BalancedSamplingError:
            raise
        except Exception as exc:
            raise BalancedSamplingError(
                _("Setting up the Dask workers failed ({error}).").format(error=exc)) from exc
        try:
            yield
        finally:
            with contextlib.suppress(Exception):  # a cluster gone meanwhile has nothing left to tear down
                client.unregister_worker_plugin(name)

    @staticmethod
    def _gather(client, batch, chunks, position) -> list:
        try:
            return client.gather(batch)
        except BalancedSamplingError:
            raise
        except Exception as exc:
            if type(exc).__name__ == "KilledWorker":
                failed = next((f for f in batch if f.status == "error"), batch[0])
                raise BalancedSamplingError(
                    _("A Dask worker died while running {task} ({error}), more often than the scheduler retries "
                      "a task; the run stopped and nothing was written. A worker that runs out of memory is "
                      "killed: give the workers more memory or fewer threads.").format(
                        task=describe_chunk(chunks[position[failed.key]]), error=exc)) from exc
            raise

    def close(self) -> None:
        client, cluster = self._client, self._cluster
        self._client = self._cluster = None
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


def describe_chunk(chunk: Any) -> str:
    """The chunk's own description (``describe()``), else its text."""
    describe = getattr(chunk, "describe_chunk", None)
    return describe() if callable(describe) else repr(chunk)[:200]
