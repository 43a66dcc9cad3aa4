"""GeoTIFF fixtures shared by the engine tests."""

import numpy as np
import rasterio
from rasterio.transform import from_origin


def write_geotiff(path, array, dtype=None, nodata=None, crs="EPSG:32633", transform=None) -> str:
    """Write a (bands, h, w) or (h, w) array as a GeoTIFF; returns the path.

    The grid is 1 m pixels at (500000, 4000000) in EPSG:32633 unless ``crs`` / ``transform``
    (an affine transform) say otherwise. ``dtype`` converts the array first (default: its own
    dtype); ``nodata`` is stored in the file.
    """
    array = np.asarray(array, dtype=dtype)
    data = array[np.newaxis] if array.ndim == 2 else array
    bands, height, width = data.shape
    transform = from_origin(500000, 4000000, 1, 1) if transform is None else transform
    with rasterio.open(
        path, "w", driver="GTiff", width=width, height=height, count=bands, dtype=data.dtype,
        crs=crs, transform=transform, nodata=nodata,
    ) as dst:
        dst.write(data)
    return str(path)
