"""Plugins > Balanced Sampling > Install Python packages…: which packages the plugin uses, which are there, and an
Install button that runs :class:`.package_installer.Installer` as a background QgsTask (progress, cancel, pip's log
in the message log under "Balanced Sampling")."""

import importlib
import importlib.metadata
import importlib.util
import os
import sys

from qgis.core import Qgis, QgsApplication, QgsMessageLog, QgsTask
from qgis.PyQt.QtCore import QT_TRANSLATE_NOOP, QCoreApplication, Qt, QTimer
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from ..balanced_sampling_plugin.dependencies import (
    OPTIONAL_PACKAGES,
    RUNTIME_PACKAGES,
    SCALE_OUT,
    import_name,
)
from .package_installer import Installer
from .python_packages import add_packages_folder_to_path, packages_folder

translate = QCoreApplication.translate  # pylupdate5 reads translate("Context", "text")
LOG_TAG = "Balanced Sampling"
#: What each package enables (marked for pylupdate5, translated when shown).
ENABLES = {
    "numpy": QT_TRANSLATE_NOOP("PackagesDialog", "Arrays, for every algorithm (QGIS's own copy is always kept)"),
    "pandas": QT_TRANSLATE_NOOP("PackagesDialog", "The patch table every algorithm reads and writes"),
    "scipy": QT_TRANSLATE_NOOP("PackagesDialog", "Ranks when combining sampler weights"),
    "scikit-learn": QT_TRANSLATE_NOOP("PackagesDialog", "Composition clusters (KMeans), the sklearn kNN backend"),
    "threadpoolctl": QT_TRANSLATE_NOOP("PackagesDialog", "Thread limits while clustering"),
    "rasterio": QT_TRANSLATE_NOOP("PackagesDialog", "Reading image and mask windows"),
    "PyYAML": QT_TRANSLATE_NOOP("PackagesDialog", "pytorch-smt-tools YAML configs"),
    "shapely": QT_TRANSLATE_NOOP("PackagesDialog", "The GeoJSON output of Build from config"),
    "pyarrow": QT_TRANSLATE_NOOP("PackagesDialog", "The embedding cache (Parquet)"),
    "psycopg2-binary": QT_TRANSLATE_NOOP("PackagesDialog", "Loading tiles from PostgreSQL"),
    "faiss-cpu": QT_TRANSLATE_NOOP("PackagesDialog", "The nndescent (default) and faiss kNN backends"),
    "hnswlib": QT_TRANSLATE_NOOP("PackagesDialog", "The hnsw kNN backend (may need a C++ compiler to build)"),
    "pynndescent": QT_TRANSLATE_NOOP("PackagesDialog", "The nndescent kNN graph from 50 000 patches, about twice as "
                                                       "fast as faiss's (with numba: about 45 MB installed; its "
                                                       "kernels are compiled while installing, about a minute)"),
    "torch": QT_TRANSLATE_NOOP("PackagesDialog", "DINOv2 uniqueness: runs the image model. Large: the CPU wheel is "
                                                 "about 200 MB to download, about 750 MB installed"),
    "transformers": QT_TRANSLATE_NOOP("PackagesDialog", "DINOv2 uniqueness: loads the DINOv2 model (about 130 MB "
                                                        "installed)"),
    "safetensors": QT_TRANSLATE_NOOP("PackagesDialog", "DINOv2 uniqueness: reads the model weights"),
    "dask": QT_TRANSLATE_NOOP("PackagesDialog", "Dask scheduler: runs mask reads and DINOv2 embeddings as tasks "
                                                "on a cluster (about 1.5 MB to download)"),
    "distributed": QT_TRANSLATE_NOOP("PackagesDialog", "Dask scheduler: connects to a scheduler or starts local "
                                                       "workers (about 1 MB to download)"),
}
#: What a ticked box adds: DINOv2's packages, a Dask cluster's packages.
OPTIONAL = OPTIONAL_PACKAGES + SCALE_OUT


def package_status(pip_name: str, folder: str):
    """``(where, version)``: where is "qgis" (QGIS's Python has it), "folder" (the plugin's folder) or None."""
    try:
        spec = importlib.util.find_spec(import_name(pip_name))
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return None, None
    origin = spec.origin or next(iter(spec.submodule_search_locations or []), "")
    where = "folder" if os.path.abspath(origin or "").startswith(os.path.abspath(folder) + os.sep) else "qgis"
    try:
        version = importlib.metadata.version(pip_name)
    except importlib.metadata.PackageNotFoundError:
        version = getattr(sys.modules.get(import_name(pip_name)), "__version__", None)
    return where, version


class InstallPackagesTask(QgsTask):
    """The installer in a background thread; ``on_done(result)`` runs in the main thread when it ended."""

    def __init__(self, installer: Installer, on_done=None):
        super().__init__(translate("PackagesDialog", "Installing Python packages for Balanced Sampling"),
                         QgsTask.CanCancel)
        self.installer = installer
        self.on_done = on_done
        self.result = None

    def run(self):
        self.result = self.installer.run(log=self.log, progress=self.setProgress)
        return self.result.ok

    @staticmethod
    def log(line: str) -> None:
        QgsMessageLog.logMessage(line, LOG_TAG, Qgis.Info)

    def cancel(self):
        self.installer.cancel()  # kills pip at once; run() then returns a canceled result
        super().cancel()

    def finished(self, ok):  # runs in the main thread
        if self.result is not None:
            level = Qgis.Success if self.result.ok else (Qgis.Warning if self.result.canceled else Qgis.Critical)
            QgsMessageLog.logMessage(self.result.message, LOG_TAG, level)
        if self.result is not None and self.result.ok:
            add_packages_folder_to_path()  # usable now, without a restart, by what was not imported yet
            importlib.invalidate_caches()
        if self.on_done is not None:
            self.on_done(self.result)


class PackagesDialog(QDialog):
    """The packages the plugin uses, where each comes from, and Install/Cancel."""

    def __init__(self, parent=None, folder=None, installer_factory=None, message_bar=None):
        super().__init__(parent)
        self.folder = folder or packages_folder()
        self.installer_factory = installer_factory or self.make_installer
        self.message_bar = message_bar
        self.task = None
        self.setObjectName("balancedSamplingPackagesDialog")
        self.setWindowTitle(translate("PackagesDialog", "Balanced Sampling — Python packages"))
        self.resize(780, 560)
        layout = QVBoxLayout(self)
        intro = QLabel(translate(
            "PackagesDialog", "Balanced Sampling uses these Python packages. Missing ones are installed into the "
                              "plugin's own folder, {}, which QGIS searches after its own packages: nothing QGIS "
                              "ships (numpy, GDAL) is replaced. pip runs with the Python of this QGIS: {}").format(
            self.folder, Installer(self.folder).python))
        intro.setWordWrap(True)
        intro.setTextInteractionFlags(Qt.TextSelectableByMouse)
        layout.addWidget(intro)
        self.table = QTableWidget(0, 3, self)
        self.table.setHorizontalHeaderLabels([translate("PackagesDialog", "Package"),
                                              translate("PackagesDialog", "Needed for"),
                                              translate("PackagesDialog", "Status")])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.Stretch)
        self.table.setWordWrap(True)
        layout.addWidget(self.table)
        self.torch_box = QCheckBox(translate("PackagesDialog", "Also install torch, transformers and safetensors, "
                                                               "for DINOv2 uniqueness (large: about 200 MB to "
                                                               "download, about 1 GB on disk)"))
        self.torch_box.setObjectName("installTorch")
        layout.addWidget(self.torch_box)
        self.dask_box = QCheckBox(translate("PackagesDialog", "Also install Dask, to run on clusters (about 5 MB)"))
        self.dask_box.setObjectName("installDask")
        self.dask_box.setToolTip(translate(
            "PackagesDialog", "dask and distributed, needed only when the advanced parameter Dask scheduler is "
                              "set. With their dependencies: about 5 MB to download, about 40 MB on disk."))
        layout.addWidget(self.dask_box)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 100)
        self.progress.setVisible(False)
        layout.addWidget(self.progress)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextSelectableByMouse)
        layout.addWidget(self.status)
        buttons = QDialogButtonBox(self)
        self.install_button = QPushButton(translate("PackagesDialog", "Install"))
        self.install_button.setObjectName("installPackages")
        self.cancel_button = QPushButton(translate("PackagesDialog", "Cancel installation"))
        self.cancel_button.setEnabled(False)
        buttons.addButton(self.install_button, QDialogButtonBox.ActionRole)
        buttons.addButton(self.cancel_button, QDialogButtonBox.ActionRole)
        buttons.addButton(QDialogButtonBox.Close)
        buttons.rejected.connect(self.reject)
        self.install_button.clicked.connect(self.install)
        self.cancel_button.clicked.connect(self.cancel)
        layout.addWidget(buttons)
        self.refresh()

    def rows(self):
        """``(pip name, what it enables, status text, missing)`` per package, optional ones last."""
        rows = []
        for name in RUNTIME_PACKAGES + OPTIONAL:
            where, version = package_status(name, self.folder)
            if where == "qgis":
                status = translate("PackagesDialog", "Installed with QGIS ({})").format(version or "?")
            elif where == "folder":
                status = translate("PackagesDialog", "Installed in the plugin's folder ({})").format(version or "?")
            else:
                status = (translate("PackagesDialog", "Optional, not installed") if name in OPTIONAL
                          else translate("PackagesDialog", "Missing"))
            rows.append((name, translate("PackagesDialog", ENABLES[name]), status, where is None))
        return rows

    def showEvent(self, event):  # noqa: N802 (Qt API name)
        super().showEvent(event)
        QTimer.singleShot(0, self.table.resizeRowsToContents)

    def refresh(self):
        rows = self.rows()
        self.table.setRowCount(len(rows))
        for row, (name, enables, status, _missing) in enumerate(rows):
            for column, text in enumerate((name, enables, status)):
                self.table.setItem(row, column, QTableWidgetItem(text))
        self.table.resizeColumnToContents(0)
        self.table.resizeColumnToContents(2)
        self.table.resizeRowsToContents()  # again once shown: the wrapped column has its width only then
        missing = [name for name, _, _, absent in rows if absent and name in RUNTIME_PACKAGES]
        optional_missing = [name for name, _, _, absent in rows if absent and name in OPTIONAL_PACKAGES]
        dask_missing = [name for name, _, _, absent in rows if absent and name in SCALE_OUT]
        self.torch_box.setEnabled(bool(optional_missing))
        self.dask_box.setEnabled(bool(dask_missing))
        if not self.task:
            self.status.setText(translate("PackagesDialog", "Missing: {}.").format(", ".join(missing)) if missing else
                                translate("PackagesDialog", "Every package the algorithms need is installed."))

    def selection(self):
        """The pip names to install: the runtime packages, and those of each ticked box."""
        return (list(RUNTIME_PACKAGES) + (list(OPTIONAL_PACKAGES) if self.torch_box.isChecked() else [])
                + (list(SCALE_OUT) if self.dask_box.isChecked() else []))

    def make_installer(self, packages):
        # QGIS's own sys.path entries (its python folders, plugins) count as installed for pip's resolver.
        return Installer(self.folder, packages, extra_paths=[path for path in sys.path if os.path.isdir(path)])

    def install(self):
        if self.task is not None:
            return
        self.task = InstallPackagesTask(self.installer_factory(self.selection()), self.installation_ended)
        self.task.progressChanged.connect(lambda value: self.progress.setValue(int(value)))
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.install_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText(translate("PackagesDialog", "Installing… pip's log is in the message log (View > "
                                                        "Panels > Log Messages), tab Balanced Sampling."))
        QgsApplication.taskManager().addTask(self.task)

    def cancel(self):
        if self.task is not None:
            self.task.cancel()

    def installation_ended(self, result):
        self.task = None
        self.install_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress.setVisible(False)
        self.refresh()
        text = (result.message if result is not None
                else translate("PackagesDialog", "The installation ended without a result."))
        if result is not None and result.ok and result.installed:
            loaded = [name for name in result.installed if import_name(name.split()[0]) in sys.modules]
            if loaded:
                text += " " + translate("PackagesDialog", "Restart QGIS to use the new versions of {}.").format(
                    ", ".join(name.split()[0] for name in loaded))
        self.status.setText(text)
        if self.message_bar is not None:
            level = Qgis.Success if result is not None and result.ok else Qgis.Critical
            self.message_bar.pushMessage("Balanced Sampling", text.splitlines()[0], level, 10)
