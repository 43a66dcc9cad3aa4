"""Train on the training CSV of Balanced Sampling: a windowed dataset and PyTorch's WeightedRandomSampler.

Copy this file into your training code (it needs torch, rasterio, pandas, numpy; not the plugin)::

    from train_with_sampler import balanced_loader

    loader = balanced_loader("balanced_train.csv", batch_size=16, num_workers=4)
    for images, masks in loader:  # (B, bands, H, W) float32, (B, H, W) int64
        ...

The CSV's ``image``/``mask`` paths may be absolute or relative to the CSV's folder (RELATIVE_PATHS). Rows with
``sampler_weight`` 0 (excluded patches, kept in the CSV unless DROP_EXCLUDED) are never drawn, and an epoch is as
many draws as there are drawable patches.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import rasterio
import torch
from rasterio.windows import Window


class WindowedDataset(torch.utils.data.Dataset):
    """One item per CSV row: the image window (bands, size, size) float32 and the mask window (size, size) int64.

    ``bands``: 1-based image bands to read (None: all). Raster files are opened once per worker process."""

    def __init__(self, csv_path: str, bands=None, image_column: str = "image", mask_column: str = "mask"):
        self.table = pd.read_csv(csv_path)
        folder = os.path.dirname(os.path.abspath(csv_path))

        def absolute(path: str) -> str:
            return path if os.path.isabs(path) else os.path.normpath(os.path.join(folder, path))

        self.images = [absolute(p) for p in self.table[image_column]]
        self.masks = [absolute(p) for p in self.table[mask_column]]
        self.windows = self.table[["row_off", "col_off", "patch_size"]].to_numpy(dtype=np.int64)
        self.bands = list(bands) if bands is not None else None
        self._open: dict = {}

    def __len__(self) -> int:
        return len(self.table)

    def _dataset(self, path: str):
        if path not in self._open:
            self._open[path] = rasterio.open(path)
        return self._open[path]

    def __getitem__(self, index: int):
        row_off, col_off, size = (int(v) for v in self.windows[index])
        window = Window(col_off, row_off, size, size)
        image = self._dataset(self.images[index]).read(self.bands, window=window).astype(np.float32)
        mask = self._dataset(self.masks[index]).read(1, window=window).astype(np.int64)
        return torch.from_numpy(image), torch.from_numpy(mask)

    def __getstate__(self):  # open datasets do not cross into worker processes
        return {**self.__dict__, "_open": {}}


def balanced_sampler(weights, generator=None) -> torch.utils.data.WeightedRandomSampler:
    """Draw rows with probability proportional to ``weights`` (the CSV's ``sampler_weight``), with replacement;
    one epoch = as many draws as there are rows of positive weight."""
    weights = torch.as_tensor(np.asarray(weights, dtype=np.float64))
    drawable = int((weights > 0).sum())
    if drawable == 0:
        raise ValueError("No row has a positive sampler_weight: nothing can be drawn.")
    return torch.utils.data.WeightedRandomSampler(weights, num_samples=drawable, replacement=True,
                                                  generator=generator)


def balanced_loader(csv_path: str, batch_size: int = 16, num_workers: int = 0, bands=None,
                    generator=None) -> torch.utils.data.DataLoader:
    """A DataLoader over the CSV's windows, drawn by their ``sampler_weight``."""
    dataset = WindowedDataset(csv_path, bands=bands)
    sampler = balanced_sampler(dataset.table["sampler_weight"], generator=generator)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers)
