"""The pool's DINOv2 embeddings, read from the embedding cache Parquet (:mod:`..embedding_cache`).

The cache holds one row per (patch, model): ``patch_key`` is :func:`~balanced_sampling_plugin.records.patch_id`
of the normalised image path and the window, ``model`` the identity of the model and of how pixels reached
it, ``image_state`` the image file's size, modification time and digest when its pixels were read (an image
whose time changed but not its bytes still agrees, :func:`~balanced_sampling_plugin.embedding_cache.agreeing_states`).
Rows are joined to
the table by that key; the model is the one given, or the only one the file holds for these patches. A vector
of an image that changed since is refused where the image is present; where it is not (the coreset may run on
a machine without the images), or for a row without a state (an older cache), the vector is taken as it is.
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np
import pandas as pd

from ..embedding_cache import EMBEDDING, KEY, MODEL, STATE, agreeing_states, image_state
from ..errors import BalancedSamplingError, require
from ..i18n import _
from ..records import (
    COL_OFF,
    IMAGE_PATH,
    PATCH_SIZE,
    ROW_OFF,
    describe_patch,
    normalize_path,
    patch_ids,
    validate_records,
)

#: Missing patches named in the error (the rest counted).
SHOWN_MISSING = 5


def _model_matches(identity: str, model: str) -> bool:
    return identity == model or identity.startswith(model + "|")


def load_embeddings(table: pd.DataFrame, parquet_path, model: Optional[str] = None,
                    column: str = EMBEDDING) -> np.ndarray:
    """(len(table), D) float32 embeddings of the table's patches, in row order.

    ``parquet_path``: the cache file, or the folder of a partitioned cache. Raises :class:`BalancedSamplingError`
    when the file or the column is missing, when the file holds several
    models for these patches and ``model`` does not pick one, naming the patches that have no embedding, or
    naming the patches whose image changed after their embedding was computed: a row's ``image_state`` (file
    size and modification time when the pixels were read) differs from the image's state now. Where a patch's
    image is not present on this machine, or its row has no state (a cache written before the column existed),
    the vector is accepted unchecked: the coreset may run where the images are not.
    """
    parquet_dataset = require("pyarrow.dataset", _("the embedding cache (parquet)"), pip_name="pyarrow")
    path = os.fspath(parquet_path or "")
    if not path or not (os.path.isfile(path) or os.path.isdir(path)):
        raise BalancedSamplingError(
            _("The embedding cache '{path}' does not exist. Run '{algorithm}' with this Parquet file first, or give "
              "the file it wrote.").format(path=path, algorithm=_("Compute DINOv2 uniqueness")))
    records = validate_records(table, required=(IMAGE_PATH, ROW_OFF, COL_OFF, PATCH_SIZE))
    keys = patch_ids(records).to_numpy()
    try:
        # A single file or a partitioned cache (a folder of parts, read in name = time order).
        dataset = parquet_dataset.dataset(path, format="parquet")
        if os.path.isdir(path):
            # Parts written before and after the image_state column: every column, null where a part lacks it.
            pa = require("pyarrow", _("the embedding cache (parquet)"))
            schema = pa.unify_schemas([fragment.physical_schema for fragment in dataset.get_fragments()])
            dataset = parquet_dataset.dataset(path, format="parquet", schema=schema)
        names = dataset.schema.names
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise BalancedSamplingError(_("Cannot read the embedding cache '{path}': {error}").format(
            path=path, error=exc)) from exc
    missing_columns = [c for c in (KEY, MODEL, column) if c not in names]
    if missing_columns:
        raise BalancedSamplingError(
            _("The embedding cache '{path}' has no column {columns}; its columns: {available}.").format(
                path=path, columns=", ".join(missing_columns), available=", ".join(names)))
    has_states = STATE in names
    frame = dataset.to_table(columns=[KEY, MODEL, column] + ([STATE] if has_states else [])).to_pandas()
    frame = frame[frame[KEY].isin(set(keys))]
    # Each image's state here (None: absent on this machine), one stat per image.
    state_of = {p: image_state(normalize_path(p)) for p in pd.unique(records[IMAGE_PATH])}
    here = pd.Series(records[IMAGE_PATH].map(state_of).to_numpy(dtype=object), index=keys)
    here = here[~here.index.duplicated()]
    image_of = pd.Series([normalize_path(p) for p in records[IMAGE_PATH]], index=keys, dtype=object)
    image_of = image_of[~image_of.index.duplicated()]
    identities = sorted(frame[MODEL].dropna().unique().tolist())
    if model:
        chosen = [m for m in identities if _model_matches(m, model)]
        if not chosen:
            raise BalancedSamplingError(
                _("The embedding cache '{path}' holds no embedding of model '{model}' for these patches; it holds: "
                  "{models}.").format(path=path, model=model, models=", ".join(identities) or _("none")))
    else:
        chosen = identities
    if len(chosen) > 1:
        raise BalancedSamplingError(
            _("The embedding cache '{path}' holds embeddings of several models for these patches: {models}. Name "
              "the model to use.").format(path=path, models="; ".join(chosen)))
    rows = frame[frame[MODEL] == chosen[0]] if chosen else frame.iloc[:0]
    if has_states and len(rows):
        # A key with several rows (a partitioned cache keeps the row an image change replaced): one of the image's
        # current state wins, then the later one.
        stored = rows[STATE].to_numpy(dtype=object)
        current = agreeing_states(stored, here.reindex(rows[KEY]).to_numpy(dtype=object),
                                  image_of.reindex(rows[KEY]).to_numpy(dtype=object))[0]
        rows = rows.iloc[np.argsort(current, kind="stable")]
    rows = rows.drop_duplicates(KEY, keep="last").set_index(KEY)
    position = pd.Index(rows.index).get_indexer(keys)
    absent = np.flatnonzero(position < 0)
    if len(absent):
        shown = "; ".join(describe_patch(records, records.index[i]) for i in absent[:SHOWN_MISSING])
        more = len(absent) - SHOWN_MISSING
        raise BalancedSamplingError(
            _("{n} of {total} patches have no embedding in '{path}': {patches}{more}. Run '{algorithm}' on these "
              "patches with this Parquet file first.").format(
                n=len(absent), total=len(keys), path=path, patches=shown,
                more=_(" and {n} more").format(n=more) if more > 0 else "",
                algorithm=_("Compute DINOv2 uniqueness")))
    if has_states:
        stored = rows[STATE].to_numpy(dtype=object)[np.maximum(position, 0)]
        now = here.reindex(keys).to_numpy(dtype=object)
        agree = agreeing_states(stored, now, image_of.reindex(keys).to_numpy(dtype=object))[0]
        changed = np.flatnonzero(~pd.isna(stored) & ~pd.isna(now) & ~agree)
        if len(changed):
            shown = "; ".join(describe_patch(records, records.index[i]) for i in changed[:SHOWN_MISSING])
            more = len(changed) - SHOWN_MISSING
            raise BalancedSamplingError(
                _("The image of {n} of {total} patches changed after its embedding was computed (the file's size, "
                  "or its modification time and content, differ from when it was read): {patches}{more}. Re-run "
                  "'{algorithm}' with this cache '{path}' to compute their embeddings again.").format(
                    n=len(changed), total=len(keys), patches=shown,
                    more=_(" and {n} more").format(n=more) if more > 0 else "",
                    algorithm=_("Compute DINOv2 uniqueness"), path=path))
    values = rows[column].to_numpy()[position]
    lengths = {len(v) for v in values}
    if len(lengths) > 1:
        raise BalancedSamplingError(_("The embeddings in '{path}' do not all have the same length ({lengths}).")
                                    .format(path=path, lengths=", ".join(map(str, sorted(lengths)))))
    return np.asarray(np.stack(values) if len(values) else np.zeros((0, 0)), dtype=np.float32)
