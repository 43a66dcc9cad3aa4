"""The plugin's own folder of Python packages, for a QGIS whose Python lacks them.

Packages go into ``<QGIS profile>/python/balanced_sampling_packages`` (never into QGIS's own
Python, which Debian and others refuse to change, PEP 668). The folder is put at the END of
``sys.path`` at plugin start, so whatever QGIS ships (numpy, GDAL's bindings) always wins.
"""

import os
import sys

from qgis.core import QgsApplication

FOLDER_NAME = "balanced_sampling_packages"
#: pip requirement per package, where a bare name could install a version QGIS cannot load.
PIP_SPECS = {"pandas": "pandas>=2.0,<3", "pyarrow": "pyarrow<21"}


def packages_folder() -> str:
    """``<QGIS profile>/python/balanced_sampling_packages`` (may not exist yet)."""
    return os.path.join(QgsApplication.qgisSettingsDirPath(), "python", FOLDER_NAME)


def add_packages_folder_to_path() -> None:
    """Append the packages folder to ``sys.path`` (after everything QGIS ships) if it exists."""
    folder = packages_folder()
    if os.path.isdir(folder) and folder not in sys.path:
        sys.path.append(folder)


def install_line(packages) -> str:
    """The terminal command that installs ``packages`` (pip names) for this QGIS into the packages folder."""
    from ..balanced_sampling_plugin.dependencies import pip_command, shell_line

    return shell_line(pip_command([PIP_SPECS.get(name, name) for name in packages], target=packages_folder()))
