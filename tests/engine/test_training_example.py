"""examples/train_with_sampler.py (the README's training recipe) reads the training CSV the plugin writes."""

import importlib.util
import os

import numpy as np
import pandas as pd
import pytest

from balanced_sampling_plugin.export import write_training_csv
from tests.rasters import write_geotiff

torch = pytest.importorskip("torch")
EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "train_with_sampler.py")


def load_example():
    spec = importlib.util.spec_from_file_location("train_with_sampler", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("relative", [False, True])
def test_the_loader_reads_every_window_and_never_draws_an_excluded_patch(tmp_path, relative):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(4, 64, 64), dtype=np.uint8)
    mask = rng.integers(0, 3, size=(64, 64), dtype=np.uint8)
    data = tmp_path / "data set"  # a space, as users' folders have
    data.mkdir()
    image_path, mask_path = write_geotiff(data / "tile.tif", image), write_geotiff(data / "tile_mask.tif", mask)
    windows = [(r, c) for r in (0, 32) for c in (0, 32)]
    table = pd.DataFrame({"image_path": image_path, "mask_path": mask_path, "row_off": [w[0] for w in windows],
                          "col_off": [w[1] for w in windows], "patch_size": 32,
                          "sampler_weight": [2.0, 0.0, 1.0, 1.0], "excluded": [False, True, False, False]})
    out = tmp_path / "csv"
    out.mkdir()
    csv = write_training_csv(table, out / "train.csv", relative_paths=relative)
    assert os.path.isabs(pd.read_csv(csv)["image"][0]) is not relative

    example = load_example()
    dataset = example.WindowedDataset(csv, bands=[3, 2, 1])
    picture, labels = dataset[3]
    np.testing.assert_array_equal(picture.numpy(), image[[2, 1, 0], 32:, 32:].astype(np.float32))
    np.testing.assert_array_equal(labels.numpy(), mask[32:, 32:])

    loader = example.balanced_loader(csv, batch_size=2, bands=[1, 2, 3], generator=torch.Generator().manual_seed(0))
    assert len(loader.sampler) == 3  # one epoch: the drawable patches
    sampler = example.balanced_sampler(table["sampler_weight"], torch.Generator().manual_seed(1))
    drawn = np.bincount([i for _ in range(1000) for i in sampler], minlength=4)
    assert drawn[1] == 0 and drawn.sum() == 3000
    assert drawn[0] / drawn[2] == pytest.approx(2.0, rel=0.15)  # drawn in proportion to the weight
    images, masks = next(iter(loader))
    assert images.shape == (2, 3, 32, 32) and images.dtype == torch.float32
    assert masks.shape == (2, 32, 32) and masks.dtype == torch.int64


def test_no_drawable_row_is_said():
    with pytest.raises(ValueError, match="No row has a positive sampler_weight"):
        load_example().balanced_sampler([0.0, 0.0])
