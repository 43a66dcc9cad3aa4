"""The QGIS plugin object: registers the Processing provider (also headless) and the GUI entries."""

import os

from qgis.core import QgsApplication, QgsSettings
from qgis.PyQt.QtCore import QCoreApplication, QTranslator

from ..balanced_sampling_plugin.i18n import set_language as set_engine_language

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def user_locale() -> str:
    """The QGIS user interface locale, e.g. 'pt_BR': the override QGIS stores in locale/userLocale, else the
    locale QGIS runs in (the system's)."""
    return str(QgsSettings().value("locale/userLocale", "") or QgsApplication.locale() or "")


def load_translator(locale: str):
    """Install the plugin's .qm for ``locale`` (or its language, 'pt' for 'pt_BR'); return it or None."""
    for name in (locale, locale.split("_")[0]):
        path = os.path.join(PLUGIN_DIR, "i18n", f"balanced_sampling_{name}.qm")
        if name and os.path.exists(path):
            translator = QTranslator()
            if translator.load(path):
                QCoreApplication.installTranslator(translator)
                return translator
    return None


class BalancedSamplingPlugin:
    """Created by ``classFactory``; ``iface`` is None under qgis_process, so nothing here touches it at import."""

    def __init__(self, iface):
        from .python_packages import add_packages_folder_to_path

        self.iface = iface
        self.provider = None
        add_packages_folder_to_path()  # packages the user installed for the plugin, after QGIS's own
        # Before any algorithm exists, so display names and help come out translated.
        self.translator = load_translator(user_locale())
        set_engine_language(user_locale())  # the engine's log lines, errors and report (gettext, stdlib only)

    def initProcessing(self):  # noqa: N802 (QGIS API name)
        """Register the provider; qgis_process calls only this, the desktop calls it through initGui."""
        from .provider import BalancedSamplingProvider

        if self.provider is None:
            provider = BalancedSamplingProvider()
            # The registry refuses (and deletes) a second provider with the same id; keep only a live one.
            if QgsApplication.processingRegistry().addProvider(provider):
                self.provider = provider

    def initGui(self):  # noqa: N802 (QGIS API name)
        self.initProcessing()
        from .qgis_compat import give_batch_results_a_timestamp

        self.undo_batch_fix = give_batch_results_a_timestamp()  # batch runs of algorithms with a report
        from qgis.PyQt.QtGui import QIcon
        from qgis.PyQt.QtWidgets import QAction

        self.menu_name = self.tr("&Balanced Sampling")
        self.action = QAction(
            QIcon(os.path.join(PLUGIN_DIR, "resources", "icons", "balanced_sampling.svg")),
            self.tr("Build balanced dataset…"), self.iface.mainWindow())
        self.action.setObjectName("balancedSamplingBuildAction")
        self.action.triggered.connect(self.open_build_dialog)
        self.iface.addPluginToMenu(self.menu_name, self.action)
        self.packages_action = QAction(self.tr("Install Python packages…"), self.iface.mainWindow())
        self.packages_action.setObjectName("balancedSamplingInstallPackagesAction")
        self.packages_action.triggered.connect(self.open_packages_dialog)
        self.iface.addPluginToMenu(self.menu_name, self.packages_action)
        self.toolbar = self.iface.addToolBar(self.tr("Balanced Sampling"))
        self.toolbar.setObjectName("BalancedSamplingToolbar")
        self.toolbar.addAction(self.action)

    def tr(self, text):
        return QCoreApplication.translate("BalancedSamplingPlugin", text)

    def open_build_dialog(self):
        """The chain's Processing dialog; QGIS runs it as a background task with progress and cancel."""
        import processing

        self.dialog = processing.createAlgorithmDialog("balanced_sampling:buildbalanceddataset")
        self.dialog.show()

    def open_packages_dialog(self):
        """The plugin's packages, which are installed, and an Install button (pip in a background task)."""
        from .package_dialog import PackagesDialog

        if getattr(self, "packages_dialog", None) is None:
            self.packages_dialog = PackagesDialog(self.iface.mainWindow(), message_bar=self.iface.messageBar())
        else:  # a new dialog has just read the packages; an old one must look again
            self.packages_dialog.refresh()
        self.packages_dialog.show()
        self.packages_dialog.raise_()

    def unload(self):
        packages_action = getattr(self, "packages_action", None)
        if packages_action is not None:
            self.iface.removePluginMenu(self.menu_name, packages_action)
            self.packages_action = None
        dialog = getattr(self, "packages_dialog", None)
        if dialog is not None:
            dialog.cancel()  # a running installation is stopped (pip killed); the folder stays as it was
            dialog.close()
            self.packages_dialog = None
        action = getattr(self, "action", None)
        if action is not None:
            self.iface.removePluginMenu(self.menu_name, action)
            self.iface.removeToolBarIcon(action)
            self.toolbar.deleteLater()
            self.action = self.toolbar = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        if self.translator is not None:
            QCoreApplication.removeTranslator(self.translator)
            self.translator = None
        undo = getattr(self, "undo_batch_fix", None)
        if undo is not None:
            undo()
            self.undo_batch_fix = None
