"""`make zip` builds a plugin QGIS installs and loads: the zip alone, no checkout, no test files."""

import os
import subprocess
import zipfile

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/qgis_process.bin"),
                                reason="qgis_process.bin is not installed (make setup installs QGIS 3.22)")


def test_zip_installs_and_registers_the_provider(tmp_path):
    version = [line.split("=", 1)[1].strip() for line in open(os.path.join(ROOT, "metadata.txt"))
               if line.startswith("version=")][0]
    built = subprocess.run(["bash", os.path.join(ROOT, "scripts", "make_zip.sh"), "balanced_sampling", version],
                           cwd=ROOT, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    archive = os.path.join(ROOT, "dist", f"balanced_sampling-{version}.zip")
    with zipfile.ZipFile(archive) as zipped:
        names = zipped.namelist()
        assert "balanced_sampling/metadata.txt" in names
        assert "balanced_sampling/__init__.py" in names
        assert not [n for n in names if "/tests/" in n or "/.venv/" in n or "__pycache__" in n or n.endswith(".pyc")]
        zipped.extractall(tmp_path / "plugins")

    env = dict(os.environ, QGIS_PLUGINPATH=str(tmp_path / "plugins"), QT_QPA_PLATFORM="offscreen",
               QGIS_CUSTOM_CONFIG_PATH=str(tmp_path / "profile"),
               PYTHONPATH=os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), _venv_site()) if p))
    enable = subprocess.run(["/usr/bin/qgis_process.bin", "plugins", "enable", "balanced_sampling"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert enable.returncode == 0, enable.stdout + enable.stderr
    listed = subprocess.run(["/usr/bin/qgis_process.bin", "list"], capture_output=True, text=True, env=env,
                            timeout=120)
    assert "balanced_sampling:combinesamplerweights" in listed.stdout
    assert "error starting plugin" not in listed.stdout + listed.stderr


def _venv_site():
    import sysconfig

    return sysconfig.get_paths()["purelib"]
