"""The pytorch-smt-tools ``balanced_dataset`` YAML config, parsed and checked into dataclasses.

Two forms are accepted, as pytorch-smt-tools accepts them: the one of its documentation
(database keys under ``input``, ``mode: embeddings``) and the one of its code (top-level
``backend`` with a ``postgres`` section, ``mode: both``, the longer exclusion key names).
Every section and key is optional unless said; defaults as in the documentation::

    balanced_dataset:
      backend: local | postgres                          # local; postgres reads the `postgres` section
      mode: masks_only | embeddings_only | both          # masks_only; `embeddings` (documentation) = both
      sampling_method: rank_max | rank_multiply | ...    # rank_max; also target_shares, repeat_factor,
                                 # rare_class_sampling, and sqrt_inverse_freq (= class_balanced, alpha 0.5)
      num_workers: null          # threads reading masks (null: the plugin's automatic count)
      input:                     # required with backend local: one of the three inputs below
        patch_records: [{image_path, mask_path, row_off, col_off, patch_size}, ...] | records.csv
        image_dir, mask_dir, extension: .tif, patch_size: 256, stride: 256   # scan two folders, pair
                                 # images and masks by file name, cut patch_size windows every stride px
        host, port, database, user, password, table, where_clause, ...      # the documentation's
                                 # PostgreSQL form: the keys of the `postgres` section below
      postgres:                  # with backend: postgres (the code's form)
        host: localhost, port: 5432, database: dataset_explorer, user: postgres, password: ""
        table: tile              # `tiles` when the keys are under `input`
        where_clause: ""
        image_path_column, mask_path_column, ..., tile_id_column   # column names of the tile table
        embedding_column: embedding
        fetch_embeddings: false  # true: uniqueness from each tile's embedding in embedding_column
                                 # (pgvector '[0.1, ...]' text or a real[] array), DINOv2 does not run;
                                 # the embeddings keys are then unused (mode masks_only: not read)
        statement_timeout: 600   # seconds a query may run on the server, 0 = no limit; this
                                 # plugin's own key (pytorch-smt-tools does not have it)
      clustering: {k_min: 4, k_max: 16, k_selection: elbow, k: null, random_state: 42}
      uniqueness: {k_neighbors: 5, backend: sklearn,    # pytorch-smt-tools' default; nndescent is fastest
                   reproducible: false}                # plugin's key: true = the same nndescent result
                                                       # every run (faiss's graph then on one thread)
      embeddings: {dino_model: facebook/dinov2-base, batch_size: 32, num_workers: 4,
                   use_gpu: false, parquet_path: null}
      exclusion: {exclude_border_nodata: true,          # or exclude_mask_border_nodata
                  exclude_black_border: true,           # or exclude_image_black_border
                  black_tolerance: 0,                   # or black_border_tolerance
                  nodata_class: 0, max_nodata_ratio: 1.0,
                  min_entropy_threshold: 0.0}           # patches with a lower class entropy are excluded
      boost: {rare_class_boost: false, rare_class_ids: null, rare_class_multiplier: 3.0}
      output: {csv_path: required, include_excluded: true, geojson_path: null,
               geojson_crs: null}  # null: the rasters' CRS; else the GeoJSON is reprojected to it
      compute:                   # this plugin's own keys (pytorch-smt-tools does not have them): where the
                                 # mask statistics and the DINOv2 embeddings run
        scheduler: ""            # "" = in this process (num_workers threads); "local:N" = a Dask LocalCluster
                                 # of N worker processes started for the run; or a scheduler address,
                                 # e.g. "tcp://host:8786" (needs the dask and distributed packages)
        n_workers: null          # with scheduler "local": the worker processes (null: the CPU count)
        threads_per_worker: 1    # LocalCluster threads per worker
        memory_limit: null       # LocalCluster memory per worker, e.g. "2GiB" (null: 80 % of RAM shared, <= 4 GiB)
      weights:                   # this plugin's own keys (pytorch-smt-tools does not have them)
        class_alpha: 0.5         # class_balanced's alpha
        target_shares: null      # target_shares: {6: 0.08, 4: 0.1} or "6:8%, 4:0.1"; null = most balanced
        min_ess: 0.5             # target_shares without targets: smallest ESS, fraction of the patches
        lift_class: null         # target_shares: lift this class as far as min_ess allows
        max_weight: null         # target_shares: largest weight (x the mean)
        min_pixels: null         # repeat_factor, rare_class_sampling: pixels that make a patch contain a
                                 # class; null = DAFormer's 3000 px per 512 x 512 px, scaled by patch area
        repeat_threshold: null   # repeat_factor's t; null = the median fraction of patches with a class
        temperature: 0.01        # rare_class_sampling's T
        floor: 0.001             # smallest weight, fraction of the largest (target_shares: of the mean)

Where the tool's code and documentation disagree on a default (``clustering.k_min`` 8 vs 4,
``k_max`` 20 vs 16, ``embeddings.use_gpu`` true vs false, ``batch_size`` 64 vs 32), the
documentation's applies and the run's log says so (:attr:`BalancedDatasetConfig.defaults_applied`).

Relative paths (records, folders, rasters, outputs, the embedding cache, a model folder) resolve
against the config file's folder. Unknown keys and bad values raise
:class:`BalancedSamplingError` naming the dotted key, e.g. ``balanced_dataset.clustering.kmin``.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Mapping, Optional, Union

import pandas as pd

from .composition import K_SELECTIONS
from .errors import BalancedSamplingError
from .i18n import _
from .sources.records_file import read_yaml_file, records_from_entries, resolve_path
from .uniqueness import BACKENDS
from .contract import METHOD_ALIASES
from .weights import SAMPLING_METHODS

ROOT = "balanced_dataset"
#: Accepted modes; ``embeddings`` (the documentation's name) is read as ``both``.
MODES = ("masks_only", "embeddings_only", "both", "embeddings")
#: The modes that run DINOv2 uniqueness.
EMBEDDING_MODES = ("embeddings_only", "both")
BACKENDS_INPUT = ("local", "postgres")
#: Config keys naming the tile table's columns (pytorch-smt-tools names) -> column role.
COLUMN_KEYS = {
    "image_path_column": "file_path",
    "mask_path_column": "mask_path",
    "row_off_column": "row_off",
    "col_off_column": "col_off",
    "patch_size_column": "patch_size",
    "class_dist_column": "class_dist",
    "uniqueness_score_column": "uniqueness_score",
    "class_entropy_column": "class_entropy",
    "nodata_ratio_column": "nodata_ratio",
    "tile_id_column": "id",
}


# --------------------------------------------------------------------------- value checks
# A check takes (value, dotted key) and returns the value to keep, or raises naming the key.

Check = Callable[[Any, str], Any]


def _bad(key: str, value, expected: str) -> BalancedSamplingError:
    """``expected`` is already translated."""
    if key.endswith("password"):  # never echo a secret
        return BalancedSamplingError(_("{key} has the wrong type; expected {expected}.").format(
            key=key, expected=expected))
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return BalancedSamplingError(_("{key} is {value}; expected {expected}.").format(
        key=key, value=shown, expected=expected))


def _integer(minimum: Optional[int] = None, maximum: Optional[int] = None) -> Check:
    def check(value, key):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(key, value, _("an integer"))
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            if maximum is None:
                expected = _("an integer >= {minimum}").format(minimum=minimum)
            else:
                expected = _("an integer between {minimum} and {maximum}").format(minimum=minimum, maximum=maximum)
            raise _bad(key, value, expected)
        return value

    return check


def _number(minimum: float, maximum: Optional[float] = None) -> Check:
    def check(value, key):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _bad(key, value, _("a number"))
        if value < minimum or (maximum is not None and value > maximum):
            if maximum is None:
                expected = _("a number >= {minimum}").format(minimum=minimum)
            else:
                expected = _("a number from {minimum} to {maximum}").format(minimum=minimum, maximum=maximum)
            raise _bad(key, value, expected)
        return float(value)

    return check


def _boolean(value, key):
    if not isinstance(value, bool):
        raise _bad(key, value, _("true or false"))
    return value


def _text(value, key):
    if not isinstance(value, str):
        raise _bad(key, value, _("text (quote it in YAML)"))
    return value


def _choice(options) -> Check:
    def check(value, key):
        if value not in options:
            raise _bad(key, value, _("one of {choices}").format(choices=", ".join(options)))
        return value

    return check


def _optional(check: Check) -> Check:
    return lambda value, key: None if value is None else check(value, key)


def _setting(default, check: Check):
    """A dataclass field whose YAML value is checked by ``check``."""
    return field(default=default, metadata={"check": check})



def _integer_list(value, key):
    if not isinstance(value, (list, tuple)) or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
        raise _bad(key, value, _("a list of class values (integers)"))
    return [int(v) for v in value]


def _crs(value, key):
    """A CRS rasterio understands (``EPSG:4326``, a WKT, a PROJ string); kept as given."""
    _text(value, key)
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        CRS.from_user_input(value)
    except CRSError:
        raise _bad(key, value, _("a coordinate reference system such as EPSG:4326")) from None
    return value


def _extension(value, key):
    _text(value, key)
    if not value.strip() or any(ch in value for ch in "*?[]/\\"):
        raise _bad(key, value, _("a file name ending such as .tif"))
    return value.strip()


# --------------------------------------------------------------------------- sections


@dataclass
class LocalInput:
    """``input.patch_records``: the validated patch table (absolute paths, ``patch_id``);
    ``records_file`` is the CSV it was read from (None for records listed in the YAML)."""

    patch_records: pd.DataFrame
    records_file: Optional[str] = None


@dataclass
class DirectoryInput:
    """``input.image_dir`` / ``mask_dir``: every ``*<extension>`` image pairs with the mask of the same
    file name; windows of ``patch_size`` px every ``stride`` px that fit entirely in the raster."""

    image_dir: str = _setting(None, _text)
    mask_dir: str = _setting(None, _text)
    extension: str = _setting(".tif", _extension)
    patch_size: int = _setting(256, _integer(1))
    stride: int = _setting(256, _integer(1))

    @property
    def pattern(self) -> str:
        """The shell pattern of the rasters' file names."""
        return "*" + (self.extension if self.extension.startswith(".") else "." + self.extension)


@dataclass
class PostgresInput:
    """A dataset_explorer tile table (``input`` or the ``postgres`` section); ``columns`` maps column roles
    to names."""

    host: str = _setting("localhost", _text)
    port: int = _setting(5432, _integer(1, 65535))
    database: str = _setting("dataset_explorer", _text)
    user: str = _setting("postgres", _text)
    password: str = _setting("", _text)
    table: str = _setting("tiles", _text)
    where_clause: str = _setting("", _optional(_text))
    statement_timeout: int = _setting(600, _integer(0))  # seconds; the plugin's own key
    embedding_column: str = _setting("embedding", _text)
    fetch_embeddings: bool = _setting(False, _boolean)
    columns: dict = field(default_factory=dict)

    def connection(self) -> dict:
        """Keyword arguments for :func:`~balanced_sampling_plugin.sources.postgres.load_tiles`."""
        return dict(host=self.host, port=self.port, dbname=self.database, user=self.user, password=self.password)

    def __repr__(self) -> str:  # keep the password out of logs and tracebacks
        return (f"PostgresInput(host={self.host!r}, port={self.port}, database={self.database!r}, "
                f"user={self.user!r}, table={self.table!r}, where_clause={self.where_clause!r})")


@dataclass
class ClusteringConfig:
    k_min: int = _setting(4, _integer(1))
    k_max: int = _setting(16, _integer(1))
    k_selection: str = _setting("elbow", _choice(K_SELECTIONS))
    k: Optional[int] = _setting(None, _optional(_integer(1)))
    random_state: int = _setting(42, _integer(0))


@dataclass
class UniquenessConfig:
    k_neighbors: int = _setting(5, _integer(1))
    backend: str = _setting("sklearn", _choice(BACKENDS))
    reproducible: bool = _setting(False, _boolean)


@dataclass
class EmbeddingsConfig:
    dino_model: str = _setting("facebook/dinov2-base", _text)
    batch_size: int = _setting(32, _integer(1))
    num_workers: int = _setting(4, _integer(0))
    use_gpu: bool = _setting(False, _boolean)
    parquet_path: Optional[str] = _setting(None, _optional(_text))


@dataclass
class ExclusionConfig:
    exclude_border_nodata: bool = _setting(True, _boolean)
    exclude_black_border: bool = _setting(True, _boolean)
    nodata_class: Optional[int] = _setting(0, _optional(_integer()))
    black_tolerance: float = _setting(0.0, _number(0))
    max_nodata_ratio: float = _setting(1.0, _number(0, 1))
    min_entropy_threshold: float = _setting(0.0, _number(0))


@dataclass
class BoostConfig:
    """The rare-class boost: weights times ``1 + (multiplier - 1) * share of rare classes in the patch``."""

    rare_class_boost: bool = _setting(False, _boolean)
    rare_class_ids: Optional[list] = _setting(None, _optional(_integer_list))
    rare_class_multiplier: float = _setting(3.0, _number(1))

    @property
    def multiplier(self) -> Optional[float]:
        """``combine_weights``' ``rare_boost``: None when the boost is off."""
        return self.rare_class_multiplier if self.rare_class_boost else None


def _target_shares(value, key):
    """``{class: share}`` or ``"class:share, ..."``; checked against the classes when the weights are computed."""
    if isinstance(value, str):
        return value
    if not isinstance(value, Mapping) or any(
            isinstance(k, bool) or not isinstance(k, int) or isinstance(v, bool) or not isinstance(v, (int, float))
            for k, v in value.items()):
        raise _bad(key, value, _("a mapping of class value to share, e.g. {{6: 0.08, 4: 0.1}}, or text such as "
                                 "'6:8%, 4:0.1'"))
    return {int(k): float(v) for k, v in value.items()}


def _scheduler(value, key):
    from .compute import parse_spec

    value = "" if value is None else _text(value, key)
    try:
        parse_spec(value)
    except BalancedSamplingError as exc:
        raise BalancedSamplingError(_("{key}: {error}").format(key=key, error=exc)) from exc
    return value


def _memory_limit(value, key):
    """A worker memory limit as Dask reads it ("4GiB", "500MB", a byte count); checked with Dask's own parser
    when Dask is installed (without it, the scheduler itself cannot run and says so)."""
    value = str(value) if isinstance(value, int) and not isinstance(value, bool) else _text(value, key)
    try:
        from dask.utils import parse_bytes
    except ImportError:
        return value
    try:
        parse_bytes(value)
    except (ValueError, TypeError) as exc:
        raise _bad(key, value, _("a memory size such as 4GiB or 500MB")) from exc
    return value


@dataclass
class ComputeConfig:
    """Where the mask statistics and the DINOv2 embeddings run (the plugin's own section; see :mod:`~.compute`)."""

    scheduler: str = _setting("", _scheduler)
    n_workers: Optional[int] = _setting(None, _optional(_integer(1)))
    threads_per_worker: Optional[int] = _setting(None, _optional(_integer(1)))
    memory_limit: Optional[str] = _setting(None, _optional(_memory_limit))

    def executor(self, workers: Optional[int] = None):
        """The :class:`~.compute.Executor` these settings describe (``workers``: threads in-process)."""
        from .compute import executor_from_spec

        return executor_from_spec(self.scheduler, n_workers=self.n_workers, workers=workers,
                                  threads_per_worker=self.threads_per_worker, memory_limit=self.memory_limit)


@dataclass
class WeightsConfig:
    """Options of the sampling methods (the plugin's own section; see :func:`~.weights.combine_weights`)."""

    class_alpha: float = _setting(0.5, _number(0.01))
    target_shares: Optional[Union[str, dict]] = _setting(None, _optional(_target_shares))
    min_ess: float = _setting(0.5, _number(0.01, 1))
    lift_class: Optional[int] = _setting(None, _optional(_integer()))
    max_weight: Optional[float] = _setting(None, _optional(_number(1)))
    min_pixels: Optional[float] = _setting(None, _optional(_number(1e-9)))
    repeat_threshold: Optional[float] = _setting(None, _optional(_number(1e-9, 1)))
    temperature: float = _setting(0.01, _number(1e-9))
    floor: float = _setting(1e-3, _number(1e-12, 1))

    def options(self) -> dict:
        """Keyword arguments of ``combine_weights``."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class OutputConfig:
    csv_path: Optional[str] = _setting(None, _optional(_text))
    include_excluded: bool = _setting(True, _boolean)
    geojson_path: Optional[str] = _setting(None, _optional(_text))
    geojson_crs: Optional[str] = _setting(None, _optional(_crs))


@dataclass
class BalancedDatasetConfig:
    """The whole ``balanced_dataset`` section; ``source`` is the config file (None for a dict).

    ``mode`` is ``masks_only``, ``embeddings_only`` or ``both`` (the documentation's ``embeddings``).
    """

    input: Union[LocalInput, DirectoryInput, PostgresInput]
    output: OutputConfig
    backend: str = _setting("local", _choice(BACKENDS_INPUT))
    mode: str = _setting("masks_only", _choice(MODES))
    sampling_method: str = _setting("rank_max", _choice(SAMPLING_METHODS + tuple(METHOD_ALIASES)))
    num_workers: Optional[int] = _setting(None, _optional(_integer(1)))
    clustering: ClusteringConfig = field(default_factory=ClusteringConfig)
    uniqueness: UniquenessConfig = field(default_factory=UniquenessConfig)
    embeddings: EmbeddingsConfig = field(default_factory=EmbeddingsConfig)
    exclusion: ExclusionConfig = field(default_factory=ExclusionConfig)
    boost: BoostConfig = field(default_factory=BoostConfig)
    weights: WeightsConfig = field(default_factory=WeightsConfig)
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    source: Optional[str] = None
    #: Whether the config named its sampling_method (else pytorch-smt-tools' default, rank_max, applies).
    sampling_method_given: bool = False
    #: ``(dotted key, value)`` of the keys the config did not set whose default follows the documentation
    #: where pytorch-smt-tools' code has another (see :data:`DOCUMENTED_DEFAULTS`).
    defaults_applied: list = field(default_factory=list)

    @property
    def runs_embeddings(self) -> bool:
        """Whether the mode computes uniqueness (with DINOv2, or from the tile table's embeddings)."""
        return self.mode in EMBEDDING_MODES

    @property
    def fetches_embeddings(self) -> bool:
        """Whether uniqueness comes from the tile table's ``embedding_column`` (``fetch_embeddings: true``
        in a mode that computes uniqueness) instead of DINOv2."""
        return self.runs_embeddings and isinstance(self.input, PostgresInput) and self.input.fetch_embeddings

    @property
    def runs_dinov2(self) -> bool:
        """Whether DINOv2 runs (the embeddings keys apply)."""
        return self.runs_embeddings and not self.fetches_embeddings


_SECTIONS = {
    "clustering": ClusteringConfig,
    "uniqueness": UniquenessConfig,
    "embeddings": EmbeddingsConfig,
    "exclusion": ExclusionConfig,
    "boost": BoostConfig,
    "output": OutputConfig,
    "weights": WeightsConfig,
    "compute": ComputeConfig,
}
_SCALARS = ("backend", "mode", "sampling_method", "num_workers")
_POSTGRES_KEYS = tuple(f.name for f in fields(PostgresInput) if f.name != "columns")
_DIRECTORY_KEYS = tuple(f.name for f in fields(DirectoryInput))
#: Other names pytorch-smt-tools' code gives to keys (section -> {alias: key}).
ALIASES = {
    "exclusion": {
        "exclude_mask_border_nodata": "exclude_border_nodata",
        "exclude_image_black_border": "exclude_black_border",
        "black_border_tolerance": "black_tolerance",
    },
}
#: Defaults where pytorch-smt-tools' code and documentation disagree: (section, key) -> (documented, in code).
#: The documented one applies.
DOCUMENTED_DEFAULTS = {
    ("clustering", "k_min"): (4, 8),
    ("clustering", "k_max"): (16, 20),
    ("embeddings", "use_gpu"): (False, True),
    ("embeddings", "batch_size"): (32, 64),
}
#: pytorch-smt-tools' code's default table of the ``postgres`` section.
POSTGRES_SECTION_TABLE = "tile"


# --------------------------------------------------------------------------- loading


def load_config(config: Union[str, os.PathLike, Mapping], base_dir: Optional[str] = None) -> BalancedDatasetConfig:
    """Parse and check a ``balanced_dataset`` config from a YAML file or an already loaded mapping.

    ``base_dir`` anchors relative paths of a mapping (default: the current folder); a
    file's own folder anchors its relative paths. Every message names the file (when
    there is one) and the dotted key at fault.
    """
    return read_config(config, base_dir, ROOT, _parse)


def read_config(config: Union[str, os.PathLike, Mapping], base_dir: Optional[str], root: str,
                parse: Callable[[Any, Optional[str], str], Any]):
    """Read a YAML file (or take a loaded mapping), check it has a ``root`` section, and return
    ``parse(document, source, base_dir)``; every error names the file first.

    ``source`` is the file's absolute path (None for a mapping); ``base_dir`` anchors relative paths: the
    file's folder, or for a mapping the given folder (default: the current one).
    """
    if isinstance(config, Mapping):
        source, document = None, config
        base_dir = os.path.abspath(base_dir or os.getcwd())
    else:
        source = os.path.abspath(os.fspath(config))
        document = read_yaml_file(source)
        base_dir = os.path.dirname(source)
    try:
        if not isinstance(document, Mapping) or root not in document:
            found = ", ".join(map(str, document)) if isinstance(document, Mapping) and document else _("nothing")
            raise BalancedSamplingError(_("The config has no '{root}' section (found: {found}).").format(
                root=root, found=found))
        return parse(document, source, base_dir)
    except BalancedSamplingError as exc:
        if source and not str(exc).startswith(source):
            raise BalancedSamplingError(f"{source}: {exc}") from None
        raise


def _parse(document, source: Optional[str], base_dir: str) -> BalancedDatasetConfig:
    top = _mapping(document[ROOT], ROOT)
    _reject_unknown(top, ROOT, ("input", "postgres", *_SCALARS, *_SECTIONS))
    sections = {name: _section(cls, top.get(name), f"{ROOT}.{name}") for name, cls in _SECTIONS.items()}
    scalars = {name: _check_field(BalancedDatasetConfig, name, top[name], ROOT) for name in _SCALARS if name in top}
    if scalars.get("mode") == "embeddings":
        scalars["mode"] = "both"
    if scalars.get("sampling_method") in METHOD_ALIASES:
        alias = scalars["sampling_method"]
        scalars["sampling_method"], implied = METHOD_ALIASES[alias]
        given = top.get("weights") if isinstance(top.get("weights"), Mapping) else {}
        for name, value in implied.items():
            if name in given and given[name] != value:
                raise BalancedSamplingError(_("{method_key} '{alias}' means {name} = {value}, but {key} is {given}; "
                                              "drop one of them.").format(
                    method_key=f"{ROOT}.sampling_method", alias=alias, name=name, value=value,
                    key=f"{ROOT}.weights.{name}", given=given[name]))
            setattr(sections["weights"], name, value)
    config = BalancedDatasetConfig(
        input=_parse_source(top, scalars.get("backend", "local"), source or _("The config"), base_dir),
        source=source,
        sampling_method_given="sampling_method" in top,
        defaults_applied=_documented_defaults(top),
        **sections,
        **scalars,
    )
    _check_consistency(config)
    _resolve_paths(config, base_dir)
    return config


def _documented_defaults(top: Mapping) -> list:
    applied = []
    for (section, key), (documented, _in_code) in DOCUMENTED_DEFAULTS.items():
        given = top.get(section)
        if not (isinstance(given, Mapping) and key in given):
            applied.append((f"{ROOT}.{section}.{key}", documented))
    return applied


def _parse_source(top: Mapping, backend: str, source: str, base_dir: str):
    """The input of ``backend``: ``input`` (local, or the documentation's database keys), or ``postgres``."""
    input_key, postgres_key = f"{ROOT}.input", f"{ROOT}.postgres"
    if "postgres" in top:
        if backend != "postgres":
            raise BalancedSamplingError(
                _("{key} is given but {backend} is 'local'; set {backend}: postgres to read the tile table, or "
                  "remove {key}.").format(key=postgres_key, backend=f"{ROOT}.backend"))
        if "input" in top:
            raise BalancedSamplingError(
                _("Both {input} and {postgres} are given; with {backend}: postgres the tile table's keys go in "
                  "one of them.").format(input=input_key, postgres=postgres_key, backend=f"{ROOT}.backend"))
        section = dict(_mapping(top["postgres"], postgres_key))
        section.setdefault("table", POSTGRES_SECTION_TABLE)
        return _parse_postgres(section, postgres_key)
    if "input" not in top:
        raise BalancedSamplingError(
            _("{key} is required: the patch_records, the image and mask folders, or the tile table's "
              "database.").format(key=input_key))
    parsed = _parse_input(top["input"], input_key, source, base_dir)
    if backend == "postgres" and not isinstance(parsed, PostgresInput):
        raise BalancedSamplingError(
            _("{backend} is 'postgres' but neither {postgres} nor the database keys under {input} are "
              "given.").format(backend=f"{ROOT}.backend", postgres=postgres_key, input=input_key))
    return parsed


def _parse_input(value, key: str, source: str, base_dir: str) -> Union[LocalInput, DirectoryInput, PostgresInput]:
    section = _mapping(value, key)
    _reject_unknown(section, key, ("patch_records", *_DIRECTORY_KEYS, *_POSTGRES_KEYS, *COLUMN_KEYS))
    directory_keys = [k for k in section if k in _DIRECTORY_KEYS]
    database_keys = [k for k in section if k != "patch_records" and k not in _DIRECTORY_KEYS]
    given = [name for name, keys in (("patch_records", ["patch_records"] if "patch_records" in section else []),
                                     ("directory", directory_keys), ("database", database_keys)) if keys]
    if len(given) > 1:
        if "patch_records" in section and database_keys and not directory_keys:
            raise BalancedSamplingError(
                _("{key} holds both patch_records and database keys ({keys}); keep one input.").format(
                    key=key, keys=", ".join(database_keys)))
        raise BalancedSamplingError(
            _("{key} holds keys of several inputs ({keys}); keep one input: patch_records, the folders "
              "(image_dir, mask_dir, extension, patch_size, stride) or the tile table's database.").format(
                key=key, keys=", ".join(map(str, section))))
    if "patch_records" in section:
        entries = section["patch_records"]
        records_file = resolve_path(entries, base_dir) if isinstance(entries, str) else None
        return LocalInput(records_from_entries(entries, source, base_dir), records_file)
    if directory_keys:
        for needed in ("image_dir", "mask_dir"):
            if needed not in section:
                raise BalancedSamplingError(
                    _("{key} is required with {other}: the folder of the masks and the folder of the images may "
                      "be the same.").format(key=f"{key}.{needed}", other=f"{key}.{directory_keys[0]}"))
        folders = _section(DirectoryInput, section, key)
        folders.image_dir = resolve_path(folders.image_dir, base_dir)
        folders.mask_dir = resolve_path(folders.mask_dir, base_dir)
        return folders
    if not database_keys:
        raise BalancedSamplingError(
            _("{key} is empty: give patch_records, the folders image_dir and mask_dir, or the tile table's "
              "database ({keys}).").format(key=key, keys=", ".join(_POSTGRES_KEYS)))
    return _parse_postgres(section, key)


def _parse_postgres(section: Mapping, key: str) -> PostgresInput:
    _reject_unknown(section, key, (*_POSTGRES_KEYS, *COLUMN_KEYS))
    settings = {k: v for k, v in section.items() if k in _POSTGRES_KEYS}
    postgres = _section(PostgresInput, settings, key)
    postgres.where_clause = postgres.where_clause or ""
    postgres.columns = {COLUMN_KEYS[k]: _text(v, f"{key}.{k}") for k, v in section.items() if k in COLUMN_KEYS}
    if not postgres.embedding_column.strip():
        column_key = f"{key}.embedding_column"
        raise _bad(column_key, postgres.embedding_column, _("a column name"))
    postgres.embedding_column = postgres.embedding_column.strip()
    return postgres


def _section(cls, value, key: str):
    """An instance of dataclass ``cls`` from a mapping (None: the defaults), each value checked.

    Keys of :data:`ALIASES` are read as the keys they stand for; giving both is an error.
    """
    section = dict(_mapping(value, key)) if value is not None else {}
    aliases = ALIASES.get(key.rsplit(".", 1)[-1], {}) if key.startswith(f"{ROOT}.") else {}
    accepted = [f.name for f in fields(cls) if "check" in f.metadata]
    _reject_unknown(section, key, [*accepted, *aliases])
    for alias, name in aliases.items():
        if alias in section:
            if name in section:
                raise BalancedSamplingError(
                    _("{alias} and {key} name the same setting; keep one of them.").format(
                        alias=f"{key}.{alias}", key=f"{key}.{name}"))
            section[name] = section.pop(alias)
    return cls(**{name: _check_field(cls, name, v, key) for name, v in section.items()})


def _check_field(cls, name: str, value, parent: str):
    check = next(f.metadata["check"] for f in fields(cls) if f.name == name)
    return check(value, f"{parent}.{name}")


def _mapping(value, key: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise _bad(key, value, _("a mapping of keys (indent them under it)"))
    return value


def _reject_unknown(section: Mapping, key: str, accepted) -> None:
    accepted = list(accepted)
    for name in section:
        if name not in accepted:
            close = difflib.get_close_matches(str(name), accepted, n=1)
            if close:
                message = _("Unknown key '{key}'. Did you mean '{close}'? Accepted keys under {parent}: {accepted}.")
            else:
                message = _("Unknown key '{key}'. Accepted keys under {parent}: {accepted}.")
            raise BalancedSamplingError(message.format(
                key=f"{key}.{name}", close=close[0] if close else "", parent=key, accepted=", ".join(accepted)))


def _check_consistency(config: BalancedDatasetConfig) -> None:
    if config.compute.scheduler:
        try:  # starts nothing: only checks that the compute keys fit together (e.g. memory_limit with an address)
            config.compute.executor()
        except BalancedSamplingError as exc:
            raise BalancedSamplingError(_("{key}: {error}").format(key=f"{ROOT}.compute", error=exc)) from None
    clustering = config.clustering
    key = f"{ROOT}.clustering"
    if clustering.k_selection == "fixed" and clustering.k is None:
        raise BalancedSamplingError(_("{k} is required when {k_selection} is 'fixed'.").format(
            k=f"{key}.k", k_selection=f"{key}.k_selection"))
    if clustering.k_selection == "elbow" and clustering.k_min > clustering.k_max:
        raise BalancedSamplingError(
            _("{k_min_key} ({k_min}) must not exceed {k_max_key} ({k_max}).").format(
                k_min_key=f"{key}.k_min", k_min=clustering.k_min, k_max_key=f"{key}.k_max", k_max=clustering.k_max)
        )
    if not config.output.csv_path:
        raise BalancedSamplingError(
            _("{key} is required: the training CSV to write.").format(key=f"{ROOT}.output.csv_path"))


def _resolve_paths(config: BalancedDatasetConfig, base_dir: str) -> None:
    output, embeddings = config.output, config.embeddings
    output.csv_path = resolve_path(output.csv_path, base_dir)
    if output.geojson_path:
        output.geojson_path = resolve_path(output.geojson_path, base_dir)
    if embeddings.parquet_path:
        # A trailing separator asks for a partitioned cache (a folder of parts): keep it through normalising.
        folder = str(embeddings.parquet_path).strip().endswith(("/", os.sep))
        embeddings.parquet_path = resolve_path(embeddings.parquet_path, base_dir) + (os.sep if folder else "")
    from .embeddings import SHORT_NAMES

    # A model given as a folder next to the config; hub ids like facebook/dinov2-base stay as they are.
    model = str(embeddings.dino_model or "").strip()
    model_folder = resolve_path(model, base_dir) if model else ""
    if model_folder and os.path.isdir(model_folder):
        embeddings.dino_model = model_folder
    elif (model and model not in SHORT_NAMES and not os.path.isabs(os.path.expanduser(model))
          and os.path.isdir(model) and config.runs_dinov2):
        # 'owner/name' could be a hub id or this folder: never pick a folder of the working directory silently.
        raise BalancedSamplingError(
            _("{key} '{model}' is not a folder next to the config ({folder}), but the working directory ({cwd}) has "
              "a folder of that name. Paths in a config are read relative to the config file, so that folder is "
              "not used: give its path relative to the config, or an absolute path.").format(
                key=f"{ROOT}.embeddings.dino_model", model=model, folder=base_dir, cwd=os.getcwd()))
    elif model.startswith((".", "~")) or "\\" in model or model.count("/") > 1:
        embeddings.dino_model = model_folder  # meant as a folder: a missing one is named by its full path
