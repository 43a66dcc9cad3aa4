"""Patch records from a PostgreSQL tile table (the dataset_explorer ``tiles`` layout).

One row per patch: ``file_path`` (image), ``mask_path``, ``row_off``, ``col_off``,
``patch_size`` and optionally ``class_dist`` (JSON ``{class value: share or pixel
count}``), ``uniqueness_score``, ``class_entropy``, ``nodata_ratio`` and ``id``. Column
names can be mapped. The table is only read:

* identifiers are quoted (``psycopg2.sql.Identifier``), never pasted into the SQL;
* the user's WHERE clause must be one expression (no ``;`` outside quotes, balanced
  parentheses) and runs wrapped as ``SELECT ... FROM t WHERE (<clause>)``, so no second
  statement can be stacked on it;
* the session is read-only, so a clause calling a function that writes fails and
  changes nothing;
* the session has a ``statement_timeout`` (default 600 s), so a slow or hostile clause
  stops on the server, even when the client was killed.

Rows are fetched in batches through a server-side cursor, with progress and cancel: the
count query and each fetch run in a worker thread while the caller polls for cancel, and
a cancel stops the running statement on the server (``connection.cancel()``).
Messages never contain the password.

With ``embedding_column`` (pytorch-smt-tools' ``fetch_embeddings``) the same query also reads each
tile's embedding: pgvector's text form ``'[0.1, 0.2, ...]'`` (a ``vector`` or ``text`` column), or a
``real[]`` / ``double precision[]`` array (psycopg2 gives a list). Each fetched batch becomes a block
of a float32 matrix right away, so no Python float of the whole table is ever held at once.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import threading
import warnings
from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd

from ..contract import DEFAULT_STATEMENT_TIMEOUT, DEFAULT_TILE_COLUMNS
from ..errors import BalancedSamplingError, OperationCanceled, require
from ..i18n import _
from ..progress import Progress, as_progress
from ..records import (
    CLASS_ENTROPY,
    COL_OFF,
    IMAGE_PATH,
    MASK_PATH,
    NODATA_RATIO,
    PATCH_ID,
    PATCH_SIZE,
    ROW_OFF,
    UNIQUENESS_SCORE,
    class_column,
    validate_records,
)

#: Column roles and their default column names (dataset_explorer's tile table).
DEFAULT_COLUMNS = DEFAULT_TILE_COLUMNS
#: Roles the table must have; the others are read when present.
REQUIRED_ROLES = ("file_path", "row_off", "col_off", "patch_size")
#: The table's ``id`` is kept under this name; ``patch_id`` stays the engine's stable id.
SOURCE_ID = "source_id"
#: Output column of each role that is copied as is (class_dist becomes cls_<c> columns).
_OUTPUT_COLUMN = {
    "file_path": IMAGE_PATH,
    "mask_path": MASK_PATH,
    "row_off": ROW_OFF,
    "col_off": COL_OFF,
    "patch_size": PATCH_SIZE,
    "uniqueness_score": UNIQUENESS_SCORE,
    "class_entropy": CLASS_ENTROPY,
    "nodata_ratio": NODATA_RATIO,
    "id": SOURCE_ID,
}
DEFAULT_BATCH_SIZE = 5000
#: Seconds libpq waits for the server before giving up (a wrong host must not hang QGIS).
CONNECT_TIMEOUT = 10
#: Seconds a statement may run on the server before it is stopped (0: no limit).
#: Seconds between two looks at the cancel flag while a statement runs.
CANCEL_POLL_INTERVAL = 0.2
_CURSOR_NAME = "balanced_sampling_tiles"


@dataclass
class TileEmbeddings:
    """The embeddings read from a tile table's ``column``: ``vectors[i]`` (float32, all finite) belongs to
    the tile whose engine id is ``patch_ids[i]`` (the rows of :func:`load_tiles_with_embeddings`' table)."""

    vectors: np.ndarray
    patch_ids: np.ndarray
    column: str

    @property
    def dimension(self) -> int:
        return int(self.vectors.shape[1])

    def for_patches(self, patch_ids) -> np.ndarray:
        """The vectors of ``patch_ids`` (in that order; a patch listed twice in the table has its first row's)."""
        known, first = np.unique(self.patch_ids, return_index=True)
        wanted = np.asarray(patch_ids)
        at = np.searchsorted(known, wanted).clip(0, max(len(known) - 1, 0))
        found = known[at] == wanted if len(known) else np.zeros(len(wanted), bool)
        if not found.all():
            raise BalancedSamplingError(
                _("The patch {patch} has no embedding read from column '{column}'.").format(
                    patch=wanted[int(np.flatnonzero(~found)[0])], column=self.column))
        return self.vectors[first[at]]


def load_tiles(
    connection: Union[Mapping, str],
    table: str = "tiles",
    where_clause: Optional[str] = "",
    columns: Optional[Mapping[str, str]] = None,
    nodata_class: Optional[int] = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Optional[Progress] = None,
    statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
) -> pd.DataFrame:
    """Read the patch records of a tile table.

    Parameters
    ----------
    connection : mapping with ``host``, ``port``, ``dbname`` (or ``database``), ``user``,
        ``password`` (other libpq keywords such as ``sslmode`` are passed on), or a libpq
        connection string / ``postgresql://`` URI.
    table : ``name`` or ``schema.name``.
    where_clause : an SQL boolean expression filtering the rows, e.g. ``nodata_ratio < 0.05``;
        empty for every row.
    columns : role -> column name, overriding :data:`DEFAULT_COLUMNS` for the roles given.
    nodata_class : the class value whose ``class_dist`` share is nodata (left out of the
        proportions); None when there is none.
    batch_size : rows fetched per round trip (one progress step each).
    progress : cancel raises ``OperationCanceled``; a statement running at that moment (the
        count or a fetch) is cancelled on the server, polled every :data:`CANCEL_POLL_INTERVAL` s.
    statement_timeout : seconds any one statement may run on the server (set for the session, so
        it also holds when this process dies); 0 for no limit.

    Returns
    -------
    DataFrame, one row per tile: ``image_path`` (from file_path), ``mask_path``, ``row_off``,
    ``col_off``, ``patch_size`` (int, pixels), ``patch_id`` (the engine's stable id),
    ``source_id`` (the table's id), ``uniqueness_score``, ``class_entropy``, ``nodata_ratio``
    and ``cls_<c>`` (float shares over the non-nodata classes, summing to 1; 0 everywhere when
    a tile has no class_dist) — the optional ones only when the table has them.
    ``nodata_ratio`` comes from class_dist's nodata share when the table has no such column.
    """
    return _load(connection, table, where_clause, columns, nodata_class, batch_size, progress, statement_timeout)[0]


def load_tiles_with_embeddings(
    connection: Union[Mapping, str],
    table: str = "tiles",
    where_clause: Optional[str] = "",
    columns: Optional[Mapping[str, str]] = None,
    embedding_column: str = "embedding",
    nodata_class: Optional[int] = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Optional[Progress] = None,
    statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
) -> tuple[pd.DataFrame, TileEmbeddings]:
    """:func:`load_tiles`, plus every tile's embedding from ``embedding_column``, read by the same query.

    A value is pgvector's text form (``'[0.1, 0.2, ...]'``; ``'{...}'`` too) or an array (``real[]``,
    ``double precision[]``, a JSON list). A NULL, a value that is not a list of numbers, a dimension
    other than the first tile's, or a NaN/infinite component raises :class:`BalancedSamplingError`
    naming the tile (its id when the table has one) and the column, and what to do.
    """
    column = str(embedding_column or "").strip()
    if not column:
        raise BalancedSamplingError(_("The column name for role {role} is empty.").format(role=repr("embedding")))
    return _load(connection, table, where_clause, columns, nodata_class, batch_size, progress, statement_timeout,
                 column)


def _load(connection, table, where_clause, columns, nodata_class, batch_size, progress, statement_timeout,
          embedding_column: Optional[str] = None):
    progress = as_progress(progress)
    if int(batch_size) < 1:
        raise BalancedSamplingError(_("The batch size must be at least 1; got {value}.").format(value=batch_size))
    timeout = _check_statement_timeout(statement_timeout)
    mapping, explicit = column_mapping(columns)
    clause = check_where_clause(where_clause)
    names = table_name_parts(table)
    conn = connect(connection)
    try:
        _set_statement_timeout(conn, timeout)
        info = conn.info
        table_text = _("'{table}' in database '{database}' on {host}:{port}").format(
            table=".".join(names), database=info.dbname, host=info.host, port=info.port)
        wanted = _present_roles(conn, names, mapping, explicit, table_text, progress, embedding_column)
        reader = None
        if embedding_column:
            tile_id = wanted.index("id") if "id" in wanted else None
            reader = EmbeddingReader(embedding_column, lambda row: _tile_name(row, tile_id))
        rows = _fetch(conn, names, [mapping[r] for r in wanted], clause, int(batch_size), table_text, progress,
                      timeout, reader)
    finally:
        conn.close()
    if not rows:
        if clause:
            raise BalancedSamplingError(_("Table {table} has no row matching the where clause {clause}.").format(
                table=table_text, clause=repr(clause)))
        raise BalancedSamplingError(_("Table {table} has no row.").format(table=table_text))
    frame = tiles_frame(pd.DataFrame.from_records(rows, columns=wanted), nodata_class,
                        _("table {table}").format(table=table_text))
    if reader is None:
        return frame, None
    embeddings = TileEmbeddings(reader.matrix(), frame[PATCH_ID].to_numpy(), embedding_column)
    progress.info(_("Read {n} embeddings of {dim} dimensions from column '{column}' of table {table}.").format(
        n=len(embeddings.vectors), dim=embeddings.dimension, column=embedding_column, table=table_text))
    return frame, embeddings


def _tile_name(row: tuple, tile_id: Optional[int]) -> str:
    if tile_id is not None and row[tile_id] is not None:
        return _("the tile with id {id}").format(id=row[tile_id])
    return ""


def column_mapping(columns: Optional[Mapping[str, str]]) -> tuple[dict, set]:
    """(role -> column name, the roles the caller named) from a partial mapping; unknown roles raise."""
    columns = dict(columns or {})
    unknown = sorted(set(columns) - set(DEFAULT_COLUMNS))
    if unknown:
        raise BalancedSamplingError(
            _("Unknown column role(s) {unknown}; the roles are {roles}.").format(
                unknown=", ".join(map(repr, unknown)), roles=", ".join(DEFAULT_COLUMNS))
        )
    empty = [role for role, name in columns.items() if not str(name or "").strip()]
    if empty:
        raise BalancedSamplingError(_("The column name for role {role} is empty.").format(role=repr(empty[0])))
    return {**DEFAULT_COLUMNS, **{role: str(name).strip() for role, name in columns.items()}}, set(columns)


def _check_statement_timeout(seconds) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not np.isfinite(seconds) or seconds < 0:
        raise BalancedSamplingError(
            _("The statement timeout must be a number of seconds >= 0 (0 = no limit); got {value}.").format(
                value=repr(seconds))
        )
    return float(seconds)


def table_name_parts(table: str) -> tuple[str, ...]:
    """``("name",)`` or ``("schema", "name")`` from ``table``; anything else raises."""
    parts = tuple(p.strip() for p in str(table or "").split("."))
    if not 1 <= len(parts) <= 2 or not all(parts):
        raise BalancedSamplingError(_("The table must be 'name' or 'schema.name'; got {value}.").format(
            value=repr(table)))
    return parts


def check_where_clause(clause: Optional[str]) -> str:
    """The stripped clause, or raise if it could be more than one SQL expression.

    Rejects a ``;`` outside quotes and comments (a second statement) and parentheses that
    do not balance (which could close the wrapping ``WHERE (...)``); understands
    ``'...'``, ``E'...'``, ``"..."``, ``$tag$...$tag$``, ``--`` and ``/* */`` comments.
    """
    clause = (clause or "").strip()
    depth, i, n = 0, 0, len(clause)
    while i < n:
        ch = clause[i]
        if ch == "'":
            # E'...' strings take backslash escapes; the E must start a word (not end an identifier).
            e_string = i > 0 and clause[i - 1] in "eE" and (i < 2 or not _word_char(clause[i - 2]))
            i = _end_of_quoted(clause, i, "'", e_string)
        elif ch == '"':
            i = _end_of_quoted(clause, i, '"', False)
        elif ch == "$" and (tag := _dollar_tag(clause, i)):
            end = clause.find(tag, i + len(tag))
            if end < 0:
                raise BalancedSamplingError(
                    _("The where clause has an unterminated {tag} quoted string.").format(tag=tag))
            i = end + len(tag)
        elif clause.startswith("--", i):
            newline = clause.find("\n", i)
            i = n if newline < 0 else newline + 1
        elif clause.startswith("/*", i):
            i = _end_of_block_comment(clause, i)
        else:
            if ch == ";":
                raise BalancedSamplingError(
                    _("The where clause must be a single condition such as \"nodata_ratio < 0.05\"; it holds a ';' "
                      "that would start a second SQL statement. Remove it.")
                )
            depth += (ch == "(") - (ch == ")")
            if depth < 0:
                raise BalancedSamplingError(_("The where clause closes a parenthesis it never opened."))
            i += 1
    if depth:
        raise BalancedSamplingError(_("The where clause leaves a parenthesis open."))
    return clause


def _word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _end_of_quoted(text: str, start: int, quote: str, backslash_escapes: bool) -> int:
    """Index just past the quoted run opening at ``start`` (a doubled quote is an escaped one)."""
    i = start + 1
    while i < len(text):
        if backslash_escapes and text[i] == "\\":
            i += 2
        elif text[i] == quote:
            if text.startswith(quote * 2, i):
                i += 2
            else:
                return i + 1
        else:
            i += 1
    raise BalancedSamplingError(_("The where clause has an unterminated {quote}-quoted text.").format(quote=quote))


def _dollar_tag(text: str, start: int) -> str:
    """The ``$tag$`` opening a dollar-quoted string at ``start``, or "" (``$1`` is a parameter)."""
    end = text.find("$", start + 1)
    tag = text[start + 1 : end] if end > 0 else None
    if tag is None or (tag and (tag[0].isdigit() or not all(map(_word_char, tag)))):
        return ""
    return text[start : end + 1]


def _end_of_block_comment(text: str, start: int) -> int:
    depth, i = 0, start
    while i < len(text):
        if text.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif text.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    raise BalancedSamplingError(_("The where clause has an unterminated /* comment."))


# --------------------------------------------------------------------------- connection


def connect(connection: Union[Mapping, str]):
    """An open, read-only psycopg2 connection; errors never show the password."""
    psycopg2 = require("psycopg2", _("reading tiles from PostgreSQL"), pip_name="psycopg2-binary")
    params = _connection_params(psycopg2, connection)
    params.setdefault("connect_timeout", CONNECT_TIMEOUT)
    password = str(params.get("password") or "")
    try:
        conn = psycopg2.connect(**params)
    except psycopg2.Error as exc:
        raise BalancedSamplingError(
            _("Cannot connect to PostgreSQL (database '{database}' on {host}:{port} as user '{user}'): {error} "
              "Check the host, port, database, user and password.").format(
                database=params.get("dbname", "?"), host=params.get("host", "localhost"), port=params.get("port", 5432),
                user=params.get("user", "?"), error=_scrub(_server_message(exc), password))
        ) from None  # the original exception may carry the connection parameters
    conn.set_session(readonly=True, autocommit=False)
    return conn


def _connection_params(psycopg2, connection) -> dict:
    """libpq keyword arguments from a mapping or a connection string."""
    if isinstance(connection, str):
        try:
            return dict(psycopg2.extensions.parse_dsn(connection))
        except psycopg2.ProgrammingError:
            # The parser's message quotes the string, password included: leave it out.
            raise BalancedSamplingError(
                _("The PostgreSQL connection string is not valid: use key=value pairs such as 'host=localhost "
                  "port=5432 dbname=tiles user=me' or a postgresql://user@host:port/dbname URI.")
            ) from None
    if not isinstance(connection, Mapping):
        raise BalancedSamplingError(
            _("The PostgreSQL connection must be a mapping of parameters or a connection string."))
    params = {k: v for k, v in connection.items() if v is not None and v != ""}
    if "database" in params:
        if "dbname" in params and params["dbname"] != params["database"]:
            raise BalancedSamplingError(_("The connection gives both 'dbname' and 'database'; give one."))
        params["dbname"] = params.pop("database")
    return params


def _set_statement_timeout(conn, seconds: float) -> None:
    """Give the session a ``statement_timeout`` of ``seconds`` (0: no limit)."""
    milliseconds = max(1, round(seconds * 1000)) if seconds > 0 else 0
    with conn.cursor() as cur:
        cur.execute("SELECT set_config('statement_timeout', %s, false)", (str(milliseconds),))
    conn.commit()  # a session setting: it outlives this transaction


def _server_message(exc, lines: int = 2) -> str:
    """The server's primary message of a psycopg2 error, else its first lines, as one sentence."""
    diag = getattr(exc, "diag", None)
    text = (diag and diag.message_primary) or " ".join(str(exc).strip().splitlines()[:lines])
    text = " ".join(text.split())
    return text if text.endswith((".", "?", "!")) else text + "."


def _scrub(text: str, password: str) -> str:
    return text.replace(password, "***") if password else text


# --------------------------------------------------------------------------- queries


def _identifier(names: tuple[str, ...]):
    sql = require("psycopg2.sql", _("reading tiles from PostgreSQL"), pip_name="psycopg2-binary")
    return sql.Identifier(*names)


def _table_columns(conn, names: tuple[str, ...], table_text: str) -> list[str]:
    """The table's column names in order; a missing table raises listing the tables there are."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)::oid", (_identifier(names).as_string(conn),))
        oid = cur.fetchone()[0]
        if oid is None:
            cur.execute(
                "SELECT table_schema || '.' || table_name FROM information_schema.tables "
                "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1 LIMIT 30"
            )
            tables = [row[0] for row in cur.fetchall()]
            raise BalancedSamplingError(
                _("Table {table} does not exist (or is not visible to this user). Tables there: {tables}.").format(
                    table=table_text, tables=", ".join(tables) or _("none"))
            )
        cur.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped "
            "ORDER BY attnum",
            (oid,),
        )
        return [row[0] for row in cur.fetchall()]


def _present_roles(conn, names, mapping: dict, explicit: set, table_text: str, progress: Progress,
                   embedding_column: Optional[str] = None) -> list[str]:
    """The roles to read: every required one (else raise), optional ones whose column exists."""
    existing = _table_columns(conn, names, table_text)
    if embedding_column and embedding_column not in existing:
        raise BalancedSamplingError(
            _("Table {table} has no embedding column '{column}'. Its columns: {existing}. Name the column with "
              "embedding_column, or set fetch_embeddings to false so that DINOv2 computes the embeddings from the "
              "images.").format(table=table_text, column=embedding_column, existing=", ".join(existing)))
    absent = [role for role in DEFAULT_COLUMNS if mapping[role] not in existing]
    fatal = [role for role in absent if role in REQUIRED_ROLES or role in explicit]
    if fatal:
        described = ", ".join(_("'{column}' (role {role})").format(column=mapping[r], role=r) for r in fatal)
        raise BalancedSamplingError(
            _("Table {table} has no column {columns}. Its columns: {existing}. Map the roles to the right column "
              "names.").format(table=table_text, columns=described, existing=", ".join(existing))
        )
    if absent:
        progress.info(_("Table {table} has no optional column {columns}; skipped.").format(
            table=table_text, columns=", ".join(mapping[r] for r in absent)))
    return [role for role in DEFAULT_COLUMNS if role not in absent]


def _cancellable(conn, call, progress: Progress):
    """``call()`` (one blocking psycopg2 statement) in a worker thread; on cancel, stop it on the server.

    The calling thread looks at the cancel flag every :data:`CANCEL_POLL_INTERVAL` seconds; on
    cancel it sends ``conn.cancel()`` (thread-safe), waits for the statement to end and raises
    :class:`OperationCanceled`.
    """
    outcome: dict = {}

    def work():
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the calling thread
            outcome["error"] = exc

    worker = threading.Thread(target=work, name="balanced-sampling-postgres", daemon=True)
    worker.start()
    canceled = False
    while worker.is_alive():
        worker.join(CANCEL_POLL_INTERVAL)
        if worker.is_alive() and not canceled and progress.canceled():
            conn.cancel()
            canceled = True
    if canceled:
        raise OperationCanceled(_("Canceled by the user; the query was stopped on the server and nothing was written."))
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _fetch(conn, names, column_names, clause, batch_size, table_text, progress, timeout=0.0,
           embeddings: Optional["EmbeddingReader"] = None) -> list[tuple]:
    """All matching rows, fetched ``batch_size`` at a time through a server-side cursor.

    With ``embeddings``, its column is selected last and each batch's values go to it (parsed at once),
    not into the rows returned."""
    psycopg2 = require("psycopg2", _("reading tiles from PostgreSQL"), pip_name="psycopg2-binary")
    sql = require("psycopg2.sql", _("reading tiles from PostgreSQL"), pip_name="psycopg2-binary")
    source = sql.SQL("FROM {}").format(_identifier(names))
    if clause:
        # The newline keeps a trailing "-- comment" in the clause from swallowing the parenthesis.
        source = sql.SQL("{} WHERE ({}\n)").format(source, sql.SQL(clause))
    count_query = sql.SQL("SELECT count(*) {}").format(source)
    selected = list(column_names) + ([embeddings.column] if embeddings is not None else [])
    select_query = sql.SQL("SELECT {} {}").format(sql.SQL(", ").join(map(sql.Identifier, selected)), source)
    rows: list[tuple] = []
    try:
        progress.check_canceled()
        with conn.cursor() as cur:
            _cancellable(conn, lambda: cur.execute(count_query), progress)
            total = int(cur.fetchone()[0])
        progress.info(_("Reading {n} tiles from table {table}.").format(n=total, table=table_text))
        with conn.cursor(name=_CURSOR_NAME) as cur:
            cur.itersize = batch_size
            _cancellable(conn, lambda: cur.execute(select_query), progress)  # DECLARE: the fetches do the work
            while batch := _cancellable(conn, lambda: cur.fetchmany(batch_size), progress):
                if embeddings is not None:
                    embeddings.add([row[-1] for row in batch], [row[:-1] for row in batch], total)
                    batch = [row[:-1] for row in batch]
                rows.extend(batch)
                progress.update(len(rows), total)
    except psycopg2.Error as exc:
        raise _query_error(exc, clause, table_text, timeout) from None
    finally:
        with contextlib.suppress(psycopg2.Error):  # read-only: nothing to keep; a dead connection is closed anyway
            conn.rollback()
    return rows


def _query_error(exc, clause: str, table_text: str, timeout: float = 0.0) -> BalancedSamplingError:
    codes = require("psycopg2.errorcodes", _("reading tiles from PostgreSQL"), pip_name="psycopg2-binary")
    detail = _server_message(exc)
    if exc.pgcode == codes.QUERY_CANCELED and timeout > 0:  # not ours: a user cancel raises OperationCanceled
        if clause:
            message = _("Reading table {table} with the where clause {clause} ran longer than {seconds} s (the "
                        "statement timeout), so the server stopped the query. Simplify the where clause or raise the "
                        "statement timeout parameter (seconds, 0 = no limit).")
        else:
            message = _("Reading table {table} ran longer than {seconds} s (the statement timeout), so the server "
                        "stopped the query. Raise the statement timeout parameter (seconds, 0 = no limit).")
        return BalancedSamplingError(message.format(table=table_text, clause=repr(clause), seconds=f"{timeout:g}"))
    if exc.pgcode == codes.READ_ONLY_SQL_TRANSACTION:
        return BalancedSamplingError(
            _("The where clause {clause} tries to change the database: {error} Tiles are read through a read-only "
              "connection, so nothing was changed. Use a plain condition such as \"nodata_ratio < 0.05\".").format(
                clause=repr(clause), error=detail)
        )
    if exc.pgcode == codes.INSUFFICIENT_PRIVILEGE:
        return BalancedSamplingError(_("This user may not read table {table}: {error}").format(
            table=table_text, error=detail))
    if clause:
        return BalancedSamplingError(_("Reading table {table} with the where clause {clause} failed: {error}").format(
            table=table_text, clause=repr(clause), error=detail))
    return BalancedSamplingError(_("Reading table {table} failed: {error}").format(table=table_text, error=detail))


# --------------------------------------------------------------------------- embeddings

#: How PostgreSQL (``real[]``, ``float8[]``) writes NaN; infinities (``Infinity``, ``inf``) parse as numbers.
_NAN_TEXTS = ["NaN", "nan", "-NaN", "-nan"]
#: Brackets around pgvector's text form (``[...]``) and PostgreSQL's array text (``{...}``).
_BRACKETS = {"[": "]", "{": "}"}


class EmbeddingReader:
    """Turns the embedding values of each fetched batch into rows of one float32 matrix.

    ``describe_row(row)`` names a fetched row (a tuple of the other columns) in messages, or gives ""
    (then the row is named by its position). Every tile must have the dimension of the first one.
    """

    def __init__(self, column: str, describe_row: Callable[[tuple], str] = lambda row: ""):
        self.column = column
        self._describe_row = describe_row
        self._matrix: Optional[np.ndarray] = None
        self._filled = 0
        self._first = ""
        self.dimension: Optional[int] = None

    def add(self, values: Sequence, rows: Sequence[tuple], total: int = 0) -> None:
        """Parse one batch: ``values[i]`` is the embedding of the fetched row ``rows[i]``."""
        offset = self._filled

        def name(i: int) -> str:
            return self._describe_row(rows[i]) or _("row {row}").format(row=offset + i + 1)

        block = embedding_block(values, name, self.column, self.dimension, self._first)
        if not len(block):
            return
        if self._matrix is None:
            self.dimension, self._first = int(block.shape[1]), name(0)
            self._matrix = np.empty((max(int(total), len(block)), self.dimension), dtype=np.float32)
        end = self._filled + len(block)
        if end > len(self._matrix):  # more rows than the count said (the table changed in between)
            self._matrix = np.concatenate([self._matrix[: self._filled], block])
        else:
            self._matrix[self._filled : end] = block
        self._filled = end

    def matrix(self) -> np.ndarray:
        """(rows read, dimension) float32."""
        if self._matrix is None:
            return np.empty((0, 0), dtype=np.float32)
        return self._matrix[: self._filled]


def embedding_block(values: Sequence, name: Callable[[int], str], column: str, dimension: Optional[int] = None,
                    first: str = "") -> np.ndarray:
    """(len(values), d) float32 from embedding values: text (``'[0.1, 0.2]'``, ``'{0.1,0.2}'``) or sequences.

    ``name(i)`` names value ``i``'s tile in messages; ``dimension`` (with ``first``, the tile that set it)
    is the dimension every value must have, else the first value's. Text is parsed by numpy's C reader,
    one line per tile, not number by number in Python.
    """
    n = len(values)
    if not n:
        return np.empty((0, dimension or 0), dtype=np.float32)
    for i, value in enumerate(values):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            raise _embedding_error(_("The embedding of {row} in column '{column}' is NULL."), name(i), column,
                                   null=True)
    texts = np.fromiter((isinstance(v, str) for v in values), dtype=bool, count=n)
    text_rows, other_rows = np.flatnonzero(texts), np.flatnonzero(~texts)
    inners, dims = [], np.empty(n, dtype=np.int64)
    for i in text_rows:
        inner = _unbracket(values[i])
        if inner is None:
            raise _unparsable(values[i], name(i), column)
        inners.append(inner)
        dims[i] = inner.count(",") + 1 if inner.strip() else 0
    for i in other_rows:
        value = values[i]
        if isinstance(value, (bytes, bytearray, memoryview, Mapping)) or not hasattr(value, "__len__"):
            raise _unparsable(value, name(i), column)
        dims[i] = len(value)
    empty = np.flatnonzero(dims == 0)
    if len(empty):
        raise _unparsable(values[int(empty[0])], name(int(empty[0])), column)
    expected = dimension if dimension is not None else int(dims[0])
    first = first if dimension is not None else name(0)
    wrong = np.flatnonzero(dims != expected)
    if len(wrong):
        i = int(wrong[0])
        for j in (0, i) if dimension is None else (i,):  # a nested array counts its commas: not a vector
            if texts[j] and any(bracket in values[j].strip()[1:-1] for bracket in "[]{}"):
                raise _unparsable(values[j], name(j), column)
        raise _embedding_error(
            _("The embedding of {row} in column '{column}' has {n} dimensions, but that of {first} has {d}: every "
              "embedding must come from the same model.").format(
                row=name(i), column=column, n=int(dims[i]), first=first, d=expected), None, column)
    block = np.empty((n, expected), dtype=np.float32)
    if len(text_rows):
        block[text_rows] = _parse_text_rows([values[i] for i in text_rows], inners, text_rows, name, column,
                                            expected)
    if len(other_rows):
        block[other_rows] = _parse_sequence_rows([values[i] for i in other_rows], other_rows, name, column)
    finite = np.isfinite(block).all(axis=1)
    if not finite.all():
        i = int(np.flatnonzero(~finite)[0])
        if not texts[i] and any(x is None for x in values[i]):  # numpy reads an array's NULL as NaN
            raise _unparsable(values[i], name(i), column)
        raise _embedding_error(_("The embedding of {row} in column '{column}' holds NaN or infinite values."),
                               name(i), column)
    return block


def _unbracket(text: str) -> Optional[str]:
    """The numbers of ``'[...]'`` / ``'{...}'`` (bare numbers too), or None when the brackets do not close."""
    text = text.strip()
    if text[:1] in _BRACKETS:
        return text[1:-1] if len(text) > 1 and text[-1] == _BRACKETS[text[0]] else None
    return text


def _parse_text_rows(texts, inners, positions, name, column, dimension) -> np.ndarray:
    """The rows of ``inners`` (comma-separated numbers, one tile each) by pandas' C CSV reader.

    Measured here (2 cores): 20 000 tiles x 768 dimensions in about 2.4 s as pgvector writes them (float4,
    shortest form), 4.4 s with 17-digit values; 1.6x faster than ``np.loadtxt``.
    """
    try:
        with warnings.catch_warnings(), np.errstate(over="ignore"):
            # a component too large for float32 becomes inf, which is then reported as such
            warnings.simplefilter("ignore", RuntimeWarning)
            parsed = pd.read_csv(io.StringIO("\n".join(inners)), header=None, dtype=np.float32, engine="c",
                                 quoting=csv.QUOTE_NONE, keep_default_na=False, na_values=_NAN_TEXTS,
                                 skip_blank_lines=False).to_numpy()
    except (ValueError, pd.errors.ParserError):
        parsed = None
    if parsed is not None and parsed.shape == (len(inners), dimension):
        return parsed
    for j, inner in enumerate(inners):  # the error path only: find the tile at fault
        if not all(_is_number(part) for part in inner.split(",")):
            raise _unparsable(texts[j], name(int(positions[j])), column)
    raise _unparsable(texts[0], name(int(positions[0])), column)


def _is_number(text: str) -> bool:
    text = text.strip()
    try:
        float(text)
    except ValueError:
        return False
    return "_" not in text  # Python reads 1_000; PostgreSQL and pgvector never write it


def _parse_sequence_rows(arrays, positions, name, column) -> np.ndarray:
    try:
        with np.errstate(over="ignore"):
            parsed = np.array(arrays, dtype=np.float32)
        if parsed.ndim == 2:
            return parsed
    except (TypeError, ValueError):
        pass
    for j, value in enumerate(arrays):  # the error path only: find the tile at fault
        try:
            ok = np.asarray(value, dtype=np.float32).ndim == 1
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise _unparsable(value, name(int(positions[j])), column)
    raise _unparsable(arrays[0], name(int(positions[0])), column)


def _unparsable(value, row: str, column: str) -> BalancedSamplingError:
    shown = repr(value) if not isinstance(value, (list, tuple)) else repr(list(value)[:6])
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return _embedding_error(
        _("The embedding of {row} in column '{column}' is not a list of numbers: {value}. Expected pgvector's text "
          "form such as '[0.1, 0.2, ...]' or an array such as real[].").format(row=row, column=column, value=shown),
        None, column)


def _embedding_error(message: str, row: Optional[str], column: str, null: bool = False) -> BalancedSamplingError:
    """``message`` (formatted here when ``row`` is given) and what to do about it."""
    if row is not None:
        message = message.format(row=row, column=column)
    if null:
        remedy = _("Fill the column for every tile, leave such tiles out with a where_clause such as "
                   "\"{column} IS NOT NULL\", or set fetch_embeddings to false so that DINOv2 computes the embeddings "
                   "from the images.").format(column=column)
    else:
        remedy = _("Fill the column with valid embeddings, leave such tiles out with a where_clause, or set "
                   "fetch_embeddings to false so that DINOv2 computes the embeddings from the images.")
    return BalancedSamplingError(f"{message} {remedy}")


# --------------------------------------------------------------------------- rows -> patch table


def tiles_frame(frame: pd.DataFrame, nodata_class: Optional[int] = 0, source: Optional[str] = None) -> pd.DataFrame:
    """The engine's patch table from rows keyed by role (see :data:`DEFAULT_COLUMNS`); ``source`` names the rows
    in messages (already translated; default "the tile table")."""
    source = _("the tile table") if source is None else source
    _check_required(frame, source)
    out = pd.DataFrame({_OUTPUT_COLUMN[role]: frame[role] for role in frame.columns if role in _OUTPUT_COLUMN})
    for column in (UNIQUENESS_SCORE, CLASS_ENTROPY, NODATA_RATIO):
        if column in out.columns:
            out[column] = pd.to_numeric(out[column], errors="coerce").astype(np.float64)
    if "class_dist" in frame.columns:
        shares, nodata = class_dist_shares(frame["class_dist"], nodata_class, _row_names(frame))
        if NODATA_RATIO not in out.columns and nodata is not None:
            out[NODATA_RATIO] = nodata
        out = pd.concat([out, shares], axis=1)
    out = validate_records(out, required=(IMAGE_PATH, ROW_OFF, COL_OFF, PATCH_SIZE), source=source)
    first = [c for c in (IMAGE_PATH, MASK_PATH, ROW_OFF, COL_OFF, PATCH_SIZE, PATCH_ID, SOURCE_ID) if c in out.columns]
    return out[first + [c for c in out.columns if c not in first]]


def class_dist_shares(values: pd.Series, nodata_class: Optional[int], row_names: list[str]):
    """(``cls_<c>`` shares DataFrame, nodata share array or None) from ``class_dist`` values.

    Each value is a JSON object (a dict, or its text) mapping class values to shares or
    pixel counts, or NULL. Shares are renormalised over the non-nodata classes (a row with
    none is all 0). When any row lists the nodata class, class_dist is taken to list every
    class present: the nodata share is that class's part of the row's total (0 when the row
    does not list it, NaN for NULL); otherwise it is unknown (None).
    """
    dists = [_parse_class_dist(value, name) for value, name in zip(values, row_names)]
    classes = sorted({c for d in dists for c in d if c != nodata_class})
    counts = np.array([[d.get(c, 0.0) for c in classes] for d in dists], dtype=np.float64).reshape(len(dists), -1)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    frame = pd.DataFrame(shares, index=values.index, columns=[class_column(c) for c in classes])
    if nodata_class is None or not any(nodata_class in d for d in dists):
        return frame, None
    nodata = np.array([d.get(nodata_class, 0.0) for d in dists])
    everything = np.array([sum(d.values()) for d in dists])
    return frame, np.divide(nodata, everything, out=np.full(len(dists), np.nan), where=everything > 0)


def _parse_class_dist(value, name: str) -> dict:
    """``{class value (int): share or count (float)}`` of one class_dist value; errors name the row."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return {}
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise BalancedSamplingError(
                _("class_dist of {row} is not valid JSON ({error}): {value}.").format(
                    row=name, error=exc, value=repr(str(value)[:80]))
            ) from None
    if not isinstance(value, dict):
        raise BalancedSamplingError(
            _("class_dist of {row} must be a JSON object {{class value: share or pixel count}}; got {value}.").format(
                row=name, value=repr(str(value)[:80]))
        )
    parsed = {}
    for key, share in value.items():
        try:
            cls = int(str(key).strip())
        except ValueError:
            cls = -1
        if cls < 0:
            raise BalancedSamplingError(
                _("class_dist of {row} has the key {key}; class values are integers >= 0.").format(
                    row=name, key=repr(key)))
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not np.isfinite(share) or share < 0:
            raise BalancedSamplingError(
                _("class_dist of {row} gives class {key} the value {value}; expected a number >= 0.").format(
                    row=name, key=key, value=repr(share))
            )
        parsed[cls] = float(share)
    return parsed


def _row_names(frame: pd.DataFrame) -> list[str]:
    if "id" in frame.columns:
        return [_("the tile with id {id}").format(id=v) for v in frame["id"]]
    return [_("row {row}").format(row=i + 1) for i in range(len(frame))]


def _check_required(frame: pd.DataFrame, source: str) -> None:
    names = _row_names(frame)
    for role in REQUIRED_ROLES + (("mask_path",) if "mask_path" in frame.columns else ()):
        empty = frame[role].isna().to_numpy()
        if empty.any():
            raise BalancedSamplingError(_("{row} of {source} has no {role} (NULL).").format(
                row=names[int(np.flatnonzero(empty)[0])], source=source, role=role))
