"""Issue 16 levers of the embedding step: precisions (int8, auto), CPU threads under contention, and the
GPU path (batch found by trying, pinned memory) — the parts that run without a GPU are tested here on the
CPU; the CUDA tests skip where PyTorch sees no GPU."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest

import balanced_sampling_plugin.embeddings as embeddings
from balanced_sampling_plugin.contract import PRECISIONS
from balanced_sampling_plugin.embeddings import (
    CpuThreads,
    busy_elsewhere,
    cache_identity,
    cpu_threads,
    extract_embeddings,
    find_batch_size,
    is_out_of_memory,
    model_fingerprint,
    resolve_precision,
    usable_cores,
)
from balanced_sampling_plugin.errors import BalancedSamplingError
from balanced_sampling_plugin.progress import Progress
from balanced_sampling_plugin.records import normalize_path
from tests.engine.test_embeddings import grid_records
from tests.rasters import write_geotiff
from tests.tiny_dinov2 import build_tiny_dinov2

os.environ["HF_HUB_OFFLINE"] = "1"
torch = pytest.importorskip("torch")
NO_GPU = "no CUDA GPU is visible to PyTorch on this machine; the GPU path is proved by bench/gpu_check.sh"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return build_tiny_dinov2(tmp_path_factory.mktemp("tiny-dinov2"))


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    rng = np.random.default_rng(4)
    pixels = rng.integers(0, 255, size=(3, 128, 128), dtype=np.uint8)
    path = str(tmp_path_factory.mktemp("img") / "image.tif")
    write_geotiff(path, pixels)
    return path


class FakeOOM(RuntimeError):
    def __init__(self):
        super().__init__("CUDA out of memory. Tried to allocate 2.00 GiB")


def limited(capacity, tried):
    def fits(n):
        tried.append(n)
        if n > capacity:
            raise FakeOOM()

    return fits


# --------------------------------------------------------------------------- batch found by trying
def test_batch_grows_by_doubling_while_it_fits():
    tried = []
    assert find_batch_size(limited(100, tried), start=16, maximum=512) == 64
    assert tried == [16, 32, 64, 128]


def test_batch_halves_until_one_fits_when_the_start_does_not():
    tried, cleared = [], []
    assert find_batch_size(limited(20, tried), start=128, on_oom=lambda: cleared.append(1)) == 16
    assert tried == [128, 64, 32, 16]
    assert len(cleared) == 3, "the GPU cache is emptied after each failure"


def test_batch_stops_at_the_maximum():
    tried = []
    assert find_batch_size(limited(10_000, tried), start=32, maximum=100) == 100
    assert tried == [32, 64, 100]


def test_other_errors_and_a_single_patch_that_does_not_fit_propagate():
    def broken(n):
        raise ValueError("shape mismatch")

    with pytest.raises(ValueError):
        find_batch_size(broken, start=8)
    with pytest.raises(FakeOOM):
        find_batch_size(limited(0, []), start=4)


def test_out_of_memory_is_told_from_other_errors():
    assert is_out_of_memory(FakeOOM())
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert not is_out_of_memory(RuntimeError("expected 3 channels"))
    assert not is_out_of_memory(MemoryError())


def test_gpu_batch_probe_uses_the_model_at_the_real_input_shape(model, monkeypatch):
    """gpu_batch_size on the CPU (device 'cpu') with an OOM faked above 8 patches: the probe runs the real
    forward pass at the input shape and settles on 8."""
    from transformers import AutoModel

    real = embeddings.cls_embeddings
    shapes = []

    def capped(model_, batch, device, precision="fp32"):
        shapes.append(tuple(batch.shape))
        if len(batch) > 8:
            raise FakeOOM()
        return real(model_, batch, device, precision)

    monkeypatch.setattr(embeddings, "cls_embeddings", capped)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    net = AutoModel.from_pretrained(model).eval()
    infos = []
    size = embeddings.gpu_batch_size(net, (3, 56, 56), "cpu", "fp32", 2, Progress(info=infos.append))
    assert size == 8
    assert shapes == [(2, 3, 56, 56), (4, 3, 56, 56), (8, 3, 56, 56), (16, 3, 56, 56)]
    assert any("8" in message for message in infos)


# --------------------------------------------------------------------------- precisions
def test_precisions_are_appended_after_the_old_ones():
    assert PRECISIONS[:2] == ("fp32", "bf16")
    assert {"int8", "fp16", "auto"} <= set(PRECISIONS)


def test_auto_is_bf16_only_where_the_cpu_has_native_bfloat16(monkeypatch):
    monkeypatch.setattr(embeddings, "cpu_has_bf16", lambda: True)
    assert resolve_precision("auto", "cpu") == "bf16"
    monkeypatch.setattr(embeddings, "cpu_has_bf16", lambda: False)
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("int8", "cpu") == "int8"
    assert resolve_precision("fp32", "cuda") == "fp32"
    with pytest.raises(BalancedSamplingError, match="int8.*CPU only"):
        resolve_precision("int8", "cuda")


def test_cpu_bf16_flag_comes_from_cpuinfo():
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        pytest.skip("no /proc/cpuinfo on this system")
    assert embeddings.cpu_has_bf16() == ("avx512_bf16" in flags or "amx_bf16" in flags)


def test_int8_is_cached_apart_and_close_to_fp32(model, image, tmp_path):
    cache = str(tmp_path / "embeddings.parquet")
    records = grid_records(image, 4, 4)
    fp32 = extract_embeddings(records, dino_model=model, parquet_path=cache, precision="fp32")
    int8 = extract_embeddings(records, dino_model=model, parquet_path=cache, precision="int8")
    assert int8.computed == 16, "int8 embeddings never reuse fp32 rows"
    assert not np.array_equal(int8.embeddings, fp32.embeddings), "the quantised model really ran"
    a, b = fp32.embeddings, int8.embeddings
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.mean() > 0.99
    again = extract_embeddings(records, dino_model=model, parquet_path=cache, precision="int8")
    assert (again.computed, again.reused) == (0, 16)
    np.testing.assert_array_equal(again.embeddings, int8.embeddings)


def test_quantised_copy_leaves_the_model_as_it_was(model):
    from transformers import AutoModel

    net = AutoModel.from_pretrained(model).eval()
    quantised = embeddings.quantized_int8(net)
    assert any(isinstance(m, torch.nn.Linear) for m in net.modules())
    assert not any(type(m) is torch.nn.Linear for m in quantised.modules())


def test_auto_shares_the_cache_with_the_precision_it_resolves_to(model, image, tmp_path, monkeypatch):
    cache = str(tmp_path / "embeddings.parquet")
    records = grid_records(image, 2, 2)
    monkeypatch.setattr(embeddings, "cpu_has_bf16", lambda: False)
    infos = []
    auto = extract_embeddings(records, dino_model=model, parquet_path=cache, progress=Progress(info=infos.append))
    assert auto.computed == 4
    assert any("Precision auto: computing in fp32" in message for message in infos)
    fp32 = extract_embeddings(records, dino_model=model, parquet_path=cache, precision="fp32")
    assert (fp32.computed, fp32.reused) == (0, 4)
    name = normalize_path(model)
    assert cache_identity(name, model_fingerprint(name, True), (1, 2, 3), (2, 98), precision="int8").endswith("|int8")


# --------------------------------------------------------------------------- CPU threads under contention
def test_thread_counts(monkeypatch):
    monkeypatch.setattr(embeddings, "usable_cores", lambda: 4)
    for busy, expected in ((0.0, 4), (1.0, 3), (2.6, 1), (3.4, 1), (4.0, 4), (9.0, 4)):
        monkeypatch.setattr(embeddings, "busy_elsewhere", lambda b=busy: b)
        assert cpu_threads("auto") == expected
    assert cpu_threads("all") == 4
    assert cpu_threads(3) == 3
    with pytest.raises(BalancedSamplingError, match="at least 1"):
        cpu_threads(0)


def test_a_bad_thread_count_fails_before_the_model_loads(image):
    with pytest.raises(BalancedSamplingError, match="threads"):
        extract_embeddings(grid_records(image, 1, 1), dino_model="/no/such/model", threads=0)


def test_usable_cores_follows_the_affinity():
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity on this system")
    assert usable_cores() == len(os.sched_getaffinity(0))


def test_a_busy_process_is_counted_and_this_one_is_not():
    if not os.path.exists("/proc/loadavg"):
        pytest.skip("no /proc on this system")
    assert embeddings._own_running_threads() >= 1, "the calling thread is running"
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)  # the interpreter has started and spins
        assert busy_elsewhere(samples=7) >= 1
    finally:
        hog.kill()
        hog.wait()


def test_thread_count_is_set_rechecked_and_given_back(monkeypatch):
    before = torch.get_num_threads()
    now = [0.0]
    busy = [0.0]
    monkeypatch.setattr(embeddings, "usable_cores", lambda: 2)
    monkeypatch.setattr(embeddings, "busy_elsewhere", lambda: busy[0])
    infos = []
    with CpuThreads("auto", Progress(info=infos.append), clock=lambda: now[0]) as cpu:
        assert torch.get_num_threads() == cpu.current == 2
        busy[0] = 1.0
        cpu.recheck()
        assert torch.get_num_threads() == 2, "not re-checked before THREADS_RECHECK_SECONDS"
        now[0] += embeddings.THREADS_RECHECK_SECONDS
        cpu.recheck()
        assert torch.get_num_threads() == cpu.current == 1
        busy[0] = 2.0  # no core free: every core again
        now[0] += embeddings.THREADS_RECHECK_SECONDS
        cpu.recheck()
        assert torch.get_num_threads() == cpu.current == 2
    assert torch.get_num_threads() == before
    assert any("2 CPU threads" in message for message in infos)


def test_openmp_wait_policy_is_passive_unless_chosen_or_torch_came_first(monkeypatch):
    code = ("import os, sys; sys.path.insert(0, {root!r}); import balanced_sampling_plugin.embeddings; "
            "print(os.environ.get('OMP_WAIT_POLICY'))")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    def policy(env_change, before=""):
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "BALANCED_SAMPLING_OMP_WAIT")}
        env.update(env_change)
        out = subprocess.run([sys.executable, "-c", before + code.format(root=root)], env=env, capture_output=True,
                             text=True, check=True)
        return out.stdout.strip()

    assert policy({}) == "PASSIVE"
    assert policy({"OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"
    assert policy({"BALANCED_SAMPLING_OMP_WAIT": "keep"}) == "None"
    assert policy({}, before="import torch; ") == "None"


# --------------------------------------------------------------------------- GPU (skipped without one)
@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16", "auto"])
def test_gpu_embeddings_agree_with_the_cpu(model, image, precision):
    records = grid_records(image, 4, 4)
    cpu = extract_embeddings(records, dino_model=model, precision="fp32")
    gpu = extract_embeddings(records, dino_model=model, use_gpu=True, precision=precision, batch_size=4)
    assert gpu.device == "cuda"
    a, b = cpu.embeddings, gpu.embeddings
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() > 0.99


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)
def test_gpu_batches_are_pinned(image):
    batches = embeddings._batches(list(range(5)), lambda i: torch.full((3, 4, 4), float(i)), 2, 1, pin=True)
    shapes = []
    for batch in batches:
        assert batch.is_pinned()
        shapes.append(len(batch))
    assert shapes == [2, 2, 1]


# --------------------------------------------------------------------------- window readers that keep up
def _general_read(reader, window):
    values, valid = reader.read_raw(*window)
    image = values.astype(np.float32)
    image[:, ~valid] = 0.0
    return image


def test_plain_uint8_windows_take_the_fast_path_with_the_same_pixels(image, tmp_path):
    from balanced_sampling_plugin.patch_images import PatchReader

    with PatchReader(bands=(3, 1, 1)) as reader:
        inside = (image, 16, 40, 64)
        assert reader._read_plain_uint8(*inside) is not None
        np.testing.assert_array_equal(reader.read(*inside), _general_read(reader, inside))
        for edge in ((image, 100, 0, 64), (image, -8, 0, 32)):  # partly outside: the general path pads
            assert reader._read_plain_uint8(*edge) is None
    nodata = str(tmp_path / "nodata.tif")
    pixels = np.full((3, 64, 64), 7, np.uint8)
    pixels[:, :8] = 0
    write_geotiff(nodata, pixels, nodata=0)
    with PatchReader() as reader:
        window = (nodata, 0, 0, 32)
        assert reader._read_plain_uint8(*window) is None, "nodata needs the masked read"
        assert (reader.read(*window)[:, :8] == 0).all() and (reader.read(*window)[:, 8:] == 7).all()


@pytest.mark.parametrize("size", [56, 70, 40])
def test_preprocessing_matches_the_torch_pipeline_with_or_without_a_resize(size):
    from balanced_sampling_plugin.embeddings import InputSpec

    spec = InputSpec(resize={"shortest_edge": 56}, crop=(48, 48), scale=1 / 255, mean=(0.4, 0.5, 0.6),
                     std=(0.2, 0.25, 0.3))
    pixels = np.random.default_rng(size).uniform(0, 255, (3, size, size)).astype(np.float32)
    tensor = torch.from_numpy(pixels)[None]
    expected = torch.nn.functional.interpolate(tensor, size=(56, 56), mode="bicubic", antialias=True)
    expected = expected.clamp(0, 255)[..., 4:52, 4:52]
    expected = ((expected / 255 - torch.tensor(spec.mean).view(1, 3, 1, 1)) / torch.tensor(spec.std).view(1, 3, 1, 1))
    got = spec(pixels)
    assert got.dtype == torch.float32 and tuple(got.shape) == (3, 48, 48)
    np.testing.assert_allclose(got.numpy(), expected[0].numpy(), atol=1e-5)


def test_a_cpu_quota_caps_the_usable_cores(tmp_path, monkeypatch):
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity on this system")
    affinity = len(os.sched_getaffinity(0))
    v2 = tmp_path / "cpu.max"
    monkeypatch.setattr(embeddings, "CGROUP_CPU_FILES", (str(v2), str(tmp_path / "q"), str(tmp_path / "p")))
    v2.write_text("max 100000\n")
    assert usable_cores() == affinity
    v2.write_text("50000 100000\n")  # half a core: still one thread
    assert usable_cores() == 1
    v2.unlink()
    (tmp_path / "q").write_text("150000\n")
    (tmp_path / "p").write_text("100000\n")
    assert usable_cores() == min(affinity, 2)
    (tmp_path / "q").write_text("-1\n")
    assert usable_cores() == affinity


def test_an_out_of_memory_during_the_run_halves_the_batch_and_loses_nothing(model, image, monkeypatch):
    """The GPU loop (device 'cuda', no pinning: run on the CPU here) meets an OOM for parts above 3 patches,
    e.g. another process took memory after the probe: it halves, retries the same patches, and warns."""
    from transformers import AutoImageProcessor, AutoModel

    from balanced_sampling_plugin.patch_images import PatchReader

    real = embeddings.cls_embeddings
    sizes = []

    def tight(model_, batch, device, precision="fp32"):
        sizes.append(len(batch))
        if len(batch) > 3:
            raise FakeOOM()
        return real(model_, batch, "cpu", precision)

    monkeypatch.setattr(embeddings, "cls_embeddings", tight)
    monkeypatch.setattr(embeddings, "_empty_gpu_cache", lambda: None)
    real_batches = embeddings._batches
    monkeypatch.setattr(embeddings, "_batches", lambda w, load, b, n, pin=False: real_batches(w, load, b, n))
    net = AutoModel.from_pretrained(model).eval()
    spec = embeddings.InputSpec.from_processor(AutoImageProcessor.from_pretrained(model))
    windows = [tuple(r) for r in grid_records(image, 2, 3).itertuples(index=False)]
    warnings = []
    with PatchReader() as reader:
        out = embeddings._embed_on(net, spec, "cuda", reader, windows, 32, 6, 0, Progress(warning=warnings.append),
                                   None, None, "m", "fp32", None)
        expected = np.stack([real(net, spec(reader.read(*w))[None], "cpu", "fp32")[0] for w in windows])
    assert sizes[:3] == [6, 3, 3]
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert len(warnings) == 1 and "3 patches" in warnings[0]
