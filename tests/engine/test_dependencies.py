"""Which packages a task misses, found without importing them, and the pip command for this Python."""

import os
import sys

import pytest

from balanced_sampling_plugin import dependencies


def test_the_engine_reports_missing_packages_without_importing_them():
    assert dependencies.missing_packages(["numpy", "json", "no_such_module_xyz", "sklearn"]) == ["no_such_module_xyz"]
    assert dependencies.missing_packages(["faiss_missing_for_test"]) == ["faiss_missing_for_test"]
    assert dependencies.pip_command(["pandas"], target="/x")[1:] == ["-m", "pip", "install", "--target", "/x", "pandas"]
    assert os.path.isfile(dependencies.python_interpreter())
    assert os.path.realpath(dependencies.python_interpreter()) == os.path.realpath(sys.executable)


def test_nothing_heavy_is_imported_to_find_out():
    import subprocess

    code = ("import sys; from balanced_sampling_plugin import dependencies; "
            "dependencies.missing_packages(['pandas', 'torch', 'sklearn', 'rasterio']); "
            "print(sorted(m for m in ('pandas', 'torch', 'sklearn', 'rasterio') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


@pytest.mark.skipif(os.name == "nt", reason="POSIX quoting")
def test_shell_line_quotes_what_a_shell_would_split():
    assert dependencies.shell_line(["/usr/bin/python3.11", "-m", "pip", "install", "pandas>=2.0,<3"]) == \
        "/usr/bin/python3.11 -m pip install 'pandas>=2.0,<3'"
