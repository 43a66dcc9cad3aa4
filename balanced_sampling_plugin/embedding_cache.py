"""Parquet cache of patch embeddings, so a re-run only computes the patches it has not seen.

File layout: one row per (patch, model), columns

- ``patch_key`` (string): :func:`records.patch_id` of the normalised image path + window,
- ``model`` (string): the identity of the model and of how pixels reach it
  (:func:`~balanced_sampling_plugin.embeddings.cache_identity`: resolved model name, weights fingerprint, bands,
  stretch, precision),
- ``embedding`` (list<float32>): the CLS embedding,
- ``image_state`` (string, may be null): the image file's state when its pixels were read, :func:`image_state`
  (``"<size>:<mtime_ns>"``), followed by ``":<digest>"``, the BLAKE2b-128 digest of the file's bytes
  (:func:`with_digests`). Files written before this column existed lack it; they are read as all null.

Semantics:

- A lookup returns only rows whose key AND model match and whose length is the model's
  dimension; shorter/longer rows are stale and recomputed.
- A lookup given the images' current states (as :func:`~balanced_sampling_plugin.embeddings.extract_embeddings`
  does) returns only rows whose ``image_state`` agrees with the state of the key's image now: an image rewritten
  in place (its size, or its time and bytes, changed) is recomputed, as is a row with no state (an older cache),
  and the new row replaces the old one. The state is taken before the pixels are read, so an image changed
  during a run is recomputed by the next one. An image whose time changed but not its size (``touch``, a copy
  that does not keep times, a tile regenerated with the same bytes) is read once to compare its digest with
  the stored one (:func:`agreeing_states`): the same bytes reuse the row (rewritten with the new time, so the
  next run does not read the file again), other bytes recompute it. A rewrite that keeps both the size and the
  modification time (e.g. within the time resolution of a coarse file system) is not seen.
- The file may hold several models and patches that are no longer in the table. They are
  kept when the file is rewritten but never returned for another model, so switching
  models back and forth reuses both sets of embeddings and never mixes them.
- A damaged Parquet file (it starts with Parquet's ``PAR1`` signature but cannot be read,
  e.g. truncated) is reported with a warning, not trusted, and replaced by the next write.
  Any other file (a GeoPackage, a CSV, a readable parquet without these columns) is
  someone else's: it is an error, never overwritten. An empty file holds nothing to lose.
- Writes are atomic: a partial file in the same folder, then a rename
  (:class:`~balanced_sampling_plugin.file_safety.OutputFiles`).

Two layouts, read alike:

- a single file (``cache.parquet``): a save merges the new rows and rewrites the file;
- a partitioned dataset (a folder, as Dask and Spark write them: an existing folder, or a new path ending
  in ``/``): each save adds one ``part-<time>-<id>.parquet`` file holding only its new rows, so Dask
  workers write their own partitions side by side and a finished partition is never rewritten. Parts are
  read in name (= time) order, so a later row wins. The folder holds nothing else: a folder with other
  files is someone else's and is refused.
"""

from __future__ import annotations

import os
import time
import uuid

import numpy as np
import pandas as pd

from .errors import BalancedSamplingError, require
from .i18n import _
from .file_safety import FolderOutput, OutputFiles, creation_refused
from .progress import Progress, as_progress

KEY, MODEL, EMBEDDING, STATE = "patch_key", "model", "embedding", "image_state"
#: The first (and last) four bytes of every Parquet file.
PARQUET_MAGIC = b"PAR1"
#: Rows per Arrow chunk when writing (keeps list offsets well inside int32).
WRITE_CHUNK = 100_000
#: File names of a partitioned cache's parts.
PART_PREFIX, PART_SUFFIX = "part-", ".parquet"


def is_partitioned(path) -> bool:
    """Whether the cache at ``path`` is (or will be) a partitioned dataset: an existing folder, or a new path
    written with a trailing separator (``embeddings/``)."""
    text = os.fspath(path)
    return os.path.isdir(text) or (not os.path.exists(text) and text.endswith(("/", os.sep)))


def cache_output(path):
    """What a run writes at the cache ``path``, for the path checks: a
    :class:`~balanced_sampling_plugin.file_safety.FolderOutput` for a partitioned cache (an existing folder is
    added to, not replaced), else the file path itself; None stays None, and so does a read-only cache
    (:func:`is_read_only`: read, never written)."""
    if not path or is_read_only(path):
        return None
    return FolderOutput(os.fspath(path)) if is_partitioned(path) else os.fspath(path)


def is_read_only(path) -> bool:
    """Whether the existing cache at ``path`` (a file, or a partitioned cache's folder) cannot be written: a file
    without write permission, or a folder no file can be created in (:func:`~.file_safety.creation_refused`).
    A team's shared cache on a read-only share is then read and left as it is."""
    path = os.path.abspath(os.fspath(path))
    if not os.path.exists(path):
        return False
    folder = path if os.path.isdir(path) else os.path.dirname(path)
    if not os.path.isdir(path) and not os.access(path, os.W_OK):
        return True
    return creation_refused(folder) is not None


def part_name(tag: str = "") -> str:
    """A new part's file name: the time first (parts sort in the order they were written), then a random id."""
    return f"{PART_PREFIX}{time.time_ns():020d}-{tag or uuid.uuid4().hex[:12]}{PART_SUFFIX}"


def _pyarrow():
    return require("pyarrow", _("the embedding cache (parquet)"))


def _parquet():
    return require("pyarrow.parquet", _("the embedding cache (parquet)"), pip_name="pyarrow")


def _compute():
    return require("pyarrow.compute", _("the embedding cache (parquet)"), pip_name="pyarrow")


def _schema():
    pa = _pyarrow()
    return pa.schema([(KEY, pa.string()), (MODEL, pa.string()), (EMBEDDING, pa.list_(pa.float32())),
                      (STATE, pa.string())])


def image_state(path) -> str | None:
    """The state of the image file at ``path`` (give it normalised, :func:`records.normalize_path`) that a cached
    embedding of it is valid for: ``"<size in bytes>:<modification time in ns>"`` from :func:`os.stat`, or None
    when the file cannot be stat'ed (absent on this machine, no permission)."""
    try:
        stat = os.stat(os.fspath(path))
    except (OSError, ValueError):
        return None
    return f"{stat.st_size}:{stat.st_mtime_ns}"


#: Bytes read at a time to digest an image file.
DIGEST_CHUNK = 4 << 20
#: Digests of image files this process has read: (path, state) -> hex digest (the state names the file version).
_digests: dict = {}


def file_digest(path, state: str | None = None, progress: Progress | None = None) -> str | None:
    """BLAKE2b-128 hex digest of the bytes of the file at ``path``, or None when it cannot be read. With ``state``
    (its :func:`image_state`) the digest is remembered for this process, so one file version is read once.
    Cancel is checked between 4 MiB chunks."""
    key = (os.fspath(path), state)
    if state is not None and key in _digests:
        return _digests[key]
    import hashlib

    progress = as_progress(progress)
    digest = hashlib.blake2b(digest_size=16)
    try:
        with open(os.fspath(path), "rb") as handle:
            while chunk := handle.read(DIGEST_CHUNK):
                progress.check_canceled()
                digest.update(chunk)
    except (OSError, ValueError):
        return None
    if state is not None:
        _digests[key] = digest.hexdigest()
    return digest.hexdigest()


def _size_and_digest(state: str):
    """``"size:mtime[:digest]"`` -> (size, digest or None)."""
    parts = state.split(":")
    return parts[0], parts[2] if len(parts) > 2 else None


def with_digests(states, paths, progress: Progress | None = None) -> np.ndarray:
    """``states`` (m,) of :func:`image_state` with each file's digest appended (``"size:mtime:digest"``), the
    images at ``paths`` (m,) read once each; a None state, or a file that cannot be read, is left as it is."""
    states = np.asarray(states, dtype=object).copy()
    progress = as_progress(progress)
    distinct = {}
    for i, (state, path) in enumerate(zip(states, paths)):
        if state is None or pd.isna(state) or _size_and_digest(state)[1] is not None:  # none, or digested already
            continue
        if path not in distinct:
            digest = file_digest(path, state, progress)
            distinct[path] = None if digest is None else f"{state}:{digest}"
        if distinct[path] is not None:
            states[i] = distinct[path]
    return states


def agreeing_states(stored, current, paths=None, progress: Progress | None = None):
    """Which stored image states (m,) still hold for the images now: ``current`` (m,) their :func:`image_state`
    now, ``paths`` (m,) the image files (for the digest; None: size and time only).

    A stored state agrees when its size and modification time equal the current ones, or when only the time
    differs and the file's bytes have the digest stored with it (the file is read once per version); a missing
    state on either side never agrees.

    Returns
    -------
    agree : (m,) bool
    by_digest : (m,) bool, those that agree through the digest only (their stored state is out of date).
    """
    stored, current = np.asarray(stored, dtype=object), np.asarray(current, dtype=object)
    known = ~pd.isna(stored) & ~pd.isna(current)
    size_and_time = pd.Series(stored, dtype=object).str.extract(r"^([^:]*:[^:]*)", expand=False)
    agree = known & (size_and_time.to_numpy(dtype=object) == current).astype(bool)
    by_digest = np.zeros(len(stored), bool)
    if paths is not None:
        for i in np.flatnonzero(known & ~agree):  # rare: images touched or rewritten since
            if paths[i] is None:
                continue
            size, digest = _size_and_digest(stored[i])
            if digest is not None and size == current[i].split(":")[0]:
                by_digest[i] = agree[i] = file_digest(paths[i], current[i], progress) == digest
    return agree, by_digest


def image_states(paths) -> np.ndarray:
    """:func:`image_state` of each of ``paths`` (m,), as an (m,) object array; each distinct path is stat'ed
    once (many patches share an image)."""
    seen: dict = {}
    states = np.empty(len(paths), dtype=object)
    for i, path in enumerate(paths):
        if path not in seen:
            seen[path] = image_state(path)
        states[i] = seen[path]
    return states


class EmbeddingCache:
    """The embedding rows of one parquet file; :meth:`lookup` reads, :meth:`save` merges and rewrites."""

    def __init__(self, path, progress: Progress | None = None):
        self.path = os.fspath(path)
        self.progress = as_progress(progress)
        self.read_only = is_read_only(self.path)  # then save() stores nothing
        self.outdated = np.zeros(0, dtype=bool)  # set by each lookup: keys found through the digest only
        # A single file is read whole; a partitioned cache part by part at each lookup, so a cache larger than
        # memory is never held at once (only the part being read, and the rows asked for).
        self.partitioned = is_partitioned(self.path)
        self._parts = self._part_paths() if self.partitioned else []
        self._table = None if self.partitioned else self._read()

    def _read(self):
        """The single file's rows as a pyarrow Table with the cache schema, or None (nothing there / unreadable)."""
        if not os.path.exists(self.path) or os.path.getsize(self.path) == 0:
            return None
        return self._read_file(self.path)

    def _part_paths(self) -> list:
        """The parts of a partitioned cache, in name (= time) order; a folder holding other files is refused."""
        if not os.path.isdir(self.path):
            return []
        names = sorted(entry for entry in os.listdir(self.path) if not entry.startswith((".", "_")))
        foreign = [entry for entry in names if not entry.lower().endswith(PART_SUFFIX)
                   or not os.path.isfile(os.path.join(self.path, entry))]
        if foreign:
            raise BalancedSamplingError(
                _("The embedding cache folder '{path}' holds other files ({files}), so it is not a cache of this "
                  "tool and was left as it is. Give an empty or new folder, or a .parquet file name.").format(
                    path=self.path, files=", ".join(foreign[:3]) + (" ..." if len(foreign) > 3 else "")))
        return [os.path.join(self.path, entry) for entry in names if os.path.getsize(os.path.join(self.path, entry))]

    def _read_file(self, path):
        """One Parquet file's rows with the cache schema; None (with a warning) when it cannot be read."""
        pa = _pyarrow()
        if os.path.isdir(path):
            raise BalancedSamplingError(
                _("The embedding cache '{path}' is a folder; give a .parquet file name.").format(path=path))
        with open(path, "rb") as handle:
            signature = handle.read(4)
        if signature != PARQUET_MAGIC:
            raise BalancedSamplingError(
                _("'{path}' is not a Parquet file, so it cannot be the embedding cache; it was left as it is. Choose "
                  "a new file name ending in .parquet for the cache.").format(path=path)
            )
        try:
            table = _parquet().read_table(path)
        except (OSError, pa.ArrowException) as exc:
            self.progress.warning(
                _("The embedding cache '{path}' cannot be read ({error}); it is ignored and will be rewritten with "
                  "freshly computed embeddings.").format(path=path, error=exc)
            )
            return None
        missing = {KEY, MODEL, EMBEDDING} - set(table.column_names)
        if not missing and STATE not in table.column_names:  # written before the column existed: no state
            table = table.append_column(STATE, pa.nulls(table.num_rows, pa.string()))
        if missing:
            raise BalancedSamplingError(
                _("'{path}' is not an embedding cache of this tool (no column {columns}). Choose another parquet "
                  "file name, or delete this one.").format(path=path, columns=", ".join(sorted(missing)))
            )
        try:
            return table.select([KEY, MODEL, EMBEDDING, STATE]).cast(_schema())
        except pa.ArrowException as exc:
            raise BalancedSamplingError(
                _("The embedding cache '{path}' has unexpected column types ({error}). Delete it or choose another "
                  "file.").format(path=path, error=exc)
            ) from exc

    def lookup(self, keys, model: str, dim: int, states=None, paths=None):
        """Cached embeddings of ``keys`` for ``model``.

        Parameters
        ----------
        keys : sequence of str, length m (unique)
        model : resolved model name
        dim : the model's embedding size; rows of another length are stale
        states : sequence of str or None, length m, optional: the :func:`image_state` of each key's image now;
            given, a row is usable only when its ``image_state`` agrees with it (:func:`agreeing_states`; a row
            without one never does)
        paths : sequence of str, length m, optional: each key's image file, read for its digest when only its
            time changed (without: a changed time recomputes)

        Returns
        -------
        found : (m,) bool, which keys have a usable row.
        embeddings : (found.sum(), dim) float32, in the order of the found keys.
        """
        out = np.zeros((len(keys), dim), dtype=np.float32)
        found = self.lookup_into(keys, model, out, states, paths)
        return found, out[found]

    def lookup_into(self, keys, model: str, out, states=None, paths=None) -> np.ndarray:
        """Write the cached embeddings of ``keys`` (m,) for ``model`` into the rows of ``out`` (m, dim) (an array or
        a memory map) and return the (m,) bool mask of the keys found; other rows are left as they are. With
        ``states`` (m,) (and ``paths``, see :meth:`lookup`) only rows of an agreeing image state are used, and the
        log says how many keys had rows of an image that changed since. A partitioned cache is read one part at
        a time. :attr:`outdated` is then the (m,) bool mask of the keys found through their image's digest only,
        whose rows :meth:`save` should rewrite with the new state."""
        keys = pd.Index(keys)
        if states is not None:
            states = np.asarray(states, dtype=object)
            if len(states) != len(keys):
                raise ValueError(_("{n} image states were given for {keys} keys; give one per key.").format(
                n=len(states), keys=len(keys)))
        found = np.zeros(len(keys), dtype=bool)
        self.outdated = np.zeros(len(keys), dtype=bool)
        changed = np.zeros(len(keys), dtype=bool)  # a row of another image state was seen
        unrecorded = np.zeros(len(keys), dtype=bool)  # a row without an image state (an older cache) was seen
        stale = 0
        for table in self._tables():
            stale += self._fill(table, keys, model, out, found, states, changed, unrecorded)
        retry = changed & ~found
        if paths is not None and retry.any():
            # Rows of an image whose time changed: a second pass reads those images' digests (only theirs, so a
            # partitioned cache's older rows of images found above are never read for).
            retry_paths = np.where(retry, np.asarray(paths, dtype=object), None)
            for table in self._tables():
                self._fill(table, keys, model, out, found, states, paths=retry_paths, outdated=self.outdated,
                           progress=self.progress)
        if stale:
            self.progress.info(
                _("{n} cached embeddings of '{model}' do not have {dim} values; recomputing them.").format(
                    n=stale, model=model, dim=out.shape[1])
            )
        # A key recomputed since has a usable row too (a partitioned cache keeps the old one): not counted.
        changed, unrecorded = int((changed & ~found).sum()), int((unrecorded & ~changed & ~found).sum())
        if self.outdated.any():
            self.progress.info(
                _("{n} cached embeddings are of an image whose file time changed but whose bytes did not (compared "
                  "by digest); reused.").format(n=int(self.outdated.sum())))
        if changed:
            self.progress.info(
                _("{n} cached embeddings are of an image that changed since (its file size, or its time and content, "
                  "differ); recomputing them.").format(n=changed))
        if unrecorded:
            self.progress.info(
                _("{n} cached embeddings were written before the cache recorded the state of their image (file size "
                  "and time), so it cannot be told whether the image changed since; recomputing them.").format(
                    n=unrecorded))
        return found

    @staticmethod
    def _fill(table, keys, model, out, found, states=None, changed=None, unrecorded=None, paths=None,
              outdated=None, progress=None) -> int:
        """Rows of ``table`` for ``model`` and ``keys`` (a pandas Index: hashed once for every part) into
        ``out``/``found`` (a later row wins); the number of rows of another length (stale). With ``states``, only
        rows agreeing with the key's image state are used (:func:`agreeing_states`, ``paths`` the keys' images);
        the keys with a row of another state are marked in ``changed``, those with a row without a state in
        ``unrecorded``, those whose row agrees through the digest only in ``outdated``."""
        pa, pc = _pyarrow(), _compute()
        dim = out.shape[1]
        rows = table.filter(pc.equal(table[MODEL], model))
        position = keys.get_indexer(rows[KEY].to_numpy(zero_copy_only=False))
        asked = position >= 0
        lengths = pc.list_value_length(rows[EMBEDDING]).to_numpy(zero_copy_only=False)
        stale = asked & (lengths != dim)
        usable = asked & ~stale
        by_digest = np.zeros(len(position), bool)
        if states is not None and usable.any():
            stored = np.asarray(rows[STATE].to_numpy(zero_copy_only=False), dtype=object)
            wanted = np.full(len(position), None, dtype=object)
            wanted[usable] = states[position[usable]]
            row_paths = None
            if paths is not None:
                row_paths = np.full(len(position), None, dtype=object)
                row_paths[usable] = np.asarray(paths, dtype=object)[position[usable]]
            missing = pd.isna(stored)
            same, by_digest = agreeing_states(np.where(usable, stored, None), wanted, row_paths, progress)
            if changed is not None:
                changed[position[usable & ~missing & ~same]] = True
            if unrecorded is not None:
                unrecorded[position[usable & missing]] = True
            usable &= same
        if not usable.any():
            return int(stale.sum())
        rows, position, by_digest = rows.filter(pa.array(usable)), position[usable], by_digest[usable]
        # A key stored twice: the later row wins.
        last = np.flatnonzero(~pd.Index(position).duplicated(keep="last"))
        if outdated is not None:
            outdated[position[last]] = by_digest[last]
        values = rows[EMBEDDING].combine_chunks().flatten().to_numpy(zero_copy_only=False)
        matrix = values.astype(np.float32, copy=False).reshape(-1, dim)
        out[position[last]] = matrix[last]
        found[position[last]] = True
        return int(stale.sum())

    def models_for(self, keys) -> set:
        """The model identities (the ``model`` column) of the rows of any of ``keys``: what the cache holds for
        those patches under other identities, for the log to say why nothing was reused."""
        pc = _compute()
        wanted = _pyarrow().array(list(keys), _pyarrow().string())
        found: set = set()
        for table in self._tables():
            rows = table.filter(pc.is_in(table[KEY], value_set=wanted))
            found.update(pc.unique(rows[MODEL]).to_pylist())
        return found

    def _tables(self):
        """The readable tables of the cache in order: the single file's, or each part's, read one at a time (so a
        partitioned cache larger than memory is never held at once)."""
        for table in [self._table] if not self.partitioned else self._parts:
            if isinstance(table, str):
                table = self._read_file(table)
            if table is not None:
                yield table

    def save(self, keys, model: str, embeddings, states=None) -> None:
        """Store ``embeddings`` (m, d) of ``keys`` (m,) for ``model``, replacing their old rows; atomic. ``states``
        (m,): the :func:`image_state` of each key's image when its pixels were read (None: not recorded, so the
        rows are never reused by a lookup given states).

        A single file is merged and rewritten; a partitioned cache gets one new part with these rows. A read-only
        cache stores nothing."""
        if self.read_only:
            return
        pa, pc = _pyarrow(), _compute()
        new = cache_rows(keys, model, embeddings, states)
        if self.partitioned:
            self._parts.append(write_part(self.path, new))
            return
        tables = [new]
        if self._table is not None:
            replaced = pc.and_(pc.equal(self._table[MODEL], model), pc.is_in(self._table[KEY], value_set=new[KEY]))
            tables.insert(0, self._table.filter(pc.invert(replaced)))
        table = pa.concat_tables(tables)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        with OutputFiles() as outputs:
            _parquet().write_table(table, outputs.partial(self.path))
            outputs.commit()
        self._table = table


def cache_rows(keys, model: str, embeddings, states=None):
    """The cache table of ``keys`` (m,) and their ``embeddings`` (m, d) for ``model`` (pyarrow Table); ``states``
    (m,) their images' :func:`image_state` (None, or a None in it: not recorded)."""
    pa = _pyarrow()
    keys = pa.array(list(keys), pa.string())
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    if states is None:
        states = pa.nulls(len(keys), pa.string())
    else:
        states = pa.array(list(states), pa.string())
        if len(states) != len(keys):
            raise ValueError(_("{n} image states were given for {keys} keys; give one per key.").format(
                n=len(states), keys=len(keys)))
    return pa.table([keys, pa.array([model] * len(keys), pa.string()), _list_array(embeddings), states],
                    schema=_schema())


def write_part(folder, rows, tag: str = "") -> str:
    """Write ``rows`` (a cache table) as a new part of the partitioned cache ``folder``, atomically; its path."""
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, part_name(tag))
    with OutputFiles() as outputs:
        _parquet().write_table(rows, outputs.partial(path))
        outputs.commit()
    return path


def _list_array(embeddings: np.ndarray):
    """(m, d) float32 -> a list<float32> chunked array, chunked so int32 offsets never overflow."""
    pa = _pyarrow()
    m, dim = embeddings.shape
    chunks = []
    for start in range(0, m, WRITE_CHUNK):
        stop = min(m, start + WRITE_CHUNK)
        offsets = pa.array(np.arange(0, (stop - start) * dim + 1, dim, dtype=np.int32))
        chunks.append(pa.ListArray.from_arrays(offsets, pa.array(embeddings[start:stop].ravel())))
    return pa.chunked_array(chunks, type=pa.list_(pa.float32()))
