"""DINOv2 embedding extraction, imagery handling and the parquet cache, with a tiny offline model."""

import os
import re
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from balanced_sampling_plugin.embedding_cache import EmbeddingCache
from balanced_sampling_plugin.embeddings import (
    InputSpec,
    cache_identity,
    extract_embeddings,
    model_fingerprint,
    resolve_model_name,
    resolve_precision,
)
from balanced_sampling_plugin.errors import BalancedSamplingError, OperationCanceled
from balanced_sampling_plugin.patch_images import PatchReader, estimate_stretch
from balanced_sampling_plugin.progress import Progress
from balanced_sampling_plugin.records import UNIQUENESS_SCORE, normalize_path, patch_id
from balanced_sampling_plugin.uniqueness_stage import compute_uniqueness
from tests.rasters import write_geotiff
from tests.tiny_dinov2 import build_tiny_dinov2

os.environ["HF_HUB_OFFLINE"] = "1"
PATCH = 32


def identity_of(model, bands=(1, 2, 3), stretch=(2, 98), precision="auto"):
    """The cache key of a CPU run; ``auto`` (the default) is stored under the precision it resolves to."""
    name = normalize_path(model)
    return cache_identity(name, model_fingerprint(name, True), bands, stretch,
                          precision=resolve_precision(precision, "cpu"))


def grid_records(path, rows, cols, size=PATCH):
    return pd.DataFrame(
        [{"image_path": path, "row_off": r * size, "col_off": c * size, "patch_size": size}
         for r in range(rows) for c in range(cols)]
    )


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return build_tiny_dinov2(tmp_path_factory.mktemp("tiny-dinov2"))


@pytest.fixture(scope="module")
def other_model(tmp_path_factory):
    return build_tiny_dinov2(tmp_path_factory.mktemp("tiny-dinov2-other"), seed=1)


@pytest.fixture(scope="module")
def flat_image(tmp_path_factory):
    """128 x 128 RGB uint8: 16 patches of almost the same flat green; patch (1, 2) is high-frequency noise."""
    rng = np.random.default_rng(0)
    pixels = np.empty((3, 128, 128), dtype=np.uint8)
    pixels[:] = np.array([60, 120, 50], dtype=np.uint8)[:, None, None]
    pixels += rng.integers(0, 3, size=pixels.shape, dtype=np.uint8)
    pixels[:, 32:64, 64:96] = rng.integers(0, 256, size=(3, 32, 32), dtype=np.uint8)
    return write_geotiff(tmp_path_factory.mktemp("img") / "flat.tif", pixels)


@pytest.fixture(scope="module")
def second_image(tmp_path_factory):
    rng = np.random.default_rng(1)
    pixels = rng.integers(80, 160, size=(3, 64, 64), dtype=np.uint8)
    return write_geotiff(tmp_path_factory.mktemp("img2") / "second.tif", pixels)


def test_distinct_patch_is_the_most_unique(model, flat_image):
    records = grid_records(flat_image, 4, 4)
    result = compute_uniqueness(records, dino_model=model, k_neighbors=3, backend="faiss", batch_size=5)
    scores = result.table[UNIQUENESS_SCORE]
    assert list(result.table.index) == list(records.index)
    assert scores.idxmax() == 6  # row 1, column 2
    assert scores[6] > 2 * scores.drop(6).max()
    assert (result.computed, result.reused, result.device, result.k_neighbors) == (16, 0, "cpu", 3)


def test_embeddings_do_not_depend_on_workers_or_batches(model, flat_image):
    records = grid_records(flat_image, 4, 4)
    a = extract_embeddings(records, dino_model=model, batch_size=16, num_workers=0).embeddings
    b = extract_embeddings(records, dino_model=model, batch_size=3, num_workers=2).embeddings
    assert a.shape == (16, 32) and a.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_cache_reuse_add_and_model_change(model, other_model, flat_image, second_image, tmp_path):
    cache = str(tmp_path / "cache" / "embeddings.parquet")
    records = grid_records(flat_image, 4, 4)
    first = extract_embeddings(records, dino_model=model, parquet_path=cache)
    assert (first.computed, first.reused) == (16, 0)

    again = extract_embeddings(records, dino_model=model, parquet_path=cache)
    assert (again.computed, again.reused, again.device) == (0, 16, None)
    np.testing.assert_array_equal(again.embeddings, first.embeddings)

    more = pd.concat([records, grid_records(second_image, 2, 2)], ignore_index=True)
    grown = extract_embeddings(more, dino_model=model, parquet_path=cache)
    assert (grown.computed, grown.reused) == (4, 16)
    np.testing.assert_array_equal(grown.embeddings[:16], first.embeddings)

    other = extract_embeddings(records, dino_model=other_model, parquet_path=cache)
    assert (other.computed, other.reused) == (16, 0)
    assert not np.allclose(other.embeddings, first.embeddings, atol=1e-3)

    # Both models live in the file, never mixed; a subset run keeps the other rows.
    stored = pq.read_table(cache).to_pandas()
    assert stored.groupby("model").size().to_dict() == {identity_of(model): 20, identity_of(other_model): 16}
    subset = extract_embeddings(records.iloc[:5], dino_model=model, parquet_path=cache)
    assert (subset.computed, subset.reused) == (0, 5)
    np.testing.assert_array_equal(subset.embeddings, first.embeddings[:5])
    assert len(pq.read_table(cache)) == 36
    assert {name for name in os.listdir(tmp_path / "cache")} == {"embeddings.parquet"}, "no temp file left"


def test_changing_bands_or_stretch_never_reuses_embeddings(model, flat_image, tmp_path):
    cache = str(tmp_path / "embeddings.parquet")
    records = grid_records(flat_image, 2, 2)
    assert extract_embeddings(records, dino_model=model, parquet_path=cache).computed == 4
    assert extract_embeddings(records, dino_model=model, parquet_path=cache, bands=(3, 2, 1)).computed == 4
    assert extract_embeddings(records, dino_model=model, parquet_path=cache, stretch=(1, 99)).computed == 4
    assert extract_embeddings(records, dino_model=model, parquet_path=cache, bands=(3, 2, 1)).reused == 4


def test_bf16_precision_is_cached_apart_and_close_to_fp32(model, flat_image, tmp_path):
    cache = str(tmp_path / "embeddings.parquet")
    records = grid_records(flat_image, 4, 4)
    fp32 = extract_embeddings(records, dino_model=model, parquet_path=cache, precision="fp32")
    bf16 = extract_embeddings(records, dino_model=model, parquet_path=cache, precision="bf16")
    assert bf16.computed == 16, "bf16 embeddings never reuse fp32 rows"
    # Same directions up to bf16 rounding (ranking agreement is measured at scale in bench/bench_stages.py).
    a, b = fp32.embeddings, bf16.embeddings
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() > 0.99
    with pytest.raises(BalancedSamplingError, match="precision"):
        extract_embeddings(records, dino_model=model, precision="int4")


def test_duplicate_rows_share_one_embedding(model, flat_image):
    records = grid_records(flat_image, 1, 3)
    records = pd.concat([records, records.iloc[[1]]], ignore_index=True)
    result = extract_embeddings(records, dino_model=model)
    assert result.computed == 3
    np.testing.assert_array_equal(result.embeddings[3], result.embeddings[1])


def test_corrupt_cache_is_recomputed_with_a_warning(model, flat_image, tmp_path):
    cache = tmp_path / "embeddings.parquet"
    records = grid_records(flat_image, 2, 2)
    reference = extract_embeddings(records, dino_model=model, parquet_path=cache).embeddings
    data = cache.read_bytes()
    cache.write_bytes(data[: len(data) // 2])  # a truncated parquet: still starts with PAR1
    progress = Progress()
    result = extract_embeddings(records, dino_model=model, parquet_path=cache, progress=progress)
    assert result.computed == 4
    assert any("cannot be read" in w for w in progress.warnings)
    np.testing.assert_allclose(result.embeddings, reference, atol=1e-6)
    assert len(pq.read_table(cache)) == 4


def test_wrong_size_rows_are_stale(model, flat_image, tmp_path):
    cache = tmp_path / "embeddings.parquet"
    records = grid_records(flat_image, 1, 2)
    keys = [patch_id(flat_image, 0, c, PATCH) for c in (0, PATCH)]
    identity = identity_of(model)
    EmbeddingCache(cache).save(np.array(keys), identity, np.ones((2, 7), dtype=np.float32))
    result = extract_embeddings(records, dino_model=model, parquet_path=cache)
    assert result.computed == 2 and result.embeddings.shape == (2, 32)


def test_foreign_parquet_is_not_overwritten(model, flat_image, tmp_path):
    cache = tmp_path / "other.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), cache)
    with pytest.raises(BalancedSamplingError, match="not an embedding cache"):
        extract_embeddings(grid_records(flat_image, 1, 1), dino_model=model, parquet_path=cache)
    assert pq.read_table(cache).column_names == ["a"]


def test_cancel_keeps_computed_rows_and_a_readable_cache(model, flat_image, tmp_path, monkeypatch):
    import balanced_sampling_plugin.embeddings as embeddings

    cache = tmp_path / "embeddings.parquet"
    records = grid_records(flat_image, 4, 4)
    checks, started = [], []
    real_load = embeddings.load_model
    monkeypatch.setattr(embeddings, "load_model", lambda *a, **kw: started.append(1) or real_load(*a, **kw))
    # The second cancel check once the model runs (the images' first opening checks too).
    progress = Progress(is_canceled=lambda: bool(started) and (checks.append(1) or len(checks) >= 2))
    with pytest.raises(OperationCanceled, match="8 embeddings computed so far"):
        extract_embeddings(records, dino_model=model, batch_size=4, parquet_path=cache, progress=progress)
    assert len(pq.read_table(cache)) == 8
    resumed = extract_embeddings(records, dino_model=model, batch_size=4, parquet_path=cache)
    assert (resumed.computed, resumed.reused) == (8, 8)


def test_cancel_while_the_images_are_first_opened_stops_before_the_model_loads(model, flat_image, tmp_path,
                                                                               monkeypatch):
    """Checking windows opens every image (minutes for thousands): a cancel there is seen at the next image."""
    import balanced_sampling_plugin.embeddings as embeddings

    images = []
    for i in range(12):
        images.append(tmp_path / f"img_{i:02d}.tif")
        shutil.copy(flat_image, images[-1])
    records = pd.concat([grid_records(str(path), 1, 1) for path in images], ignore_index=True)
    opened = []
    real_dataset = PatchReader.dataset
    monkeypatch.setattr(PatchReader, "dataset", lambda self, path: opened.append(path) or real_dataset(self, path))
    monkeypatch.setattr(embeddings, "load_model", lambda *a, **kw: pytest.fail("the model loaded after a cancel"))
    progress = Progress(is_canceled=lambda: len(set(opened)) >= 3)
    with pytest.raises(OperationCanceled):
        extract_embeddings(records, dino_model=model, batch_size=4, progress=progress)
    assert len(set(opened)) == 3  # not all 12


def test_long_runs_checkpoint_the_cache(model, flat_image, tmp_path, monkeypatch):
    # A crash (not a cancel) skips the except-clause save: checkpoints are what survives it.
    import balanced_sampling_plugin.embeddings as embeddings
    from balanced_sampling_plugin.embedding_cache import EmbeddingCache

    monkeypatch.setattr(embeddings, "CHECKPOINT_SECONDS", 0)
    saved_sizes = []
    real_save = EmbeddingCache.save
    monkeypatch.setattr(EmbeddingCache, "save",
                        lambda self, keys, *a: saved_sizes.append(len(keys)) or real_save(self, keys, *a))
    cache = tmp_path / "embeddings.parquet"
    result = extract_embeddings(grid_records(flat_image, 4, 4), dino_model=model, batch_size=4, parquet_path=cache)
    # Checkpoints after batches 1-3 (not after the last), then the final save of all 16.
    assert saved_sizes == [4, 8, 12, 16] and result.computed == 16
    assert len(pq.read_table(cache)) == 16


def test_a_failed_checkpoint_warns_and_the_run_goes_on(model, flat_image, tmp_path, monkeypatch):
    import balanced_sampling_plugin.embeddings as embeddings
    from balanced_sampling_plugin.embedding_cache import EmbeddingCache

    monkeypatch.setattr(embeddings, "CHECKPOINT_SECONDS", 0)
    real_save = EmbeddingCache.save

    def save(self, keys, *args):
        if len(keys) < 16:  # every checkpoint fails (disk full), the final save works
            raise OSError(28, "No space left on device")
        return real_save(self, keys, *args)

    monkeypatch.setattr(EmbeddingCache, "save", save)
    warnings = []
    cache = tmp_path / "embeddings.parquet"
    result = extract_embeddings(grid_records(flat_image, 4, 4), dino_model=model, batch_size=4, parquet_path=cache,
                                progress=Progress(warning=warnings.append, info=lambda m: None))
    assert result.computed == 16 and len(pq.read_table(cache)) == 16
    assert len(warnings) == 3 and all("Could not checkpoint" in w and "No space left" in w for w in warnings)


def test_single_band_and_uint16_four_band_images(model, tmp_path):
    rng = np.random.default_rng(3)
    gray = write_geotiff(tmp_path / "gray.tif", rng.integers(0, 256, size=(1, 64, 64), dtype=np.uint8))
    multi = rng.integers(200, 4000, size=(4, 64, 64)).astype(np.uint16)
    multi[:, :, :8] = 0  # a nodata border
    multi_path = write_geotiff(tmp_path / "multi.tif", multi, nodata=0)
    records = pd.concat([grid_records(gray, 2, 2), grid_records(multi_path, 2, 2)], ignore_index=True)
    progress = Progress(info=lambda message: None)
    result = compute_uniqueness(records, dino_model=model, k_neighbors=3, bands=(4, 2, 1), progress=progress)
    assert np.isfinite(result.table[UNIQUENESS_SCORE]).all() and len(result.table) == 8


def test_one_dataset_wide_stretch_keeps_brightness_differences(tmp_path):
    pixels = np.full((3, 64, 32), 1000, dtype=np.uint16)
    pixels[:, 32:] = 3000  # a dark patch above a bright one
    pixels[:, :4, :4] = 0  # nodata corner
    path = write_geotiff(tmp_path / "u16.tif", pixels, nodata=0)
    windows = [(path, 0, 0, PATCH), (path, PATCH, 0, PATCH)]
    with PatchReader() as reader:
        reader.stretch = estimate_stretch(reader, windows, (2, 98))
        dark, bright = reader.read(*windows[0]), reader.read(*windows[1])
        outside = reader.read(path, 48, 16, PATCH)  # half the window lies outside the image
    np.testing.assert_allclose(reader.stretch.low, 1000)
    np.testing.assert_allclose(reader.stretch.high, 3000)
    assert dark[:, 10, 10].tolist() == [0.0] * 3 and bright[:, 10, 10].tolist() == [255.0] * 3
    assert (dark[:, :4, :4] == 0).all()
    assert outside.shape == (3, PATCH, PATCH) and (outside[:, 16:, :] == 0).all() and (outside[:, :16, :16] == 255).all()


def test_uint8_only_needs_no_stretch_and_bad_bands_name_the_file(flat_image, tmp_path):
    with PatchReader() as reader:
        assert estimate_stretch(reader, [(flat_image, 0, 0, PATCH)]) is None
    with PatchReader(bands=(1, 2, 5)) as reader:
        with pytest.raises(BalancedSamplingError, match="flat.tif.*has 3 bands"):
            reader.read(flat_image, 0, 0, PATCH)
    with PatchReader() as reader, pytest.raises(BalancedSamplingError, match="lies outside image"):
        reader.read(flat_image, 500, 0, PATCH)


def test_input_spec_matches_the_image_processor(model):
    from transformers import AutoImageProcessor

    processor = AutoImageProcessor.from_pretrained(model, local_files_only=True)
    image = np.random.default_rng(4).integers(0, 256, size=(40, 48, 3), dtype=np.uint8)
    expected = processor(images=image, return_tensors="pt")["pixel_values"][0].numpy()
    ours = InputSpec.from_processor(processor)(image.transpose(2, 0, 1).astype(np.float32)).numpy()
    assert ours.shape == expected.shape == (3, 56, 56)
    assert np.abs(ours - expected).mean() < 0.05  # torch vs PIL bicubic, in normalised units


def test_model_names(model):
    assert resolve_model_name("dinov2-small") == ("facebook/dinov2-small", False)
    assert resolve_model_name("facebook/dinov2-base") == ("facebook/dinov2-base", False)
    assert resolve_model_name(model) == (normalize_path(model), True)


@pytest.mark.parametrize("name", ["/no/such/dinov2-folder", "facebook/dinov2-base"])
def test_unloadable_model_explains_how_to_use_a_folder(name, flat_image):
    with pytest.raises(BalancedSamplingError, match="save_pretrained") as caught:
        extract_embeddings(grid_records(flat_image, 1, 2), dino_model=name)
    assert "folder" in str(caught.value) and name in str(caught.value)


def test_a_model_folder_without_weights_is_a_clear_error(model, flat_image, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(model, broken)
    (broken / "model.safetensors").unlink()
    with pytest.raises(BalancedSamplingError, match="Cannot load the DINOv2 model"):
        extract_embeddings(grid_records(flat_image, 1, 2), dino_model=str(broken))


def test_tiny_tables(model, flat_image):
    progress = Progress()
    result = compute_uniqueness(grid_records(flat_image, 1, 3), dino_model=model, k_neighbors=5, progress=progress)
    assert result.k_neighbors == 2 and len(result.table) == 3
    assert any("lowered from 5 to 2" in w for w in progress.warnings)
    with pytest.raises(BalancedSamplingError, match="at least 2 patches"):
        compute_uniqueness(grid_records(flat_image, 1, 1), dino_model=model)


@pytest.mark.parametrize("content", [b"image,mask,row_off\na.tif,b.tif,0\n", b"SQLite format 3\x00" + b"\x00" * 200])
def test_a_file_that_is_not_parquet_is_never_overwritten(model, flat_image, tmp_path, content):
    cache = tmp_path / "train.csv"
    cache.write_bytes(content)
    with pytest.raises(BalancedSamplingError, match="is not a Parquet file.*left as it is"):
        extract_embeddings(grid_records(flat_image, 1, 2), dino_model=model, parquet_path=cache)
    assert cache.read_bytes() == content
    assert os.listdir(tmp_path) == ["train.csv"]


@pytest.fixture(scope="module")
def uint16_image(tmp_path_factory):
    """128 x 128 3-band uint16 ramp from ~1000 (left) to ~9000 (right), with texture: the stretch depends on
    which patches are listed."""
    rng = np.random.default_rng(3)
    ramp = np.linspace(1000, 9000, 128)[None, None, :] + rng.normal(0, 300, size=(3, 128, 128))
    return write_geotiff(tmp_path_factory.mktemp("img16") / "u16.tif", ramp.clip(0, 65535), dtype=np.uint16)


def test_a_new_stretch_never_reuses_embeddings_and_a_rerun_equals_a_fresh_run(model, uint16_image, tmp_path):
    cache = str(tmp_path / "embeddings.parquet")
    left = grid_records(uint16_image, 4, 2)  # columns 0..63: a darker stretch
    everything = grid_records(uint16_image, 4, 4)
    first = extract_embeddings(left, dino_model=model, parquet_path=cache)
    assert first.computed == 8
    messages = []
    grown = extract_embeddings(everything, dino_model=model, parquet_path=cache, progress=Progress(info=messages.append))
    assert (grown.computed, grown.reused) == (16, 0), "the stretch changed, so no embedding is reused"
    assert any(m.startswith("Cached embeddings of these patches were computed with other stretch values") for m in
               messages), messages
    fresh = extract_embeddings(everything, dino_model=model)
    np.testing.assert_array_equal(grown.embeddings, fresh.embeddings)
    messages.clear()
    again = extract_embeddings(everything, dino_model=model, parquet_path=cache, progress=Progress(info=messages.append))
    assert (again.computed, again.reused) == (0, 16)
    np.testing.assert_array_equal(again.embeddings, fresh.embeddings)
    assert not any("other stretch values" in m for m in messages)


def test_weights_replaced_in_the_same_folder_are_not_served_from_the_cache(other_model, flat_image, tmp_path):
    folder = str(tmp_path / "model")
    build_tiny_dinov2(folder, seed=5)
    cache = str(tmp_path / "embeddings.parquet")
    records = grid_records(flat_image, 2, 2)
    old = extract_embeddings(records, dino_model=folder, parquet_path=cache)
    shutil.copy(os.path.join(other_model, "model.safetensors"), os.path.join(folder, "model.safetensors"))
    new = extract_embeddings(records, dino_model=folder, parquet_path=cache)
    assert (new.computed, new.reused) == (4, 0)
    fresh = extract_embeddings(records, dino_model=other_model)
    np.testing.assert_array_equal(new.embeddings, fresh.embeddings)
    assert not np.allclose(new.embeddings, old.embeddings, atol=1e-3)


def test_a_window_outside_its_image_is_refused_before_the_model_runs(model, flat_image, tmp_path):
    cache = tmp_path / "embeddings.parquet"
    records = grid_records(flat_image, 2, 2)
    records.loc[3, ["row_off", "col_off"]] = (100, 112)  # 128 px image: 112 + 32 > 128
    with pytest.raises(BalancedSamplingError, match=r"row_off=100, col_off=112.*outside the image raster.*flat\.tif"):
        extract_embeddings(records, dino_model=model, parquet_path=cache)
    assert not cache.exists()


def test_bands_the_image_lacks_are_refused_before_the_model_runs(model, flat_image, tmp_path):
    with pytest.raises(BalancedSamplingError, match=r"has 3 bands; the band selection \(1, 2, 4\)"):
        extract_embeddings(grid_records(flat_image, 1, 1), dino_model=model, bands=(1, 2, 4),
                           parquet_path=tmp_path / "e.parquet")
    assert not (tmp_path / "e.parquet").exists()


def test_duplicate_rows_do_not_lower_the_scores(model, flat_image):
    records = grid_records(flat_image, 4, 4)
    twice = pd.concat([records, records.iloc[[0, 5, 6]]], ignore_index=True)
    infos = []
    progress = Progress(info=infos.append)
    plain = compute_uniqueness(records, dino_model=model, k_neighbors=3, backend="faiss")
    doubled = compute_uniqueness(twice, dino_model=model, k_neighbors=3, backend="faiss", progress=progress)
    scores = doubled.table[UNIQUENESS_SCORE].to_numpy()
    np.testing.assert_allclose(scores[:16], plain.table[UNIQUENESS_SCORE].to_numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(scores[16:], scores[[0, 5, 6]])
    assert (scores > 0).all()
    assert any("3 rows repeat a patch" in message for message in infos)


def test_cancel_is_seen_within_about_a_second_during_a_slow_cpu_batch(model, flat_image, monkeypatch):
    """A 16-patch batch at 0.25 s a patch takes 4 s in one forward pass; chunked, cancel waits ~1 s at most."""
    import time

    import balanced_sampling_plugin.embeddings as embeddings

    real = embeddings.cls_embeddings

    def slow(model_, batch, device, precision="fp32"):
        time.sleep(0.25 * len(batch))
        return real(model_, batch, device, precision)

    monkeypatch.setattr(embeddings, "cls_embeddings", slow)
    started = time.monotonic()
    progress = Progress(is_canceled=lambda: time.monotonic() - started > 1.5)
    with pytest.raises(OperationCanceled):
        extract_embeddings(grid_records(flat_image, 4, 4), dino_model=model, batch_size=16, num_workers=0,
                           progress=progress)
    assert time.monotonic() - started < 1.5 + embeddings.CANCEL_LATENCY + 0.6


def test_a_partitioned_cache_adds_one_part_per_save_and_reads_like_a_file(tmp_path):
    """A folder cache: each save writes a part with only its rows, a later row wins, a damaged part is warned
    about and ignored, and the coreset's loader reads the folder as it reads a file."""
    from balanced_sampling_plugin.embedding_cache import is_partitioned
    from balanced_sampling_plugin.selection.embeddings import load_embeddings

    folder = str(tmp_path / "cache") + os.sep
    assert is_partitioned(folder) and not is_partitioned(tmp_path / "cache.parquet")
    first = np.arange(12, dtype=np.float32).reshape(3, 4)
    EmbeddingCache(folder).save(["a", "b", "c"], "m", first)
    EmbeddingCache(folder).save(["c"], "m", np.full((1, 4), 9, np.float32))  # c computed again: this one wins
    parts = sorted(os.listdir(folder))
    assert len(parts) == 2 and all(p.startswith("part-") and p.endswith(".parquet") for p in parts)
    assert pq.read_table(os.path.join(folder, parts[1])).num_rows == 1
    found, vectors = EmbeddingCache(folder).lookup(["c", "a", "z"], "m", 4)
    assert found.tolist() == [True, True, False]
    np.testing.assert_array_equal(vectors, [[9, 9, 9, 9], first[0]])
    assert is_partitioned(tmp_path / "cache")  # an existing folder, with or without the separator

    records = pd.DataFrame({"image_path": ["/x.tif"] * 2, "row_off": [0, 64], "col_off": [0, 0],
                            "patch_size": [64, 64]})
    keys = [patch_id("/x.tif", 0, 0, 64), patch_id("/x.tif", 64, 0, 64)]
    EmbeddingCache(folder).save(keys, "m", first[:2])
    np.testing.assert_array_equal(load_embeddings(records, folder), first[:2])

    with open(os.path.join(folder, parts[0]), "r+b") as handle:  # truncate the first part
        handle.truncate(20)
    warnings = []
    found, _ = EmbeddingCache(folder, Progress(warning=warnings.append)).lookup(["a", "c"], "m", 4)
    assert found.tolist() == [False, True] and "cannot be read" in warnings[0] and parts[0] in warnings[0]


# --------------------------------------------------------------------------- an image changed since its embedding


def stored_state(path) -> str:
    """What the cache stores for the image at ``path`` now: its size and time, then its bytes' digest."""
    from balanced_sampling_plugin.embedding_cache import file_digest, image_state

    return f"{image_state(normalize_path(path))}:{file_digest(path)}"


def _rewrite(path, seed):
    """Rewrite the 64 x 64 RGB image at ``path`` in place with other pixels (the same file size); its state must
    change (on a file system whose times are coarser than this test's pace, the time is moved on)."""
    from balanced_sampling_plugin.embedding_cache import image_state

    before = os.stat(path)
    write_geotiff(path, np.random.default_rng(seed).integers(0, 256, size=(3, 64, 64), dtype=np.uint8))
    after = os.stat(path)
    assert after.st_size == before.st_size
    if after.st_mtime_ns == before.st_mtime_ns:
        os.utime(path, ns=(after.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    assert image_state(path) != f"{before.st_size}:{before.st_mtime_ns}"


def _stored_rows(cache):
    """Every row of a cache file, or of a folder's parts in name order (a part may lack the image_state column)."""
    if os.path.isfile(cache):
        return pq.read_table(cache).to_pandas()
    return pd.concat([pq.read_table(os.path.join(cache, name)).to_pandas() for name in sorted(os.listdir(cache))],
                     ignore_index=True)


@pytest.mark.parametrize("layout", ["file", "folder"])
def test_an_image_rewritten_in_place_is_recomputed_and_an_untouched_one_reused(model, tmp_path, layout):
    image = str(tmp_path / "img" / "rewritten.tif")
    os.makedirs(os.path.dirname(image))
    write_geotiff(image, np.random.default_rng(1).integers(0, 256, size=(3, 64, 64), dtype=np.uint8))
    cache = str(tmp_path / "embeddings.parquet") if layout == "file" else str(tmp_path / "cache") + os.sep
    records = grid_records(image, 2, 2)

    def run(path=cache):
        messages = []
        result = extract_embeddings(records, dino_model=model, parquet_path=path, num_workers=0,
                                    progress=Progress(info=messages.append))
        return result, messages

    first, _ = run()
    assert (first.computed, first.reused) == (4, 0)
    _rewrite(image, seed=2)
    second, messages = run()
    assert (second.computed, second.reused) == (4, 0)
    assert any("4 cached embeddings are of an image that changed since" in m for m in messages), messages
    fresh = extract_embeddings(records, dino_model=model, num_workers=0).embeddings
    np.testing.assert_allclose(second.embeddings, fresh, atol=1e-6)
    assert not np.allclose(second.embeddings, first.embeddings, atol=1e-3)

    # Untouched since: reused, and the replaced rows (a folder keeps them in an older part) are not reported.
    third, messages = run()
    assert (third.computed, third.reused) == (0, 4)
    np.testing.assert_array_equal(third.embeddings, second.embeddings)
    assert not any("changed since" in m for m in messages), messages

    # Only touched (same bytes, a new time, as a copy that does not keep times leaves it): the file is read once
    # for its digest, which equals the stored one: reused, and stored again with the new time.
    from balanced_sampling_plugin import embedding_cache
    from balanced_sampling_plugin.embedding_cache import image_state

    stat = os.stat(image)
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    touched, messages = run()
    assert (touched.computed, touched.reused) == (0, 4)
    assert any("4 cached embeddings are of an image whose file time changed but whose bytes did not" in m
               for m in messages), messages
    assert not any("changed since" in m for m in messages), messages
    np.testing.assert_array_equal(touched.embeddings, second.embeddings)
    latest = _stored_rows(cache).drop_duplicates("patch_key", keep="last")
    assert {state.rsplit(":", 1)[0] for state in latest["image_state"]} == {image_state(normalize_path(image))}
    embedding_cache._digests.clear()  # a new process: nothing remembered, and nothing needs reading
    read = []
    original = embedding_cache.file_digest
    embedding_cache.file_digest = lambda *args, **kwargs: read.append(args) or original(*args, **kwargs)
    try:
        again, messages = run()
    finally:
        embedding_cache.file_digest = original
    assert (again.computed, again.reused, read) == (0, 4, [])

    # Touched and rewritten with other pixels of the same size: the digest differs, recomputed.
    _rewrite(image, seed=3)
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 9_000_000_000))
    assert os.path.getsize(image) == stat.st_size
    rewritten, messages = run()
    assert (rewritten.computed, rewritten.reused) == (4, 0)
    assert any("4 cached embeddings are of an image that changed since" in m for m in messages), messages

    stored = _stored_rows(cache)
    if layout == "file":  # one row per patch: the new rows replaced the old ones
        assert len(stored) == 4
    latest = stored.drop_duplicates("patch_key", keep="last")
    assert set(latest["image_state"]) == {stored_state(image)}


@pytest.mark.parametrize("layout", ["file", "folder"])
def test_an_old_cache_without_image_states_is_recomputed_and_rewritten_with_them(model, flat_image, tmp_path,
                                                                                   layout):
    records = grid_records(flat_image, 2, 2)
    reference = extract_embeddings(records, dino_model=model, num_workers=0)
    keys = [patch_id(flat_image, r, c, PATCH) for r in (0, PATCH) for c in (0, PATCH)]
    old = pa.table({"patch_key": keys, "model": [identity_of(model)] * 4,
                    "embedding": pa.array(list(reference.embeddings), pa.list_(pa.float32()))})
    if layout == "file":
        cache = str(tmp_path / "embeddings.parquet")
        pq.write_table(old, cache)
    else:
        cache = str(tmp_path / "cache") + os.sep
        os.makedirs(cache)
        pq.write_table(old, os.path.join(cache, "part-00000000000000000001-old.parquet"))
    # Read as rows without a state: found by key and model, never reused.
    found, _ = EmbeddingCache(cache).lookup(keys, identity_of(model), 32)
    assert found.all()
    messages = []
    result = extract_embeddings(records, dino_model=model, parquet_path=cache, num_workers=0,
                                progress=Progress(info=messages.append))
    assert (result.computed, result.reused) == (4, 0)
    assert any("written before the cache recorded the state of their image" in m for m in messages), messages
    np.testing.assert_allclose(result.embeddings, reference.embeddings, atol=1e-6)
    stored = _stored_rows(cache)
    if layout == "file":
        assert len(stored) == 4  # rewritten with the column, the old rows replaced
        assert "image_state" in pq.read_schema(cache).names
    latest = stored.drop_duplicates("patch_key", keep="last")
    assert set(latest["image_state"]) == {stored_state(flat_image)}
    again = extract_embeddings(records, dino_model=model, parquet_path=cache, num_workers=0)
    assert (again.computed, again.reused) == (0, 4)


def test_an_embedding_task_stores_the_image_states_in_its_part(model, flat_image, tmp_path):
    """The cluster path without a cluster: the states the client took travel in the tasks to the parts the
    workers write."""
    from balanced_sampling_plugin import embedding_tasks
    from balanced_sampling_plugin.embedding_cache import image_states

    name, local = resolve_model_name(model)
    spec = embedding_tasks.ModelSpec(name, local, model_fingerprint(name, local), "fp32", False, 32)
    windows = [(normalize_path(flat_image), 0, c, PATCH) for c in (0, PATCH, 2 * PATCH)]
    keys = [patch_id(*window) for window in windows]
    states = image_states([w[0] for w in windows])
    folder = str(tmp_path / "cache") + os.sep
    tasks = embedding_tasks.plan_tasks(windows, keys, spec, (1, 2, 3), None, 4, "id", folder, per_task=2,
                                       states=states)
    assert [task.states for task in tasks] == [tuple(states[:2]), tuple(states[2:])]
    try:
        for task in tasks:
            embedding_tasks.run_embedding_task(task, lambda: False)
    finally:
        embedding_tasks.forget_models()
    stored = pq.read_table(folder).to_pandas()
    assert stored["patch_key"].tolist() == keys and stored["image_state"].tolist() == list(states)
    found, _ = EmbeddingCache(folder).lookup(keys, "id", 32, states)
    assert found.all()


def test_agreeing_states_compares_size_and_time_then_the_digest(tmp_path):
    from balanced_sampling_plugin.embedding_cache import agreeing_states, file_digest, image_state

    image = tmp_path / "a.tif"
    image.write_bytes(b"0123456789")
    now = image_state(str(image))
    size = now.split(":")[0]
    digest = file_digest(str(image))
    stored = np.array([now, f"{now}:{digest}", f"{size}:1:{digest}", f"{size}:1:{'0' * 32}", f"{size}:1",
                       f"99:1:{digest}", None, now], dtype=object)
    current = np.array([now] * 7 + [None], dtype=object)
    agree, by_digest = agreeing_states(stored, current, [str(image)] * 8)
    assert agree.tolist() == [True, True, True, False, False, False, False, False]
    assert by_digest.tolist() == [False, False, True, False, False, False, False, False]
    # Without the paths only size and time count.
    assert agreeing_states(stored, current)[0].tolist() == [True, True, False, False, False, False, False, False]


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_a_truncated_image_is_named_with_gdals_reason_not_a_traceback(model, tmp_path, dtype):
    """A GeoTIFF cut short (a copy that stopped) opens, then fails while its pixels are read: in the model's read
    (uint8) or in the stretch sample (uint16); the message names the image, the window and GDAL's reason."""
    pixels = np.random.default_rng(0).integers(1, 250, size=(3, 128, 128)).astype(dtype)
    image = str(tmp_path / f"cut_{dtype}.tif")
    write_geotiff(image, pixels)
    size = os.path.getsize(image)
    with open(image, "r+b") as handle:
        handle.truncate(size // 2)
    with pytest.raises(BalancedSamplingError) as caught:
        extract_embeddings(grid_records(image, 4, 4), dino_model=model, num_workers=0)
    message = str(caught.value)
    assert f"of image '{image}' failed: " in message and "row_off=" in message, message
    assert "See previous exception" not in message
    assert "read" in message.lower().split("failed: ", 1)[1], message  # GDAL's own words follow


def test_error_chain_joins_the_causes_without_rasterios_placeholder():
    from balanced_sampling_plugin.errors import error_chain

    try:
        try:
            raise OSError("../masks/L1.tif: No such file or directory")
        except OSError as inner:
            raise RuntimeError("Read failed. See previous exception for details.") from inner
    except RuntimeError as outer:
        assert error_chain(outer) == "Read failed: ../masks/L1.tif: No such file or directory"


def test_the_log_says_which_bands_feed_the_model(model, flat_image):
    messages = []
    extract_embeddings(grid_records(flat_image, 1, 2), dino_model=model, bands=(3, 2, 1), num_workers=0,
                       progress=Progress(info=messages.append))
    assert any(m.startswith("Model input: bands 3,2,1 of the images as red, green, blue ('flat.tif' has 3 bands")
               for m in messages), messages


def test_fixed_stretch_values_keep_the_cache_when_the_patch_list_grows(model, uint16_image, tmp_path):
    from balanced_sampling_plugin.patch_images import stretch_from_text

    cache = str(tmp_path / "embeddings.parquet")
    fixed = stretch_from_text("1000,9000")
    messages = []
    first = extract_embeddings(grid_records(uint16_image, 4, 2), dino_model=model, parquet_path=cache, stretch=fixed,
                               progress=Progress(info=messages.append))
    assert first.computed == 8
    assert any(m.startswith("Non-uint8 imagery stretched to 0-255 with the given values: [1000.0, 1000.0, 1000.0] "
                            "to [9000.0, 9000.0, 9000.0]") for m in messages), messages
    grown = extract_embeddings(grid_records(uint16_image, 4, 4), dino_model=model, parquet_path=cache, stretch=fixed)
    assert (grown.computed, grown.reused) == (8, 8)  # the first eight kept: the stretch did not move
    fresh = extract_embeddings(grid_records(uint16_image, 4, 4), dino_model=model, stretch=fixed)
    np.testing.assert_allclose(grown.embeddings, fresh.embeddings, atol=1e-6)
    estimated = extract_embeddings(grid_records(uint16_image, 4, 4), dino_model=model, parquet_path=cache)
    assert estimated.reused == 0  # estimated from the patches: other pixels reach the model


@pytest.mark.parametrize("text, low, high", [("0,3000", [0, 0, 0], [3000] * 3),
                                             ("1, 2, 3; 10, 20, 30", [1, 2, 3], [10, 20, 30]), ("", None, None)])
def test_stretch_values_from_text(text, low, high):
    from balanced_sampling_plugin.patch_images import stretch_from_text

    stretch = stretch_from_text(text)
    if low is None:
        assert stretch is None
    else:
        assert stretch.low.tolist() == low and stretch.high.tolist() == high


@pytest.mark.parametrize("text", ["3000,0", "5,5", "a,b", "1,2,3;4,5", "0,1,2", "0,inf"])
def test_bad_stretch_values_are_named(text):
    from balanced_sampling_plugin.patch_images import stretch_from_text

    with pytest.raises(BalancedSamplingError, match=f"Stretch values '{re.escape(text)}' are not 'low,high'"):
        stretch_from_text(text)


def test_bands_from_text_and_the_header_check_before_the_work(tmp_path):
    from balanced_sampling_plugin.patch_images import bands_from_text, check_bands
    from tests.rasters import write_geotiff

    assert bands_from_text("4,3,2") == (4, 3, 2) and bands_from_text(" 4; 3; 2 ") == (4, 3, 2)
    assert bands_from_text("") == (1, 2, 3)
    for text in ("0,1,2", "4,3", "r g b", "1,2,3,4"):
        with pytest.raises(BalancedSamplingError, match=f"Bands must be three band numbers such as 1,2,3; got "
                                                        f"'{text}'"):
            bands_from_text(text)
    four = write_geotiff(tmp_path / "four.tif", np.zeros((4, 8, 8), np.uint16))
    one = write_geotiff(tmp_path / "one.tif", np.zeros((8, 8), np.uint8))
    check_bands([one, four, four], (4, 3, 2))
    check_bands([str(tmp_path / "unreadable.tif"), one], (5, 1, 1))  # left to the reads, which name GDAL's reason
    with pytest.raises(BalancedSamplingError, match=r"four.tif' has 4 bands; the band selection \(5, 1, 1\)"):
        check_bands([one, four], (5, 1, 1))


def test_a_read_only_cache_is_read_and_never_written(model, flat_image, second_image, tmp_path, monkeypatch):
    """A team's cache on a read-only share: its embeddings are reused, new ones are computed and returned but not
    stored, and the file stays byte for byte as it was."""
    import hashlib

    from balanced_sampling_plugin import embedding_cache
    from balanced_sampling_plugin.progress import Progress

    cache = tmp_path / "shared" / "embeddings.parquet"
    records = grid_records(flat_image, 2, 2)
    first = extract_embeddings(records, dino_model=model, parquet_path=str(cache))
    digest = hashlib.sha256(cache.read_bytes()).hexdigest()
    real = embedding_cache.is_read_only
    monkeypatch.setattr(embedding_cache, "is_read_only", lambda path: os.path.dirname(os.path.abspath(path)) ==
                        str(cache.parent) or real(path))  # as root, permissions cannot make it read-only here
    assert embedding_cache.cache_output(str(cache)) is None, "nothing is written there: no write check either"
    infos, warnings = [], []
    more = pd.concat([records, grid_records(second_image, 2, 2)], ignore_index=True)
    grown = extract_embeddings(more, dino_model=model, parquet_path=str(cache),
                               progress=Progress(info=infos.append, warning=warnings.append))
    assert (grown.computed, grown.reused) == (4, 4)
    np.testing.assert_array_equal(grown.embeddings[:4], first.embeddings)
    assert hashlib.sha256(cache.read_bytes()).hexdigest() == digest
    assert sorted(os.listdir(cache.parent)) == ["embeddings.parquet"]
    assert any(line.startswith(f"The embedding cache '{cache}' is read-only: its embeddings are reused")
               for line in infos), infos
    assert any(line.startswith("4 embeddings computed in this run were not stored: the cache") for line in warnings)


def test_is_read_only_probes_the_folder(tmp_path, monkeypatch):
    import tempfile

    from balanced_sampling_plugin.embedding_cache import is_read_only

    path = tmp_path / "embeddings.parquet"
    assert not is_read_only(path), "a cache not written yet"
    path.write_bytes(b"PAR1")
    assert not is_read_only(path) and not is_read_only(tmp_path)

    def read_only_mount(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", read_only_mount)
    assert is_read_only(path) and is_read_only(tmp_path)
