"""Coreset selection: the most informative subset of the weighted pool when the compute budget allows
training on only part of it (pytorch-smt-tools ``select-coreset``, after Nogueira et al. 2026).

The data flow, one module a step:

- :mod:`.scores`     the six scoring methods (lc, cb, fd, fa, lc_fd, fa_cb), each a score in [0, 1] per
                     pool patch, higher = picked earlier; :func:`.scores.select` runs the steps
                     (vector, method, fill) up to the budget;
- :mod:`.budget`     the budget as a fraction of the pool or a count;
- :mod:`.spatial`    spatial diversity on footprint centroids (at most n per grid cell, a minimum distance);
- :mod:`.embeddings` the DINOv2 embeddings of the pool, read from the embedding cache (Parquet);
- :mod:`.measures`   how a subset covers the pool, compared with random selection at the same budget;
- :mod:`.report`     that comparison as one HTML page;
- :mod:`.coreset`    :func:`.coreset.select_coreset`: the pool, the scores, the steps, the fields written;
- :mod:`.config`     the tool's YAML ``coreset:`` block and :func:`.config.run_coreset_config`.

Pure Python + numpy/pandas (scikit-learn for ``fd``, pyarrow for the cache, imported where needed);
never imports qgis. Nothing is imported here, so importing the package costs nothing.
"""
