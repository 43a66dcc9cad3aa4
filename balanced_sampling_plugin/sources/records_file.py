"""Patch records from a file: a CSV table or a pytorch-smt-tools ``balanced_dataset`` YAML config.

A CSV has one row per patch with the columns ``image_path, mask_path, row_off, col_off,
patch_size`` (the training CSV's ``image``/``mask`` are accepted for the paths); other
columns are kept. A YAML config holds the same records as a list of mappings under
``balanced_dataset.input.patch_records`` (or there names a CSV file). Relative raster
paths resolve against the folder of the file that names them.
"""

from __future__ import annotations

import difflib
import os
import re
from typing import Callable, Optional

import numpy as np
import pandas as pd

from ..errors import BalancedSamplingError, require
from ..i18n import N_, _
from ..records import IMAGE_PATH, MASK_PATH, PATCH_SIZE, RECORD_COLUMNS, WINDOW_COLUMNS, validate_records

#: Column names of the training CSV (pytorch-smt-tools) accepted for the engine's path columns.
COLUMN_ALIASES = {"image": IMAGE_PATH, "mask": MASK_PATH}
CSV_EXTENSIONS = (".csv",)
YAML_EXTENSIONS = (".yaml", ".yml")
#: Where a config keeps its records (dotted path, for messages).
RECORDS_KEY = "balanced_dataset.input.patch_records"
#: What a records CSV must look like, said whenever a file seems to be written another way.
CSV_FORMAT = N_("the records CSV must be comma-separated (',') with '.' as decimal mark")  # shown as _(CSV_FORMAT)
#: A number written with a decimal comma (or a thousands comma), e.g. "0,5" or "-12,75".
_DECIMAL_COMMA = re.compile(r"^\s*[-+]?\d+,\d+\s*$")
_PLAIN_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


def resolve_path(path, base_dir: str) -> str:
    """``path`` with ``~`` expanded, made absolute against ``base_dir`` when relative, normalised."""
    expanded = os.path.expanduser(str(path).strip())
    return os.path.normpath(expanded if os.path.isabs(expanded) else os.path.join(base_dir, expanded))


def read_yaml_file(path: str):
    """The parsed content of a YAML file; errors name the file and the line."""
    yaml = require("yaml", _("reading YAML configs"), pip_name="PyYAML")
    if not os.path.isfile(path):
        raise BalancedSamplingError(_("The file {path} does not exist.").format(path=path))
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        if mark is not None:
            message = _("{path} is not valid YAML (line {line}, column {column}): {problem}.").format(
                path=path, line=mark.line + 1, column=mark.column + 1, problem=problem)
        else:
            message = _("{path} is not valid YAML: {problem}.").format(path=path, problem=problem)
        raise BalancedSamplingError(message) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise BalancedSamplingError(_("Cannot read {path}: {error}").format(path=path, error=exc)) from exc


def read_patch_records(path) -> pd.DataFrame:
    """The patch table held by a CSV file or a ``balanced_dataset`` YAML config.

    Returns a validated table (see :func:`~balanced_sampling_plugin.records.validate_records`):
    absolute ``image_path``/``mask_path``, integer windows (pixels), a ``patch_id``, and any
    other column of the file. Raises :class:`BalancedSamplingError` naming the file, the
    row (CSV line or YAML list entry) and the bad key or value.
    """
    path = os.path.abspath(os.fspath(path))
    extension = os.path.splitext(path)[1].lower()
    if extension in CSV_EXTENSIONS:
        return records_from_csv(path)
    if extension in YAML_EXTENSIONS:
        config = read_yaml_file(path)
        entries = _dig(config, RECORDS_KEY.split("."), path)
        return records_from_entries(entries, path, os.path.dirname(path))
    raise BalancedSamplingError(
        _("Cannot read patch records from {path}: expected a CSV ({csv}) or a YAML config ({yaml}) holding {key}.")
        .format(path=path, csv=", ".join(CSV_EXTENSIONS), yaml=", ".join(YAML_EXTENSIONS), key=RECORDS_KEY)
    )


def records_files(path) -> list[str]:
    """The files :func:`read_patch_records` reads for ``path``: the file itself, and the CSV a
    YAML config's ``patch_records`` names (for the path checks before any output is written)."""
    path = os.path.abspath(os.fspath(path))
    files = [path]
    if os.path.splitext(path)[1].lower() in YAML_EXTENSIONS and os.path.isfile(path):
        try:
            entries = _dig(read_yaml_file(path), RECORDS_KEY.split("."), path)
        except BalancedSamplingError:
            return files  # read_patch_records will say what is wrong
        if isinstance(entries, str):
            files.append(resolve_path(entries, os.path.dirname(path)))
    return files


def records_from_entries(entries, source: str, base_dir: str) -> pd.DataFrame:
    """The patch table of a config's ``patch_records`` value.

    ``entries`` is a list of mappings (one per patch), the path of a CSV file (relative to
    ``base_dir``), or a DataFrame; ``source`` names the config in messages.
    """
    if isinstance(entries, pd.DataFrame):
        return _checked(entries, base_dir, source, lambda i: _("{source}, {key} row {row}").format(
            source=source, key=RECORDS_KEY, row=i))
    if isinstance(entries, str):
        return records_from_csv(resolve_path(entries, base_dir))
    if not isinstance(entries, list) or not entries:
        raise BalancedSamplingError(
            _("{source}: {key} must be a non-empty list of patches (mappings with {columns}) or the path of a CSV "
              "file; got {value}.").format(source=source, key=RECORDS_KEY, columns=", ".join(RECORD_COLUMNS),
                                           value=_short(entries))
        )
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise BalancedSamplingError(
                _("{source}: {key}[{number}] must be a mapping with {columns}; got {value}.").format(
                    source=source, key=RECORDS_KEY, number=number, columns=", ".join(RECORD_COLUMNS),
                    value=_short(entry))
            )
        missing = [column for column in WINDOW_COLUMNS if column not in entry]
        if missing:  # a misspelt key (patchsize:) would otherwise surface as "'patch_size' is nan"
            unknown = [str(k) for k in entry if COLUMN_ALIASES.get(str(k), str(k)) not in RECORD_COLUMNS]
            close = difflib.get_close_matches(missing[0], unknown, n=1, cutoff=0.6)
            raise BalancedSamplingError(
                _("{source}: {key}[{number}] has no '{missing}' key{suggestion}; every patch needs {columns}.").format(
                    source=source, key=RECORDS_KEY, number=number, missing=missing[0],
                    suggestion=_(" (did you mean '{key}'?)").format(key=close[0]) if close else "",
                    columns=", ".join(RECORD_COLUMNS)))
    frame = pd.DataFrame.from_records(entries)
    return _checked(frame, base_dir, source, lambda i: f"{source}, {RECORDS_KEY}[{i}]")


def records_from_csv(path: str) -> pd.DataFrame:
    """The patch table of a CSV file (header row, comma separated); see :func:`read_patch_records`."""
    if not os.path.isfile(path):
        raise BalancedSamplingError(_("The patch records file {path} does not exist.").format(path=path))
    try:
        frame = pd.read_csv(path, dtype={IMAGE_PATH: str, MASK_PATH: str, "image": str, "mask": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        hint = _separator_hint(path)
        detail = str(exc).strip().rstrip(".")
        message = _("Cannot read the CSV file {path}: {error}.").format(path=path, error=detail)
        raise BalancedSamplingError(f"{message} {hint}" if hint else message) from exc
    columns = {COLUMN_ALIASES.get(str(c), str(c)) for c in frame.columns}
    missing = [c for c in RECORD_COLUMNS if c not in columns]
    hint = _separator_hint(path) if missing else None
    if hint:
        raise BalancedSamplingError(
            _("{path}: no {missing} column (the header was read as {header}).").format(
                path=path, missing=", ".join(repr(m) for m in missing),
                header=", ".join(repr(str(c)) for c in frame.columns)) + " " + hint
        )

    def locate(row: int) -> str:  # data row i is on line i + 2 of the file (line 1 is the header)
        return _("{path}, line {line}").format(path=path, line=row + 2)

    _refuse_decimal_commas(frame, locate)
    return _checked(frame, os.path.dirname(path), path, locate)


def _separator_hint(path: str) -> Optional[str]:
    """What to tell about a CSV whose first line holds ';' or tabs (a spreadsheet's export), else None."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            header = handle.readline()
    except OSError:
        return None
    semicolons, tabs = header.count(";"), header.count("\t")
    if not semicolons and not tabs:
        return None
    if semicolons >= tabs:
        message = _("The file seems to be separated by ';' (its first line holds ';'), probably with decimal commas; "
                    "{format}. Export it again with ',' as field separator and '.' as decimal mark.")
    else:
        message = _("The file seems to be separated by tabs (its first line holds tabs), probably with decimal "
                    "commas; {format}. Export it again with ',' as field separator and '.' as decimal mark.")
    return message.format(format=_(CSV_FORMAT))


def _refuse_decimal_commas(frame: pd.DataFrame, locate: Callable[[int], str]) -> None:
    """Raise when a text column holds numbers only, some written with a decimal comma (e.g. "0,5").

    pandas keeps such a column as text, and every later stage would read it as NULL.
    """
    for column in frame.columns:
        values = frame[column]
        if column in (IMAGE_PATH, MASK_PATH, *COLUMN_ALIASES) or pd.api.types.is_numeric_dtype(values):
            continue
        text = values.dropna().astype(str)
        text = text[text.str.strip() != ""]
        comma = text.str.match(_DECIMAL_COMMA)
        if comma.any() and (comma | text.str.match(_PLAIN_NUMBER)).all():
            first = comma.index[comma.to_numpy()][0]
            raise BalancedSamplingError(
                _("{where}: '{field}' is {value}, a number with a decimal comma; {format}. Export the file again "
                  "with '.' as decimal mark.").format(where=locate(values.index.get_loc(first)), field=column,
                                                      value=repr(text[first]), format=_(CSV_FORMAT))
            )


def _merge_aliases(frame: pd.DataFrame, locate: Callable[[int], str]) -> pd.DataFrame:
    """Fold the training CSV's ``image``/``mask`` into ``image_path``/``mask_path`` (one per row)."""
    for alias, column in COLUMN_ALIASES.items():
        if alias not in frame.columns:
            continue
        if column in frame.columns:
            both = (frame[alias].notna() & frame[column].notna()).to_numpy()
            if both.any():
                raise BalancedSamplingError(
                    _("{where}: both '{alias}' and '{field}' are given; keep one.").format(
                        where=locate(int(np.flatnonzero(both)[0])), alias=alias, field=column)
                )
            frame[column] = frame[column].where(frame[column].notna(), frame[alias])
        else:
            frame[column] = frame[alias]
        frame = frame.drop(columns=alias)
    return frame


def _checked(frame: pd.DataFrame, base_dir: str, source: str, locate: Callable[[int], str]) -> pd.DataFrame:
    """Check every row of ``source`` (a row is named by ``locate(row number)``), resolve paths, validate."""
    frame = _merge_aliases(frame.reset_index(drop=True), locate)
    missing = [c for c in RECORD_COLUMNS if c not in frame.columns]
    if missing:
        raise BalancedSamplingError(
            _("{source}: no {missing} key; each patch needs {columns} (the training CSV's 'image'/'mask' are "
              "accepted for the paths). Found: {found}.").format(
                source=source, missing=", ".join(repr(m) for m in missing), columns=", ".join(RECORD_COLUMNS),
                found=", ".join(map(str, frame.columns)) or _("nothing"))
        )
    if len(frame) == 0:
        raise BalancedSamplingError(_("{source} holds no patch.").format(source=source))
    for column in (IMAGE_PATH, MASK_PATH):
        values = frame[column]
        empty = values.isna() | (values.astype(str).str.strip() == "")
        if empty.any():
            raise BalancedSamplingError(_("{where}: '{field}' is empty.").format(
                where=locate(int(np.flatnonzero(empty)[0])), field=column))
        frame[column] = [resolve_path(p, base_dir) for p in values]
    for column in WINDOW_COLUMNS:
        numbers = pd.to_numeric(frame[column], errors="coerce")
        smallest = 1 if column == PATCH_SIZE else 0
        bad = numbers.isna() | (numbers != np.floor(numbers)) | (numbers < smallest)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            value = frame[column].iloc[row]
            message = (_("{where}: '{field}' is {value}; expected a positive integer (pixels).")
                       if column == PATCH_SIZE else
                       _("{where}: '{field}' is {value}; expected a non-negative integer (pixels)."))
            message = message.format(where=locate(row), field=column, value=repr(value))
            if isinstance(value, str) and _DECIMAL_COMMA.match(value):
                message += " " + _("It looks like a decimal comma: {format}.").format(format=_(CSV_FORMAT))
            raise BalancedSamplingError(message)
    return validate_records(frame, source=source)


def _dig(config, keys: list[str], path: str):
    """``config[k1][k2]...``; a missing level raises naming the dotted key and what was found."""
    node = config
    for depth, key in enumerate(keys):
        if not isinstance(node, dict) or key not in node:
            where = ".".join(keys[:depth]) or _("the top level")
            found = ", ".join(map(str, node)) if isinstance(node, dict) and node else _("nothing")
            raise BalancedSamplingError(
                _("{path} has no {key} (found under {where}: {found}); a patch records config holds the patches "
                  "under {records_key}.").format(path=path, key=".".join(keys[: depth + 1]), where=where,
                                                 found=found, records_key=RECORDS_KEY)
            )
        node = node[key]
    return node


def _short(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."

