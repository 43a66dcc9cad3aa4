"""The executor seam (balanced_sampling_plugin.compute): in-process threads and a Dask LocalCluster of 2 worker
processes give the same mask statistics and composition; spec parsing, progress, cancel, errors, a killed worker."""

from __future__ import annotations

import os
import sys

import pandas as pd
import pytest

from balanced_sampling_plugin.composition import compute_composition
from balanced_sampling_plugin.compute import (
    DaskExecutor,
    InProcessExecutor,
    executor_from_spec,
    parse_spec,
)
from balanced_sampling_plugin.compute import executor as executor_module
from balanced_sampling_plugin.config import load_config
from balanced_sampling_plugin.errors import BalancedSamplingError, MissingDependencyError, OperationCanceled
from balanced_sampling_plugin.footprints import build_footprints
from balanced_sampling_plugin.mask_stats import compute_mask_stats
from balanced_sampling_plugin.progress import Progress


# --------------------------------------------------------------------------- task functions (module level: pickled)


def _double(chunk, stop):
    return chunk * 2


def _pid(chunk, stop):
    return os.getpid()


def _fail_on_three(chunk, stop):
    if chunk == 3:
        raise BalancedSamplingError(f"chunk {chunk} is bad")
    return chunk


def _slow(chunk, stop):
    import time

    folder, value = chunk
    open(os.path.join(folder, f"ran-{value}"), "w").close()
    time.sleep(0.2)
    return value


def _die_always(chunk, stop):
    if chunk == 1:
        os._exit(1)
    return chunk


def _die_once(chunk, stop):
    """Kill this worker process the first time chunk 0 runs (a marker file says it happened)."""
    folder, value = chunk
    marker = os.path.join(folder, "died")
    if value == 0 and not os.path.exists(marker):
        with open(marker, "w") as handle:
            handle.write(str(os.getpid()))
        os._exit(1)
    return value, os.getpid()


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def cluster():
    """One LocalCluster of 2 worker processes (1 thread each) for the whole module, closed at the end.

    The scheduler retries a task whose worker died once (allowed-failures 1, Dask's default is 3), so the
    killed-worker tests stay short."""
    from tests.dask_cluster import local_test_cluster

    with local_test_cluster(__name__, allowed_failures=1) as executor:
        yield executor


@pytest.fixture(scope="module")
def records(synthetic_dataset):
    pairs = list(zip(synthetic_dataset.images, synthetic_dataset.masks))
    return build_footprints(pairs, patch_size=64, stride=64).records  # 6 rasters x 64 windows


# --------------------------------------------------------------------------- spec parsing


@pytest.mark.parametrize("spec, expected", [
    ("", ("inprocess", None)),
    (None, ("inprocess", None)),
    ("  ", ("inprocess", None)),
    ("local", ("local", None)),
    ("local:3", ("local", 3)),
    ("LOCAL:2", ("local", 2)),
    ("tcp://10.0.0.5:8786", ("address", "tcp://10.0.0.5:8786")),
    ("tls://scheduler.example.org:8786", ("address", "tls://scheduler.example.org:8786")),
    ("scheduler:8786", ("address", "scheduler:8786")),
])
def test_parse_spec(spec, expected):
    assert parse_spec(spec) == expected


@pytest.mark.parametrize("spec, named", [
    ("local:0", "local:0"), ("local:two", "two"), ("local:", "local:"), ("dask please", "dask please"),
    ("http//x", "http//x"),
])
def test_parse_spec_rejects_and_names_the_text(spec, named):
    with pytest.raises(BalancedSamplingError, match="local:N|local:2") as info:
        parse_spec(spec)
    assert named in str(info.value)


def test_executor_from_spec_kinds():
    assert isinstance(executor_from_spec(""), InProcessExecutor)
    assert executor_from_spec("", workers=3).workers == 3
    local = executor_from_spec("local:2")
    assert isinstance(local, DaskExecutor) and local.n_workers == 2 and local.address is None
    assert local.memory_limit > 0  # an explicit limit, not Dask's "auto"
    assert executor_from_spec("local", n_workers=3).n_workers == 3
    remote = executor_from_spec("tcp://127.0.0.1:1")
    assert remote.address == "tcp://127.0.0.1:1" and remote.n_workers is None
    with pytest.raises(BalancedSamplingError, match="n_workers"):
        executor_from_spec("local:2", n_workers=3)
    with pytest.raises(BalancedSamplingError, match="workers"):
        InProcessExecutor(0)


def test_nothing_imports_dask_until_a_dask_executor_starts():
    import subprocess

    code = ("import sys; import balanced_sampling_plugin.composition, balanced_sampling_plugin.pipeline; "
            "from balanced_sampling_plugin.compute import executor_from_spec; e = executor_from_spec('local:2'); "
            "print(sorted(m for m in ('dask', 'distributed') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert out.stdout.strip() == "[]"


def test_missing_dask_names_the_packages_and_the_pip_command(monkeypatch):
    monkeypatch.setattr(executor_module, "missing_packages", lambda modules: ["dask", "distributed"])
    with pytest.raises(MissingDependencyError) as info:
        DaskExecutor(n_workers=2).map_chunks(_double, [1])
    message = str(info.value)
    assert "dask, distributed" in message and "pip install dask distributed" in message and "local:2" in message


def test_a_local_cluster_that_cannot_start_is_a_clear_error(monkeypatch):
    import distributed

    def fail(*args, **kwargs):
        raise RuntimeError("Nanny failed to start.")

    monkeypatch.setattr(distributed, "LocalCluster", fail)
    with pytest.raises(BalancedSamplingError, match="Could not start a local Dask cluster of 2 worker processes "
                                                    r"\(Nanny failed to start.\)"):
        DaskExecutor(n_workers=2).map_chunks(_double, [1])


def test_unreachable_scheduler_is_named():
    executor = DaskExecutor(address="tcp://127.0.0.1:9")  # discard port: nothing listens
    monkey = executor_module.CONNECT_TIMEOUT
    executor_module.CONNECT_TIMEOUT = 2
    try:
        with pytest.raises(BalancedSamplingError, match="tcp://127.0.0.1:9"):
            executor.map_chunks(_double, [1])
    finally:
        executor_module.CONNECT_TIMEOUT = monkey
        executor.close()


# --------------------------------------------------------------------------- in-process


def test_in_process_results_in_order_with_progress():
    seen = []
    result = InProcessExecutor(3).map_chunks(_double, list(range(20)), Progress(set_percent=seen.append),
                                             sizes=[5] * 20)
    assert result == [2 * i for i in range(20)]
    assert seen[-1] == 100.0 and seen == sorted(seen)


def test_in_process_cancel_stops_running_chunks():
    calls = []

    def reader(chunk, stop):
        calls.append(chunk)
        while not stop():  # a long chunk that looks at stop() between windows
            pass
        return None

    with pytest.raises(OperationCanceled):
        InProcessExecutor(2).map_chunks(reader, list(range(50)), Progress(is_canceled=lambda: True))
    assert len(calls) < 50


def test_in_process_error_is_raised():
    with pytest.raises(BalancedSamplingError, match="chunk 3 is bad"):
        InProcessExecutor(2).map_chunks(_fail_on_three, list(range(6)))


# --------------------------------------------------------------------------- Dask LocalCluster (2 processes)


def test_dask_runs_chunks_on_worker_processes_in_order(cluster):
    assert cluster.map_chunks(_double, list(range(30))) == [2 * i for i in range(30)]
    pids = set(cluster.map_chunks(_pid, list(range(30))))
    assert os.getpid() not in pids and 1 <= len(pids) <= 2

    cluster.max_in_flight = 4  # submitted in waves as tasks finish
    try:
        seen = []
        assert cluster.map_chunks(_double, list(range(25)), Progress(set_percent=seen.append)) == \
            [2 * i for i in range(25)]
        assert seen[-1] == 100.0
    finally:
        cluster.max_in_flight = None


def test_dask_progress_from_completed_futures(cluster):
    seen = []
    cluster.map_chunks(_double, list(range(10)), Progress(set_percent=seen.append), sizes=list(range(1, 11)))
    assert seen[-1] == 100.0 and seen == sorted(seen)


def test_mask_stats_on_a_local_cluster_equal_in_process(cluster, records):
    reference = compute_mask_stats(records, nodata_class=0, workers=2, chunk_size=50)
    progress = Progress()
    distributed = compute_mask_stats(records, nodata_class=0, chunk_size=50, executor=cluster, progress=progress)
    pd.testing.assert_frame_equal(distributed, reference)
    assert reference["border_nodata"].any() and reference["cls_1"].gt(0).any()  # the data exercise the flags


def test_composition_on_a_local_cluster_equals_in_process(cluster, records):
    reference = compute_composition(records, k_selection="fixed", k=4, workers=2)
    result = compute_composition(records, k_selection="fixed", k=4, executor=cluster)
    pd.testing.assert_frame_equal(result.table, reference.table)
    assert result.k == reference.k and result.excluded_counts == reference.excluded_counts


def test_a_worker_error_comes_back_as_the_engine_error(cluster, records):
    broken = records.copy()
    broken.loc[broken.index[5], "mask_path"] = "/nonexistent/mask.tif"
    with pytest.raises(BalancedSamplingError, match="/nonexistent/mask.tif"):
        compute_mask_stats(broken, executor=cluster, chunk_size=50)
    with pytest.raises(BalancedSamplingError, match="chunk 3 is bad"):
        cluster.map_chunks(_fail_on_three, list(range(6)))


def test_dask_cancel_cancels_the_futures_and_the_cluster_stays_usable(cluster, tmp_path):
    looks = []

    def cancel_after_first_look():
        looks.append(1)
        return len(looks) > 1

    with pytest.raises(OperationCanceled):
        cluster.map_chunks(_slow, [(str(tmp_path), i) for i in range(40)],
                           Progress(is_canceled=cancel_after_first_look))
    assert len(os.listdir(tmp_path)) < 40  # the cancelled futures never ran
    assert cluster.map_chunks(_double, [1, 2]) == [2, 4]


def test_config_compute_section(tmp_path):
    records_csv = tmp_path / "records.csv"
    pd.DataFrame({"image_path": ["a.tif"], "mask_path": ["m.tif"], "row_off": [0], "col_off": [0],
                  "patch_size": [64]}).to_csv(records_csv, index=False)
    base = {"input": {"patch_records": str(records_csv)}, "output": {"csv_path": str(tmp_path / "out.csv")}}
    config = load_config({"balanced_dataset": {**base, "compute": {"scheduler": "local", "n_workers": 2,
                                                                    "memory_limit": "1GiB"}}})
    executor = config.compute.executor()
    assert isinstance(executor, DaskExecutor) and executor.n_workers == 2 and executor.memory_limit == "1GiB"
    assert isinstance(load_config({"balanced_dataset": base}).compute.executor(2), InProcessExecutor)
    with pytest.raises(BalancedSamplingError, match=r"balanced_dataset\.compute\.scheduler"):
        load_config({"balanced_dataset": {**base, "compute": {"scheduler": "local:zero"}}})
    with pytest.raises(BalancedSamplingError, match=r"balanced_dataset\.compute\.n_worker"):
        load_config({"balanced_dataset": {**base, "compute": {"n_worker": 2}}})


def test_a_killed_worker_is_retried_and_the_result_is_complete(cluster, tmp_path):
    """Dask reschedules the tasks of a worker that died (its nanny restarts it): every chunk comes back once."""
    chunks = [(str(tmp_path), i) for i in range(8)]
    results = cluster.map_chunks(_die_once, chunks)
    assert os.path.exists(tmp_path / "died")  # a worker really died
    assert [value for value, _ in results] == list(range(8))
    died = int((tmp_path / "died").read_text())
    assert results[0][1] != died  # chunk 0 finished on a live worker
    cluster.client.wait_for_workers(2, timeout=60)


def test_a_task_that_kills_every_worker_it_runs_on_is_a_clear_error(cluster):
    with pytest.raises(BalancedSamplingError, match="A Dask worker died while running") as info:
        cluster.map_chunks(_die_always, [0, 1, 2])
    assert "more memory" in str(info.value)
    cluster.client.wait_for_workers(2, timeout=60)
    assert cluster.map_chunks(_double, [3]) == [6]  # the cluster is whole again


def test_in_process_executor_is_the_default_seam(records):
    """compute_mask_stats without an executor and with an explicit in-process one agree."""
    pd.testing.assert_frame_equal(compute_mask_stats(records, chunk_size=40, executor=InProcessExecutor(2)),
                                  compute_mask_stats(records, chunk_size=40))


def test_the_yaml_compute_section_reaches_the_composition_stage(synthetic_dataset, tmp_path, monkeypatch):
    """compute.scheduler local:2: the pipeline hands a Dask executor to the composition stage, closes it after the
    run, and writes the same table as the in-process run."""
    from balanced_sampling_plugin import pipeline
    from balanced_sampling_plugin.pipeline import run_config
    from tests.shipped_examples import example_patch_records, write_config

    seen, real = [], pipeline.compute_composition

    def spy(*args, **kwargs):
        seen.append(kwargs.get("executor"))
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "compute_composition", spy)
    body = {"mode": "masks_only", "sampling_method": "composition_only",
            "input": {"patch_records": example_patch_records(synthetic_dataset, 64)},
            "clustering": {"k_selection": "fixed", "k": 4}, "output": {"csv_path": str(tmp_path / "threads.csv")}}
    reference = run_config(write_config(synthetic_dataset.folder, body))
    body["output"]["csv_path"] = str(tmp_path / "dask.csv")
    body["compute"] = {"scheduler": "local:2", "memory_limit": "1GiB"}
    result = run_config(write_config(synthetic_dataset.folder, body))
    assert seen[0] is None  # no compute section: the threads, as before
    assert isinstance(seen[1], DaskExecutor) and seen[1].n_workers == 2 and seen[1].memory_limit == "1GiB"
    assert seen[1]._client is None and seen[1]._cluster is None  # closed after the stage
    pd.testing.assert_frame_equal(result.table, reference.table)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "dask.csv"), pd.read_csv(tmp_path / "threads.csv"))


def test_compute_keys_that_do_not_fit_are_refused_when_the_config_loads(tmp_path):
    from balanced_sampling_plugin.config import load_config

    (tmp_path / "records.csv").write_text("image_path,mask_path,row_off,col_off,patch_size\na.tif,m.tif,0,0,64\n")
    base = {"mode": "masks_only", "sampling_method": "composition_only",
            "input": {"patch_records": str(tmp_path / "records.csv")}, "output": {"csv_path": str(tmp_path / "o.csv")}}
    with pytest.raises(BalancedSamplingError, match=r"balanced_dataset\.compute\.memory_limit is 'lots'; expected a "
                                                    r"memory size such as 4GiB"):
        load_config({"balanced_dataset": {**base, "compute": {"scheduler": "local:2", "memory_limit": "lots"}}})
    with pytest.raises(BalancedSamplingError, match=r"balanced_dataset\.compute: n_workers, memory_limit shape only a "
                                                    r"local cluster .* tcp://10\.0\.0\.1:8786"):
        load_config({"balanced_dataset": {**base, "compute": {"scheduler": "tcp://10.0.0.1:8786", "n_workers": 3,
                                                               "memory_limit": "1GiB"}}})
    config = load_config({"balanced_dataset": {**base, "compute": {"scheduler": "local:2", "memory_limit": "1.5GiB"}}})
    assert config.compute.memory_limit == "1.5GiB"


def test_a_refused_connection_is_said_at_once():
    import socket
    import time

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(BalancedSamplingError, match=rf"Cannot reach the Dask scheduler at tcp://127\.0\.0\.1:{port}: "
                                                    r"Connection refused"):
        DaskExecutor(address=f"tcp://127.0.0.1:{port}").client
    assert time.monotonic() - started < 5  # not Dask's 20 s connect timeout


@pytest.mark.parametrize("where", ["in-process", "dask"])
def test_on_result_gets_every_result_once_and_map_chunks_keeps_none(where, cluster):
    """A caller that takes the results as they arrive (on_result) gets each once, with its chunk's index, and the
    executor keeps none of them (at 10 M patches they would be every embedding again)."""
    executor = InProcessExecutor(2) if where == "in-process" else cluster
    seen = {}
    returned = executor.map_chunks(_double, list(range(10)), on_result=lambda i, result: seen.setdefault(i, result))
    assert seen == {i: 2 * i for i in range(10)}
    assert returned == [None] * 10
