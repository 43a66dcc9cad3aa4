"""Tiles from a real, throw-away PostgreSQL server (see tests/postgres_server.py); no QGIS."""

import time

import numpy as np
import pandas as pd
import pytest

from balanced_sampling_plugin.composition import compute_composition, stats_from_proportions
from balanced_sampling_plugin.errors import BalancedSamplingError, OperationCanceled
from balanced_sampling_plugin.mask_stats import compute_mask_stats
from balanced_sampling_plugin.progress import Progress
from balanced_sampling_plugin.records import patch_ids
from balanced_sampling_plugin.sources.postgres import (
    check_where_clause,
    class_dist_shares,
    load_tiles,
    load_tiles_with_embeddings,
)
from tests.postgres_server import postgres_server, tiles_database  # noqa: F401  (pytest fixtures)

# --------------------------------------------------------------------------- pure parts (no server)


@pytest.mark.parametrize(
    "clause",
    ["", "nodata_ratio < 0.05", "file_path LIKE '%;%'", "note = 'it''s; fine'", "x = E'a\\';b'", '"odd;name" = 1',
     "x = $$;$$", "x = $t$ ) ; $t$", "(a OR b) AND c -- trailing; comment", "/* ; ( */ a = 1", "x = $1"],
)
def test_where_clause_single_expressions_pass(clause):
    assert check_where_clause(clause) == clause.strip()


@pytest.mark.parametrize(
    "clause, match",
    [
        ("1=1; DELETE FROM tiles", "holds a ';'"),
        ("1=1) ; DELETE FROM tiles; SELECT (1", "closes a parenthesis it never opened"),
        ("(a = 1", "leaves a parenthesis open"),
        ("name = 'abc", "unterminated '-quoted"),
        ("x = $q$abc", r"unterminated \$q\$"),
        ("/* a", "unterminated /\\* comment"),
    ],
)
def test_where_clause_stacking_is_rejected(clause, match):
    with pytest.raises(BalancedSamplingError, match=match):
        check_where_clause(clause)


def test_class_dist_counts_and_shares_become_proportions_without_nodata():
    values = pd.Series([{"0": 50, "1": 30, "2": 20}, '{"1": 0.25, "3": 0.75}', None])
    shares, nodata = class_dist_shares(values, 0, ["a", "b", "c"])
    assert shares.columns.tolist() == ["cls_1", "cls_2", "cls_3"]
    np.testing.assert_allclose(shares.to_numpy(), [[0.6, 0.4, 0], [0.25, 0, 0.75], [0, 0, 0]])
    np.testing.assert_allclose(nodata, [0.5, 0.0, np.nan])
    _, nodata = class_dist_shares(values, None, ["a", "b", "c"])
    assert nodata is None


@pytest.mark.parametrize(
    "value, match",
    [
        ({"road": 1}, r"class_dist of the tile with id 7 has the key 'road'"),
        ({"1": -2}, r"gives class 1 the value -2"),
        ("{not json", r"class_dist of the tile with id 7 is not valid JSON"),
        ("[1, 2]", r"must be a JSON object"),
    ],
)
def test_bad_class_dist_names_the_tile(value, match):
    with pytest.raises(BalancedSamplingError, match=match):
        class_dist_shares(pd.Series([value]), 0, ["the tile with id 7"])


# --------------------------------------------------------------------------- against the server


def test_load_all_rows(tiles_database):
    tiles = load_tiles(tiles_database.connection, "tiles")
    assert len(tiles) == tiles_database.rows == 384
    assert tiles.columns[:7].tolist() == ["image_path", "mask_path", "row_off", "col_off", "patch_size", "patch_id",
                                          "source_id"]
    assert {"uniqueness_score", "class_entropy", "nodata_ratio", "cls_1", "cls_6"} <= set(tiles.columns)
    assert "cls_0" not in tiles.columns  # the nodata class
    assert tiles["source_id"].tolist() == list(range(1, 385))
    assert tiles["patch_id"].tolist() == patch_ids(tiles).tolist()  # the engine's stable ids
    assert tiles["row_off"].dtype == np.int64


def test_class_dist_gives_the_mask_proportions(tiles_database):
    tiles = load_tiles(tiles_database.connection, "tiles", where_clause="id <= 64")
    stats = compute_mask_stats(tiles, check_black_border=False)
    classes = [c for c in stats.columns if c.startswith("cls_")]
    np.testing.assert_allclose(tiles[classes].to_numpy(), stats[classes].to_numpy(), atol=1e-12)
    np.testing.assert_allclose(tiles["nodata_ratio"], stats["nodata_ratio"], atol=1e-12)


def test_where_clause_filters(tiles_database):
    conn = tiles_database.server.connect(tiles_database.dbname)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM tiles WHERE nodata_ratio < 0.05")
        expected = cur.fetchone()[0]
    conn.close()
    tiles = load_tiles(tiles_database.connection, "tiles", where_clause="nodata_ratio < 0.05")
    assert 0 < len(tiles) == expected < tiles_database.rows
    assert (tiles["nodata_ratio"] < 0.05).all()
    tiles = load_tiles(tiles_database.connection, where_clause="file_path LIKE '%tile_02%' -- one tile")
    assert len(tiles) == 64 and tiles["image_path"].str.endswith("tile_02.tif").all()


def test_schema_qualified_table_with_text_class_dist(tiles_database):
    infos = []
    tiles = load_tiles(tiles_database.connection, "explorer.tiles", progress=Progress(info=infos.append))
    assert len(tiles) == tiles_database.schema_rows
    assert "uniqueness_score" not in tiles.columns and "class_entropy" not in tiles.columns
    assert any("no optional column uniqueness_score, class_entropy, nodata_ratio" in m for m in infos)
    full = load_tiles(tiles_database.connection, "tiles", where_clause="id % 4 = 0")
    np.testing.assert_allclose(tiles.filter(like="cls_").to_numpy(), full.filter(like="cls_").to_numpy())
    # Without a nodata_ratio column it comes from class_dist's nodata share.
    np.testing.assert_allclose(tiles["nodata_ratio"], full["nodata_ratio"])


@pytest.mark.parametrize(
    "clause, match",
    [
        ("1=1; DELETE FROM tiles", "holds a ';'"),
        ("purge_tiles()", r"tries to change the database: .*read-only.*nothing was changed"),
    ],
)
def test_where_clause_cannot_write(tiles_database, clause, match):
    with pytest.raises(BalancedSamplingError, match=match):
        load_tiles(tiles_database.connection, "tiles", where_clause=clause)
    assert tiles_database.count("tiles") == tiles_database.rows


def test_bad_where_clause_names_it(tiles_database):
    with pytest.raises(BalancedSamplingError, match=r"where clause 'no_such_column > 1' failed: .*no_such_column"):
        load_tiles(tiles_database.connection, "tiles", where_clause="no_such_column > 1")
    with pytest.raises(BalancedSamplingError, match=r"has no row matching the where clause 'false'"):
        load_tiles(tiles_database.connection, "tiles", where_clause="false")


def test_missing_table_lists_the_tables(tiles_database):
    with pytest.raises(BalancedSamplingError) as error:
        load_tiles(tiles_database.connection, "public.tile")
    message = str(error.value)
    assert "Table 'public.tile' in database 'dataset_explorer'" in message and "does not exist" in message
    assert "explorer.tiles" in message and "public.tiles" in message
    assert tiles_database.server.password not in message


def test_missing_columns(tiles_database):
    with pytest.raises(BalancedSamplingError) as error:
        load_tiles(tiles_database.connection, "tiles", columns={"row_off": "rowoff"})
    message = str(error.value)
    assert "has no column 'rowoff' (role row_off)" in message
    assert "Its columns: id, file_path, mask_path, row_off" in message
    assert tiles_database.server.password not in message
    # An optional role named explicitly must exist too.
    with pytest.raises(BalancedSamplingError, match=r"'dist' \(role class_dist\)"):
        load_tiles(tiles_database.connection, "tiles", columns={"class_dist": "dist"})
    with pytest.raises(BalancedSamplingError, match=r"Unknown column role\(s\) 'image'"):
        load_tiles(tiles_database.connection, "tiles", columns={"image": "file_path"})


def test_wrong_password_never_shows_a_password(tiles_database):
    wrong = "wrong-" + tiles_database.server.password
    with pytest.raises(BalancedSamplingError) as error:
        load_tiles({**tiles_database.connection, "password": wrong}, "tiles")
    message = str(error.value)
    assert "Cannot connect to PostgreSQL (database 'dataset_explorer' on 127.0.0.1:" in message
    assert "password authentication failed" in message
    assert wrong not in message and tiles_database.server.password not in message
    assert error.value.__cause__ is None and error.value.__suppress_context__


def test_connection_strings(tiles_database):
    c = tiles_database.connection
    dsn = f"host={c['host']} port={c['port']} dbname={c['dbname']} user={c['user']} password={c['password']}"
    assert len(load_tiles(dsn, "tiles", where_clause="id < 11")) == 10
    broken = f"host={c['host']} password {c['password']}"
    with pytest.raises(BalancedSamplingError, match="connection string is not valid") as error:
        load_tiles(broken)
    assert c["password"] not in str(error.value)
    with pytest.raises(BalancedSamplingError, match="give one"):
        load_tiles({**c, "database": "other"})


def test_closed_port_is_a_clear_error(tiles_database):
    with pytest.raises(BalancedSamplingError, match=r"Cannot connect to PostgreSQL .*Check the host, port") as error:
        load_tiles({**tiles_database.connection, "port": 1}, "tiles")
    assert tiles_database.server.password not in str(error.value)


def test_batches_report_progress_and_cancel(tiles_database):
    percents = []
    tiles = load_tiles(tiles_database.connection, "tiles", batch_size=100, progress=Progress(percents.append))
    assert len(tiles) == 384 and len(percents) == 4 and percents[-1] == 100
    with pytest.raises(OperationCanceled):
        load_tiles(tiles_database.connection, "tiles", batch_size=100, progress=Progress(is_canceled=lambda: True))


# --------------------------------------------------------------------------- composition from class_dist


def test_composition_from_table_proportions_reads_no_mask(tiles_database):
    tiles = load_tiles(tiles_database.connection, "tiles")
    options = dict(exclude_border_nodata=False, exclude_black_border=False, k_selection="fixed", k=5)
    from_masks = compute_composition(tiles, **options)
    infos = []
    blind = tiles.assign(mask_path="/nonexistent/mask.tif")  # proves no mask is opened
    from_table = compute_composition(blind, proportions=blind, progress=Progress(info=infos.append),
                                     **{**options, "exclude_border_nodata": True})
    columns = [c for c in from_masks.table.columns if c.startswith("cls_")] + ["class_entropy", "nodata_ratio"]
    pd.testing.assert_frame_equal(from_table.table[columns], from_masks.table[columns], atol=1e-12)
    assert from_table.table["freq_cluster_id"].tolist() == from_masks.table["freq_cluster_id"].tolist()
    assert not from_table.table["border_nodata"].any() and not from_table.table["black_border"].any()
    assert any("no mask was read, so the border nodata exclusions" in m for m in infos)


def test_stats_from_proportions_fills_the_gaps():
    table = pd.DataFrame({"cls_0": [5.0, 0.0], "cls_1": [1.0, 2.0], "cls_2": [3.0, 0.0], "nodata_ratio": [0.5, None]})
    warnings = []
    stats = stats_from_proportions(table, nodata_class=0, progress=Progress(warning=warnings.append))
    np.testing.assert_allclose(stats[["cls_1", "cls_2"]].to_numpy(), [[0.25, 0.75], [1.0, 0.0]])
    np.testing.assert_allclose(stats["class_entropy"], [-(0.25 * np.log(0.25) + 0.75 * np.log(0.75)), 0.0])
    np.testing.assert_allclose(stats["nodata_ratio"], [0.5, 0.0])
    assert "1 patches have no 'nodata_ratio' value" in warnings[0]
    assert stats_from_proportions(table, nodata_class=0, classes=[1, 4]).columns[:2].tolist() == ["cls_1", "cls_4"]
    with pytest.raises(BalancedSamplingError) as error:
        stats_from_proportions(table.assign(cls_1=[1.0, np.nan]))
    assert str(error.value) == (
        "Field 'cls_1' of patch at row 1 (? window row_off=?, col_off=?, size=?) is NULL (empty); "
        "class proportions must be numbers >= 0."
    )


# --------------------------------------------------------------------------- slow queries: timeout and cancel


def _active_queries(server, dbname: str, text: str) -> list:
    """Queries containing ``text`` that run on the server now (seen from a connection of its own)."""
    conn = server.connect(dbname)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT query FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() "
                "AND strpos(query, %s) > 0",
                (text,),
            )
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


def test_statement_timeout_stops_a_slow_where_clause(tiles_database):
    clause = "pg_sleep(30) is not null"
    start = time.monotonic()
    with pytest.raises(BalancedSamplingError) as error:
        load_tiles(tiles_database.connection, "tiles", where_clause=clause, statement_timeout=1)
    assert time.monotonic() - start < 5
    message = str(error.value)
    assert not isinstance(error.value, OperationCanceled)
    assert "ran longer than 1 s (the statement timeout)" in message
    assert f"with the where clause {clause!r}" in message
    assert "Simplify the where clause or raise the statement timeout" in message
    assert tiles_database.server.password not in message
    assert _active_queries(tiles_database.server, tiles_database.dbname, "pg_sleep(30)") == []


@pytest.mark.parametrize("seconds", [-1, float("nan"), "600", True])
def test_statement_timeout_must_be_seconds(tiles_database, seconds):
    with pytest.raises(BalancedSamplingError, match="statement timeout must be a number of seconds >= 0"):
        load_tiles(tiles_database.connection, "tiles", statement_timeout=seconds)


def test_statement_timeout_is_a_session_setting(tiles_database, monkeypatch):
    import balanced_sampling_plugin.sources.postgres as postgres

    seen = []

    def spy(conn, *args, **kwargs):
        with conn.cursor() as cur:
            cur.execute("SHOW statement_timeout")
            seen.append(cur.fetchone()[0])
        return []

    monkeypatch.setattr(postgres, "_fetch", spy)
    for seconds, shown in ((2.5, "2500ms"), (0, "0"), (600, "10min")):
        with pytest.raises(BalancedSamplingError, match="has no row"):
            load_tiles(tiles_database.connection, "tiles", statement_timeout=seconds)
        assert seen[-1] == shown


def test_cancel_stops_the_running_query_on_the_server(tiles_database):
    clause = "id <= 3 and pg_sleep(5) is not null"
    start = time.monotonic()
    canceled_at, running = [], []

    def is_canceled():
        if time.monotonic() - start >= 0.5:
            if not canceled_at:  # the query runs on the server when cancel comes
                running.extend(_active_queries(tiles_database.server, tiles_database.dbname, "pg_sleep(5)"))
            canceled_at.append(time.monotonic())
            return True
        return False

    with pytest.raises(OperationCanceled, match="stopped on the server"):
        load_tiles(tiles_database.connection, "tiles", where_clause=clause, progress=Progress(is_canceled=is_canceled))
    assert canceled_at and time.monotonic() - canceled_at[0] < 2
    assert len(running) == 1 and running[0].startswith("SELECT count(*)")
    assert time.monotonic() - start < 2.5
    assert _active_queries(tiles_database.server, tiles_database.dbname, "pg_sleep(5)") == []


def test_cancel_during_a_fetch(tiles_database, monkeypatch):
    """The count is quick, each fetch of the server-side cursor is slow: cancel stops the running fetch."""
    import balanced_sampling_plugin.sources.postgres as postgres

    calls = []
    real = postgres._cancellable

    def counting(conn, call, progress):
        calls.append(call)
        return real(conn, call, progress)

    monkeypatch.setattr(postgres, "_cancellable", counting)
    # current_query() is the running top-level statement: the count, or "FETCH FORWARD 1 FROM <cursor>".
    clause = "id <= 3 and (current_query() not like 'FETCH%' or pg_sleep(5) is not null)"
    start = time.monotonic()
    with pytest.raises(OperationCanceled):
        load_tiles(tiles_database.connection, "tiles", where_clause=clause, batch_size=1,
                   progress=Progress(is_canceled=lambda: time.monotonic() - start >= 0.5))
    assert len(calls) == 3  # the count, the DECLARE, then the fetch it stopped
    assert time.monotonic() - start < 2.5
    assert _active_queries(tiles_database.server, tiles_database.dbname, postgres._CURSOR_NAME) == []


def test_config_statement_timeout_reaches_the_server(tiles_database, tmp_path):
    from balanced_sampling_plugin.config import load_config
    from balanced_sampling_plugin.pipeline import load_records

    c = tiles_database.connection
    source = {"host": c["host"], "port": c["port"], "database": c["dbname"], "user": c["user"],
              "password": c["password"], "where_clause": "pg_sleep(30) is not null"}
    config = {"balanced_dataset": {"input": {**source, "statement_timeout": 1}, "output": {"csv_path": "x.csv"}}}
    assert load_config({"balanced_dataset": {"input": source, "output": {"csv_path": "x.csv"}}},
                       str(tmp_path)).input.statement_timeout == 600
    start = time.monotonic()
    with pytest.raises(BalancedSamplingError, match=r"ran longer than 1 s \(the statement timeout\)"):
        load_records(load_config(config, str(tmp_path)))
    assert time.monotonic() - start < 5
    with pytest.raises(BalancedSamplingError, match=r"statement_timeout is -1; expected an integer >= 0"):
        load_config({"balanced_dataset": {"input": {**source, "statement_timeout": -1},
                                          "output": {"csv_path": "x.csv"}}}, str(tmp_path))


# --------------------------------------------------------------------------- fetch_embeddings

EMBEDDING_DIM = 24
#: Tile ids of embedded_tiles whose ``bad_text`` / ``bad_array`` holds a broken embedding (see the fixture).
BAD_TILES = {"null": 5, "unparsable": 6, "dimension": 7, "non_finite": 8}


def pgvector_text(vector, separator=","):
    """pgvector's text form of a float32 vector (shortest repr of each value: it reads back exactly)."""
    return "[" + separator.join(repr(float(x)) for x in vector) + "]"


@pytest.fixture(scope="module")
def embedded_tiles(tiles_database):
    """Table ``embedded_tiles``: the rows of ``tiles`` with id <= 96 and every tile's embedding as ``real[]``,
    ``double precision[]`` and pgvector text; ``bad_text`` / ``bad_array`` hold the same vectors except for
    the broken values of :data:`BAD_TILES`. Returns {tile id: float32 vector}."""
    rng = np.random.default_rng(3)
    conn = tiles_database.server.connect(tiles_database.dbname)
    try:
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS embedded_tiles")
            cur.execute("CREATE TABLE embedded_tiles AS SELECT * FROM tiles WHERE id <= 96")
            cur.execute("ALTER TABLE embedded_tiles ADD COLUMN emb_real real[], ADD COLUMN emb_double "
                        "double precision[], ADD COLUMN emb_text text, ADD COLUMN bad_text text, "
                        "ADD COLUMN bad_array real[]")
            cur.execute("SELECT id FROM embedded_tiles ORDER BY id")
            ids = [row[0] for row in cur.fetchall()]
            vectors = rng.normal(size=(len(ids), EMBEDDING_DIM)).astype(np.float32)
            vectors[1::7] = vectors[::7][: len(vectors[1::7])] + 0.05  # near twins: the scores differ a lot
            for tile_id, vector in zip(ids, vectors):
                values = [float(x) for x in vector]
                text = pgvector_text(vector, ", " if tile_id % 2 else ",")
                bad_text, bad_array = text, values
                if tile_id == BAD_TILES["null"]:
                    bad_text = bad_array = None
                elif tile_id == BAD_TILES["unparsable"]:  # the second value is not a number
                    bad_text = pgvector_text(vector).replace("," + repr(values[1]) + ",", ",x,", 1)
                    bad_array = [values[0], None, *values[2:]]
                elif tile_id == BAD_TILES["dimension"]:
                    bad_text, bad_array = pgvector_text(vector[:-1]), values[:-1]
                elif tile_id == BAD_TILES["non_finite"]:
                    bad_text, bad_array = pgvector_text([np.nan, *values[1:]]), [float("inf"), *values[1:]]
                cur.execute("UPDATE embedded_tiles SET emb_real = %s, emb_double = %s, emb_text = %s, bad_text = %s, "
                            "bad_array = %s::real[] WHERE id = %s",
                            (values, values, text, bad_text, bad_array, tile_id))
    finally:
        conn.close()
    return dict(zip(ids, vectors))


def fetch_config(tiles_database, tmp_path, column, mode="both", where_clause="id % 3 <> 0", **postgres):
    c = tiles_database.connection
    body = {"backend": "postgres", "mode": mode, "sampling_method": "rank_max",
            "postgres": {"host": c["host"], "port": c["port"], "database": c["dbname"], "user": c["user"],
                         "password": c["password"], "table": "embedded_tiles", "where_clause": where_clause,
                         "embedding_column": column, "fetch_embeddings": True, **postgres},
            "clustering": {"k_selection": "fixed", "k": 3},
            "uniqueness": {"k_neighbors": 4, "backend": "sklearn"},
            # No such model: DINOv2 must not run. Nor may its cache be written.
            "embeddings": {"dino_model": str(tmp_path / "no-model"), "parquet_path": str(tmp_path / "cache.parquet")},
            "output": {"csv_path": str(tmp_path / "train.csv")}}
    from balanced_sampling_plugin.config import load_config

    return load_config({"balanced_dataset": body}, str(tmp_path))


@pytest.mark.parametrize("column", ["emb_real", "emb_text", "emb_double"])
def test_fetched_embeddings_give_the_knn_scores_of_those_vectors(embedded_tiles, tiles_database, tmp_path, column):
    from balanced_sampling_plugin.pipeline import run_config
    from balanced_sampling_plugin.uniqueness import uniqueness_scores

    infos = []
    result = run_config(fetch_config(tiles_database, tmp_path, column), Progress(info=infos.append))
    ids = result.table["source_id"].tolist()
    assert len(ids) == 64 and all(i % 3 for i in ids)
    expected = uniqueness_scores(np.stack([embedded_tiles[i] for i in ids]), k=4, backend="sklearn")
    np.testing.assert_allclose(result.table["uniqueness_score"].to_numpy(), expected, rtol=1e-6, atol=1e-7)
    assert expected.std() > 0.05  # the twins make the comparison worth something
    assert result.uniqueness.device is None and result.uniqueness.computed == 0
    assert any(f"Read 64 embeddings of {EMBEDDING_DIM} dimensions from column '{column}'" in m for m in infos)
    assert any("DINOv2 does not run" in m for m in infos)
    assert not (tmp_path / "cache.parquet").exists()
    csv = pd.read_csv(result.csv_path)
    np.testing.assert_allclose(csv["uniqueness_score"], result.table["uniqueness_score"], rtol=1e-9)


@pytest.mark.parametrize("column", ["bad_text", "bad_array"])
@pytest.mark.parametrize(
    "case, match",
    [
        ("null", r"The embedding of the tile with id 5 in column '{column}' is NULL\. Fill the column for every "
                 r"tile, leave such tiles out with a where_clause such as \"{column} IS NOT NULL\", or set "
                 r"fetch_embeddings to false"),
        ("unparsable", r"The embedding of the tile with id 6 in column '{column}' is not a list of numbers: .*"
                       r"Expected pgvector's text form .* or set fetch_embeddings to false"),
        ("dimension", r"The embedding of the tile with id 7 in column '{column}' has 23 dimensions, but that of the "
                      r"tile with id 1 has 24: every embedding must come from the same model\. Fill the column"),
        ("non_finite", r"The embedding of the tile with id 8 in column '{column}' holds NaN or infinite values\. "
                       r"Fill the column with valid embeddings, leave such tiles out with a where_clause"),
    ],
)
def test_bad_fetched_embeddings_name_the_tile_and_the_column(embedded_tiles, tiles_database, tmp_path, column, case,
                                                              match):
    from balanced_sampling_plugin.pipeline import run_config

    clause = f"id <= 4 OR id = {BAD_TILES[case]}"
    with pytest.raises(BalancedSamplingError, match=match.format(column=column)):
        run_config(fetch_config(tiles_database, tmp_path, column, where_clause=clause))
    assert not (tmp_path / "train.csv").exists()
    # Without the broken tile the same column reads.
    tiles, fetched = load_tiles_with_embeddings(tiles_database.connection, "embedded_tiles", "id <= 4",
                                                embedding_column=column)
    np.testing.assert_array_equal(fetched.vectors, np.stack([embedded_tiles[i] for i in tiles["source_id"]]))


def test_masks_only_does_not_read_the_embeddings(embedded_tiles, tiles_database, tmp_path):
    from balanced_sampling_plugin.pipeline import run_config

    infos = []
    # bad_text holds a NULL for tile 5: reading it would fail.
    config = fetch_config(tiles_database, tmp_path, "bad_text", mode="masks_only", where_clause="id <= 12")
    result = run_config(config, Progress(info=infos.append))
    assert any("fetch_embeddings is true, but mode 'masks_only' computes no uniqueness, so the table's embeddings "
               "(column 'bad_text') are not read" in m for m in infos)
    assert result.uniqueness is None and len(result.table) == 12
    assert any("Using the input's precomputed uniqueness_score" in m for m in infos)


def test_a_missing_embedding_column_is_named(embedded_tiles, tiles_database, tmp_path):
    from balanced_sampling_plugin.pipeline import run_config

    with pytest.raises(BalancedSamplingError, match=r"Table 'embedded_tiles' in database 'dataset_explorer' .* has no "
                                                    r"embedding column 'embedding'\. Its columns: id, .*emb_real.* "
                                                    r"set fetch_embeddings to false"):
        run_config(fetch_config(tiles_database, tmp_path, "embedding"))


@pytest.mark.parametrize(
    "values, match",
    [
        (["[1, 2]", None], r"The embedding of tile b in column 'e' is NULL"),
        (["[1, 2]", float("nan")], r"The embedding of tile b in column 'e' is NULL"),
        (["[1, 2]", "[]"], r"tile b in column 'e' is not a list of numbers: '\[\]'"),
        (["[1, 2]", "[1, 2"], r"tile b in column 'e' is not a list of numbers: '\[1, 2'"),
        (["[1, 2]", "{{1,2},{3,4}}"], r"tile b in column 'e' is not a list of numbers"),
        (["[1, 2]", b"\x00\x01"], r"tile b in column 'e' is not a list of numbers"),
        (["[1, 2]", 0.5], r"tile b in column 'e' is not a list of numbers: 0\.5"),
        ([[1.0, 2.0], [[1.0], [2.0]]], r"tile b in column 'e' is not a list of numbers"),
        (["[1, 2]", "[1, 2, 3]"], r"tile b in column 'e' has 3 dimensions, but that of tile a has 2"),
        ([[1.0, 2.0], [1.0]], r"tile b in column 'e' has 1 dimensions, but that of tile a has 2"),
        (["[1, 2]", "[inf, 2]"], r"tile b in column 'e' holds NaN or infinite values"),
        (["[1, 2]", "[1e39, 2]"], r"tile b in column 'e' holds NaN or infinite values"),  # beyond float32
        ([[1.0, 2.0], [1.0, float("nan")]], r"tile b in column 'e' holds NaN or infinite values"),
    ],
)
def test_embedding_block_errors(values, match):
    from balanced_sampling_plugin.sources.postgres import embedding_block

    with pytest.raises(BalancedSamplingError, match=match):
        embedding_block(values, lambda i: f"tile {'abc'[i]}", "e")


def test_embedding_block_reads_text_and_arrays_alike():
    from balanced_sampling_plugin.sources.postgres import EmbeddingReader, embedding_block

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 7)).astype(np.float32)
    texts = [pgvector_text(v, ", " if i % 2 else ",") for i, v in enumerate(vectors)]
    texts[3] = "{" + texts[3][1:-1] + "}"  # PostgreSQL's array text
    texts[4] = "  " + texts[4] + " "
    lists = [v.tolist() for v in vectors]
    mixed = [texts[i] if i % 3 else lists[i] for i in range(len(vectors))]
    for values in (texts, lists, mixed):
        np.testing.assert_array_equal(embedding_block(values, str, "e"), vectors)
    reader = EmbeddingReader("e")
    reader.add(texts[:20], [()] * 20, total=30)  # fewer rows counted than read: the matrix grows
    reader.add(lists[20:], [()] * 30, total=30)
    np.testing.assert_array_equal(reader.matrix(), vectors)
    with pytest.raises(BalancedSamplingError, match=r"The embedding of row 22 in column 'e' has 6 dimensions, but "
                                                    r"that of row 1 has 7"):
        EmbeddingReader("e").add(texts[:21] + [pgvector_text(vectors[0][:6])], [()] * 22)
