"""Where patch records come from, and their footprints.

* :func:`~.records_file.read_patch_records`: a CSV, or a ``balanced_dataset`` YAML config's
  ``input.patch_records``;
* :func:`~.postgres.load_tiles`: a PostgreSQL tile table (psycopg2, read-only);
* :func:`~.footprints_for_records.record_footprints`: map polygons of any record table
  (patch grids over whole rasters come from :mod:`balanced_sampling_plugin.footprints`).

Every source yields the engine's patch table (see :mod:`balanced_sampling_plugin.records`).
"""

from .footprints_for_records import ON_MISSING, RecordFootprints, missing_rasters, record_footprints
from .postgres import load_tiles
from .records_file import read_patch_records, records_files

__all__ = ["ON_MISSING", "RecordFootprints", "load_tiles", "missing_rasters", "read_patch_records", "record_footprints",
           "records_files"]
