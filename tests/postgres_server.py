"""A throw-away PostgreSQL cluster and a dataset_explorer-like tile table, for engine and QGIS tests.

The cluster is made with ``initdb`` in a temporary folder, listens on a free loopback port
(password auth over TCP) and is stopped (``pg_ctl stop -m fast``) and deleted at the end of
the session. As root, the server runs as the ``postgres`` system user (PostgreSQL refuses
to run as root). Tests are skipped, saying why, when psycopg2 or the server binaries are
missing.

Use from any test module (pytest finds fixtures imported into a module)::

    from tests.postgres_server import postgres_server, tiles_database  # noqa: F401

    def test_something(tiles_database):
        frame = load_tiles(tiles_database.connection, "tiles")
        assert len(frame) == tiles_database.rows

Both fixtures are session-scoped and backed by one server per process, however many
modules import them.
"""

from __future__ import annotations

import atexit
import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field

import numpy as np
import pytest

SUPERUSER = "postgres"
#: Debian/Ubuntu keep the server binaries here, one folder per major version.
DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin"
TILES_DATABASE = "dataset_explorer"
PATCH_SIZE = 64
NODATA_CLASS = 0


def find_pg_bin() -> str | None:
    """The folder holding ``initdb`` and ``pg_ctl``: on PATH, else the newest Debian version."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return os.path.dirname(on_path)
    def version(folder: str) -> int:
        name = os.path.basename(os.path.dirname(folder))
        return int(name) if name.isdigit() else 0

    for folder in sorted(glob.glob(DEBIAN_BIN_GLOB), key=version, reverse=True):
        if all(os.access(os.path.join(folder, name), os.X_OK) for name in ("initdb", "pg_ctl")):
            return folder
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresServer:
    """A running throw-away cluster; :meth:`connection` gives psycopg2/``load_tiles`` parameters."""

    bin_dir: str
    root: str  # temporary folder: data/, server.log, the socket
    port: int
    password: str
    run_as: list = field(default_factory=list)  # command prefix, e.g. ["runuser", "-u", "postgres", "--"]
    host: str = "127.0.0.1"
    user: str = SUPERUSER
    running: bool = False

    def connection(self, dbname: str = "postgres") -> dict:
        return dict(host=self.host, port=self.port, dbname=dbname, user=self.user, password=self.password)

    def connect(self, dbname: str = "postgres"):
        """An autocommit psycopg2 connection as the superuser (close it when done)."""
        import psycopg2

        conn = psycopg2.connect(**self.connection(dbname))
        conn.autocommit = True
        return conn

    def pg_ctl(self, *args: str) -> subprocess.CompletedProcess:
        command = [*self.run_as, os.path.join(self.bin_dir, "pg_ctl"), "-D", os.path.join(self.root, "data"), *args]
        # cwd: the server user may not be allowed into the test's working folder.
        return subprocess.run(command, cwd=self.root, capture_output=True, text=True, timeout=120)

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(os.path.join(self.root, "server.log"), encoding="utf-8", errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return "(no server log)"

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its folder; safe to call twice."""
        if self.running:
            self.pg_ctl("stop", "-m", "fast", "-w")
            self.running = False
        shutil.rmtree(self.root, ignore_errors=True)


def _server_user_prefix() -> list:
    """How to run the server binaries: as is, or (as root) as the ``postgres`` system user."""
    if os.geteuid() != 0:
        return []
    import pwd

    try:
        pwd.getpwnam(SUPERUSER)
    except KeyError:
        pytest.skip(f"Running as root and there is no '{SUPERUSER}' system user to run the PostgreSQL server as.")
    if shutil.which("runuser"):
        return ["runuser", "-u", SUPERUSER, "--"]
    pytest.skip("Running as root without 'runuser' to start the PostgreSQL server as a non-root user.")


def start_server(attempts: int = 3) -> PostgresServer:
    """initdb a cluster in a new temporary folder and start it; skips when it cannot be done here."""
    pytest.importorskip("psycopg2", reason="psycopg2 is needed to talk to the test PostgreSQL server")
    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found; install the 'postgresql' package.")
    run_as = _server_user_prefix()
    root = tempfile.mkdtemp(prefix="balanced-sampling-pg-")
    password = "pw-" + secrets.token_hex(8)
    with open(os.path.join(root, "pwfile"), "w", encoding="utf-8") as handle:
        handle.write(password + "\n")
    if run_as:
        import pwd

        entry = pwd.getpwnam(SUPERUSER)
        for path in (root, os.path.join(root, "pwfile")):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    init = subprocess.run(
        [*run_as, os.path.join(bin_dir, "initdb"), "-D", os.path.join(root, "data"), "-U", SUPERUSER,
         "--pwfile", os.path.join(root, "pwfile"), "--auth-local=trust", "--auth-host=scram-sha-256",
         "-E", "UTF8", "--locale=C", "--no-sync"],
        cwd=root, capture_output=True, text=True, timeout=300,
    )
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"initdb failed:\n{init.stdout}\n{init.stderr}")
    for _ in range(attempts):  # another process may take the free port before the server does
        server = PostgresServer(bin_dir, root, _free_port(), password, run_as)
        options = (f"-c listen_addresses=127.0.0.1 -p {server.port} -k {root} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        started = server.pg_ctl("start", "-w", "-t", "60", "-l", os.path.join(root, "server.log"), "-o", options)
        if started.returncode == 0:
            server.running = True
            atexit.register(server.stop)  # also when the session ends without fixture teardown
            return server
    log = server.log_tail()
    server.stop()
    pytest.fail(f"The PostgreSQL server did not start:\n{started.stdout}\n{started.stderr}\n{log}")


_shared: dict = {}


@pytest.fixture(scope="session")
def postgres_server():
    """The session's :class:`PostgresServer` (started on first use)."""
    if "server" not in _shared:
        _shared["server"] = start_server()
    yield _shared["server"]
    server = _shared.pop("server", None)  # another module's copy of this fixture may have stopped it
    if server is not None:
        server.stop()


# --------------------------------------------------------------------------- the tile table


@dataclass
class TilesDatabase:
    """The ``dataset_explorer`` database: ``tiles`` (every 64 px window of the synthetic dataset,
    ``class_dist`` jsonb pixel counts with nodata) and ``explorer.tiles`` (every 4th row, only the
    required columns plus ``id`` and ``class_dist`` as text).

    ``purge_tiles()`` is a function that deletes every row of ``tiles`` (to test read-only access).
    """

    server: PostgresServer
    dbname: str
    rows: int
    schema_rows: int

    @property
    def connection(self) -> dict:
        return self.server.connection(self.dbname)

    def count(self, table: str = "tiles") -> int:
        conn = self.server.connect(self.dbname)
        try:
            with conn.cursor() as cur:
                cur.execute(f"SELECT count(*) FROM {table}")  # test-owned table names only
                return cur.fetchone()[0]
        finally:
            conn.close()


def tile_rows(images, masks, patch_size: int = PATCH_SIZE, seed: int = 0) -> list[tuple]:
    """Rows ``(file_path, mask_path, row_off, col_off, patch_size, class_dist json, uniqueness_score,
    class_entropy, nodata_ratio)`` for every window of the image/mask pairs."""
    import json

    import rasterio

    rng = np.random.default_rng(seed)
    rows = []
    for image, mask in zip(images, masks):
        with rasterio.open(mask) as src:
            labels = src.read(1)
        for row_off in range(0, labels.shape[0] - patch_size + 1, patch_size):
            for col_off in range(0, labels.shape[1] - patch_size + 1, patch_size):
                window = labels[row_off : row_off + patch_size, col_off : col_off + patch_size]
                values, counts = np.unique(window, return_counts=True)
                class_dist = {str(int(v)): int(c) for v, c in zip(values, counts)}
                classes = counts[values != NODATA_CLASS].astype(float)
                shares = classes / classes.sum() if classes.sum() else classes
                entropy = float(-(shares[shares > 0] * np.log(shares[shares > 0])).sum())
                nodata = float(counts[values == NODATA_CLASS].sum() / window.size)
                rows.append((image, mask, row_off, col_off, patch_size, json.dumps(class_dist),
                             float(rng.uniform(0, 1)), entropy, nodata))
    return rows


def create_tiles_database(server: PostgresServer, images, masks, dbname: str = TILES_DATABASE) -> TilesDatabase:
    """(Re)create ``dbname`` with the tables described in :class:`TilesDatabase`."""
    from psycopg2.extras import execute_values

    admin = server.connect()
    try:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{dbname}"')
            cur.execute(f'CREATE DATABASE "{dbname}"')
    finally:
        admin.close()
    rows = tile_rows(images, masks)
    conn = server.connect(dbname)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "CREATE TABLE tiles (id serial PRIMARY KEY, file_path text NOT NULL, mask_path text, "
                "row_off integer, col_off integer, patch_size integer, class_dist jsonb, "
                "uniqueness_score double precision, class_entropy double precision, nodata_ratio double precision)"
            )
            execute_values(
                cur,
                "INSERT INTO tiles (file_path, mask_path, row_off, col_off, patch_size, class_dist, "
                "uniqueness_score, class_entropy, nodata_ratio) VALUES %s",
                rows,
            )
            cur.execute("CREATE SCHEMA explorer")
            cur.execute(
                "CREATE TABLE explorer.tiles AS SELECT id, file_path, mask_path, row_off, col_off, patch_size, "
                "class_dist::text AS class_dist FROM tiles WHERE id % 4 = 0"
            )
            cur.execute("SELECT count(*) FROM explorer.tiles")
            schema_rows = cur.fetchone()[0]
            cur.execute(
                "CREATE FUNCTION purge_tiles() RETURNS boolean LANGUAGE plpgsql AS "
                "$$ BEGIN DELETE FROM tiles; RETURN true; END $$"
            )
    finally:
        conn.close()
    return TilesDatabase(server, dbname, len(rows), schema_rows)


@pytest.fixture(scope="session")
def tiles_database(postgres_server, synthetic_dataset):
    """:class:`TilesDatabase` over the ``synthetic_dataset`` fixture (6 tiles x 64 windows = 384 rows)."""
    key = ("tiles", postgres_server.port)
    if key not in _shared:
        _shared[key] = create_tiles_database(postgres_server, synthetic_dataset.images, synthetic_dataset.masks)
    return _shared[key]
