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


def test_the_interpreter_is_found_beside_qgis_when_sys_executable_is_qgis_itself(tmp_path, monkeypatch):
    if os.name == "nt":
        pytest.skip("POSIX layout")
    major, minor = sys.version_info[:2]
    (tmp_path / "bin").mkdir()
    python = tmp_path / "bin" / f"python{major}.{minor}"
    python.write_text("")
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "qgis"))  # QGIS embeds Python: not a Python
    monkeypatch.setattr(sys, "exec_prefix", str(tmp_path))
    assert dependencies.python_interpreter() == str(python)


def test_names_as_pip_compares_them_and_the_modules_they_provide():
    assert dependencies.canonical_name("PyYAML") == "pyyaml"
    assert dependencies.canonical_name("faiss_cpu") == dependencies.canonical_name("Faiss.CPU") == "faiss-cpu"
    assert [dependencies.import_name(n) for n in ("scikit-learn", "PyYAML", "faiss-cpu", "psycopg2-binary")] == \
        ["sklearn", "yaml", "faiss", "psycopg2"]
    assert dependencies.import_name("typing-extensions") == "typing_extensions"
    offered = dependencies.RUNTIME_PACKAGES + dependencies.OPTIONAL_PACKAGES + dependencies.SCALE_OUT
    assert set(offered) == set(dependencies.PIP_NAMES.values())  # every package an algorithm may need is offered
    assert len(offered) == len(set(offered))  # each in one place: always, with torch's box, or with Dask's box
    assert "torch" in dependencies.OPTIONAL_PACKAGES and "torch" not in dependencies.RUNTIME_PACKAGES
    assert dependencies.SCALE_OUT == ("dask", "distributed")  # Dask's box, not ticked by default
    assert [dependencies.import_name(n) for n in dependencies.SCALE_OUT] == ["dask", "distributed"]


def _pins(path):
    pins = {}
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            line = line.split("#", 1)[0].strip()
            if "==" in line:
                name, version = line.split("==")
                pins[dependencies.canonical_name(name)] = version
    return pins


def test_the_installer_pins_agree_with_constraints_txt():
    """processing_provider/python_packages.txt ships in the plugin (constraints.txt does not): the same versions,
    every runtime pin of constraints.txt, none of the test tools."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    shipped = _pins(os.path.join(root, "processing_provider", "python_packages.txt"))
    constraints = _pins(os.path.join(root, "constraints.txt"))
    test_tools = {"pytest", "pytest-qgis", "hypothesis", "iniconfig", "pluggy"}  # sortedcontainers: distributed
    assert {name: v for name, v in shipped.items() if name in constraints} == \
        {name: v for name, v in constraints.items() if name in shipped}
    assert set(constraints) - set(shipped) == test_tools & set(constraints)
    assert not test_tools & set(shipped)
    for name in dependencies.RUNTIME_PACKAGES + dependencies.OPTIONAL_PACKAGES + dependencies.SCALE_OUT:
        assert dependencies.canonical_name(name) in shipped, name
