"""Running qgis_process as a server user would: a subprocess with its own QGIS profile."""

import os
import sqlite3
import subprocess

import pytest

from tests.conftest import ROOT

QGIS_PROCESS = os.path.join(ROOT, "scripts", "qgis_process.sh")
HAS_QGIS_PROCESS = os.path.exists("/usr/bin/qgis_process.bin")


def qgis_process(*args, profile, timeout=300):
    env = dict(os.environ, QGIS_CUSTOM_CONFIG_PATH=str(profile))
    return subprocess.run([QGIS_PROCESS, *args], capture_output=True, text=True, env=env, timeout=timeout)


def gpkg_rows(path):
    """Rows of the only feature table of a GeoPackage, as dicts (plain sqlite: no QGIS in this process)."""
    with sqlite3.connect(path) as db:
        table = db.execute("SELECT table_name FROM gpkg_contents WHERE data_type='features'").fetchone()[0]
        cursor = db.execute(f'SELECT * FROM "{table}"')
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    return tmp_path_factory.mktemp("qgis_profile")
