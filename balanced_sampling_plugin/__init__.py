"""Balanced Sampling engine: per-patch sampler weights for imbalanced segmentation datasets.

Pure Python (numpy, pandas, scikit-learn, rasterio, torch): this package never imports
qgis or PyQt, so it runs the same from QGIS, ``qgis_process``, a notebook or a script.
Heavy dependencies (torch, transformers, faiss, hnswlib) are imported inside the
functions that need them.
"""

__version__ = "0.1.0"
