"""Runs INSIDE the QGIS desktop (``qgis --code desktop_script.py``), driven by tests/desktop/test_desktop.py.

A user's session in steps, each a ``QTimer.singleShot`` so the GUI keeps painting in between:
open every balanced_sampling algorithm's dialog, the packages dialog, the chain's dialog from the
Plugins menu entry, run the chain from that dialog (Processing runs it as a QgsTask in the
background), then look at what the user gets: the styled weight layer and its legend, the report in
the Results Viewer, the message log. Screenshots go to ``screenshots``; everything measured goes as
JSON to ``result`` (both named in the JSON file ``$BS_DESKTOP_CONFIG``), then QGIS quits.

No assertion here: the test asserts on the JSON, so a failure shows everything that was seen.
"""

import json
import os
import time
import traceback

from qgis.core import Qgis, QgsApplication, QgsMessageLog, QgsProject, QgsVectorLayer
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QApplication, QDockWidget, QTextEdit
from qgis.utils import iface

with open(os.environ["BS_DESKTOP_CONFIG"], encoding="utf-8") as _file:
    CONFIG = json.load(_file)
PROVIDER = "balanced_sampling"
CHAIN = f"{PROVIDER}:buildbalanceddataset"


class Session:
    def __init__(self):
        self.started = time.monotonic()
        self.result = {"steps": [], "messages": [], "dialogs": {}, "screenshots": [], "errors": []}
        self.shots = CONFIG["screenshots"]
        os.makedirs(self.shots, exist_ok=True)
        self.finished = False
        self.chain_dialog = None
        self.active_tasks_seen = []
        # Early, so everything logged from here on (plugin, Processing, Python errors) is kept.
        QgsApplication.messageLog().messageReceived.connect(self.on_message)
        # If anything hangs (a modal box, a task that never ends), write what was seen and quit anyway.
        self.watchdog = QTimer()
        self.watchdog.setSingleShot(True)
        self.watchdog.timeout.connect(lambda: self.finish("watchdog: the session did not end in time"))
        self.watchdog.start(int(CONFIG.get("watchdog_s", 150) * 1000))

    # -- bookkeeping ---------------------------------------------------------------------------------
    def on_message(self, message, tag, level):
        self.result["messages"].append({"tag": tag, "level": int(level), "message": message,
                                        "critical": level == Qgis.Critical})

    def step(self, name):
        self.result["steps"].append({"step": name, "t": round(time.monotonic() - self.started, 2)})

    def shot(self, widget, name):
        """Save ``widget`` (after painting what is pending) as ``NN_name.png``; None: the whole screen,
        every window on it (Xvfb has no window manager: no title bars, windows where Qt put them)."""
        for _ in range(5):
            QApplication.processEvents()
        image = QApplication.primaryScreen().grabWindow(0) if widget is None else widget.grab()
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
        path = os.path.join(self.shots, f"{len(self.result['screenshots']) + 1:02d}_{name}.png")
        if image.save(path):
            self.result["screenshots"].append(os.path.basename(path))
        else:
            self.result["errors"].append(f"screenshot {name} not saved")

    def guarded(self, function):
        """A step that cannot leave the session hanging: an exception is recorded, then QGIS quits."""
        def run():
            if self.finished:
                return
            try:
                function()
            except Exception:  # noqa: BLE001 (recorded for the test, which fails on it)
                self.finish(f"{function.__name__}: {traceback.format_exc()}")
        return run

    def later(self, function, ms=200):
        QTimer.singleShot(ms, self.guarded(function))

    def finish(self, error=None):
        if self.finished:
            return
        self.finished = True
        if error:
            self.result["errors"].append(error)
        self.step("finish")
        try:
            self.result["message_log_panel"] = self.message_log_panel()
            self.result["seconds"] = round(time.monotonic() - self.started, 2)
            with open(CONFIG["result"], "w", encoding="utf-8") as file:
                json.dump(self.result, file, indent=1, default=str)
        finally:
            self.quit()

    @staticmethod
    def quit():
        """Quit as a user does, closing the main window of a project marked saved: QgsApplication.exit() from a
        script sometimes crashed QGIS 3.22 in QgsProject::clear() (setMapStyleDockLayer), also with no plugin
        algorithm run; exit() stays as the fallback should the window not close."""
        QgsProject.instance().setDirty(False)
        for widget in QApplication.topLevelWidgets():  # a modal dialog left open would keep the window
            if widget.isVisible() and widget is not iface.mainWindow() and widget.isModal():
                widget.close()
        QTimer.singleShot(0, iface.mainWindow().close)
        QTimer.singleShot(15000, lambda: QgsApplication.exit(0))

    @staticmethod
    def message_log_panel():
        """{tab: text} of the Log Messages panel: everything logged since QGIS started, plugin loading
        included (before this script could connect to the log)."""
        from qgis.PyQt.QtWidgets import QPlainTextEdit, QTabWidget

        panel = {}
        dock = iface.mainWindow().findChild(QDockWidget, "MessageLog")  # holds a QgsMessageLogViewer
        for tabs in dock.findChildren(QTabWidget) if dock is not None else []:
            for i in range(tabs.count()):
                page = tabs.widget(i)
                texts = [page] if isinstance(page, QPlainTextEdit) else page.findChildren(QPlainTextEdit)
                panel[tabs.tabText(i)] = "\n".join(text.toPlainText() for text in texts)
        return panel

    # -- the steps -----------------------------------------------------------------------------------
    def start(self):
        self.step("start")
        import qgis.utils

        # Proves the log is watched: the test finds this line (and ignores it).
        QgsMessageLog.logMessage("desktop test: watching the message log", "Balanced Sampling desktop test",
                                 Qgis.Critical)

        # Xvfb has no window manager to maximise it: the main window fills the screen by hand.
        iface.mainWindow().showNormal()
        iface.mainWindow().setGeometry(QApplication.primaryScreen().availableGeometry())
        self.result["plugin_loaded"] = PROVIDER in qgis.utils.plugins
        self.result["plugin_active"] = PROVIDER in qgis.utils.active_plugins
        provider = QgsApplication.processingRegistry().providerById(PROVIDER)
        self.result["algorithms"] = sorted(a.id() for a in provider.algorithms()) if provider else []
        self.result["qgis_version"] = Qgis.QGIS_VERSION
        self.result["menu_actions"] = sorted(
            name for name in ("balancedSamplingBuildAction", "balancedSamplingInstallPackagesAction")
            if self.action(name) is not None)
        self.show_toolbox()
        self.shot(iface.mainWindow(), "main_window_toolbox_with_the_algorithms")
        self.pending = list(self.result["algorithms"])
        self.later(self.open_next_dialog)

    def show_toolbox(self):
        """The Processing Toolbox, the plugin's provider unfolded: what a user browses to find the algorithms."""
        dock = iface.mainWindow().findChild(QDockWidget, "ProcessingToolbox")
        if dock is None:
            return
        dock.show()
        tree = getattr(dock, "algorithmTree", None)
        model = tree.model() if tree is not None else None
        for row in range(model.rowCount() if model is not None else 0):
            index = model.index(row, 0)
            if "balance" in str(model.data(index)).lower():  # "Balanced sampling", "Amostragem balanceada"
                tree.setExpanded(index, True)
                for child in range(model.rowCount(index)):
                    tree.setExpanded(model.index(child, 0, index), True)
            else:
                tree.setExpanded(index, False)

    def open_next_dialog(self):
        """Each algorithm's dialog, as the Toolbox opens it: created, shown, screenshot, closed."""
        import processing

        if not self.pending:
            self.later(self.open_packages_dialog)
            return
        algorithm_id = self.pending.pop(0)
        dialog = processing.createAlgorithmDialog(algorithm_id)
        entry = {"opened": dialog is not None}
        if dialog is not None:
            dialog.show()
            entry["title"] = dialog.windowTitle()
            self.shot(dialog, "dialog_" + algorithm_id.split(":")[1])
            dialog.close()
            dialog.deleteLater()
        self.result["dialogs"][algorithm_id] = entry
        self.later(self.open_next_dialog, 100)

    def open_packages_dialog(self):
        self.step("packages dialog")
        action = self.action("balancedSamplingInstallPackagesAction")
        action.trigger()
        import qgis.utils

        dialog = getattr(qgis.utils.plugins[PROVIDER], "packages_dialog", None)
        self.result["packages_dialog_opened"] = bool(dialog is not None and dialog.isVisible())
        if dialog is not None:
            self.shot(dialog, "install_python_packages")
            dialog.close()
        self.later(self.open_chain_dialog)

    def action(self, name):
        from qgis.PyQt.QtWidgets import QAction

        return iface.mainWindow().findChild(QAction, name)

    def open_chain_dialog(self):
        """Plugins > Balanced Sampling > Build balanced dataset…, then the user fills the inputs."""
        self.step("chain dialog")
        import qgis.utils

        self.action("balancedSamplingBuildAction").trigger()
        dialog = qgis.utils.plugins[PROVIDER].dialog
        self.chain_dialog = dialog
        self.result["chain_dialog_opened"] = dialog.isVisible()
        self.result["chain_dialog_title"] = dialog.windowTitle()
        dialog.setParameters(CONFIG["parameters"])
        dialog.algorithmFinished.connect(self.on_chain_finished)
        self.shot(dialog, "chain_dialog_filled_in")
        self.later(self.run_chain)

    def run_chain(self):
        """What the Run button does: Processing makes a QgsProcessingAlgRunnerTask and returns at once."""
        self.step("run chain")
        manager = QgsApplication.taskManager()
        manager.taskAdded.connect(lambda task_id: self.active_tasks_seen.append(
            manager.task(task_id).description() if manager.task(task_id) else str(task_id)))
        self.chain_dialog.runAlgorithm()
        # Back in the main thread while the chain runs: the GUI stays responsive.
        self.result["returned_before_finished"] = "chain_finished" not in self.result
        self.result["tasks_after_run"] = [task.description() for task in manager.activeTasks()]
        self.later(self.watch_running, 300)

    def watch_running(self):
        if "chain_finished" in self.result:
            return
        if not self.result.get("running_shot"):
            self.result["running_shot"] = True
            self.shot(None, "screen_while_the_chain_runs")
        self.later(self.watch_running, 500)

    def on_chain_finished(self, successful, results):
        self.step("chain finished")
        self.result["chain_finished"] = bool(successful)
        self.result["chain_results"] = {k: v for k, v in results.items() if k not in ("CHILD_RESULTS", "CHILD_INPUTS")}
        log = self.chain_dialog.findChild(QTextEdit, "txtLog")
        self.result["chain_log"] = log.toPlainText() if log is not None else None
        # Layers load and the dialog settles after this signal: look once the event loop ran.
        self.later(self.inspect, 1500)

    def inspect(self):
        self.step("inspect")
        self.shot(self.chain_dialog, "chain_dialog_log")
        layers = []
        for layer in QgsProject.instance().mapLayers().values():
            entry = {"name": layer.name(), "source": layer.source(), "id": layer.id()}
            if isinstance(layer, QgsVectorLayer):
                renderer = layer.renderer()
                entry.update(fields=[f.name() for f in layer.fields()], features=layer.featureCount(),
                             renderer=renderer.type() if renderer else None,
                             legend=[item.label() for item in renderer.legendSymbolItems()] if renderer else [])
                entry["layer_tree_legend"] = self.layer_tree_legend(layer)
                if renderer is not None and renderer.type() == "RuleRenderer":
                    entry["rules"] = [{"label": r.label(), "filter": r.filterExpression()}
                                      for r in renderer.rootRule().children()]
            layers.append(entry)
        self.result["layers"] = layers
        from processing.core.ProcessingResults import resultsList

        self.result["results_viewer"] = [{"name": r.name, "filename": r.filename} for r in resultsList.getResults()]
        dock = self.results_dock()
        self.result["results_dock_visible"] = bool(dock is not None and dock.isVisible())
        if dock is not None:
            tree = dock.treeResults
            self.result["results_dock_items"] = [tree.topLevelItem(i).text(0) for i in range(tree.topLevelItemCount())]
        self.chain_dialog.close()
        weight = next((layer for layer in QgsProject.instance().mapLayers().values()
                       if isinstance(layer, QgsVectorLayer) and "sampler_weight" in layer.fields().names()), None)
        if weight is not None:
            iface.setActiveLayer(weight)
            iface.mapCanvas().setExtent(weight.extent())
            iface.mapCanvas().refreshAllLayers()
        self.later(self.final_shots, 2500)

    def layer_tree_legend(self, layer):
        """The legend the Layers panel shows under the layer."""
        view = iface.layerTreeView()
        node = QgsProject.instance().layerTreeRoot().findLayer(layer.id())
        if node is None:
            return None
        model = view.layerTreeModel()
        return [legend_node.data(0) for legend_node in model.layerLegendNodes(node)]

    def results_dock(self):
        for dock in iface.mainWindow().findChildren(QDockWidget):
            if hasattr(dock, "treeResults"):
                return dock
        return None

    def final_shots(self):
        self.shot(iface.mainWindow(), "weight_layer_legend_and_results_viewer")
        dock = self.results_dock()
        if dock is not None and dock.isVisible():
            self.shot(dock, "results_viewer")
        self.result["active_tasks_at_end"] = [t.description() for t in QgsApplication.taskManager().activeTasks()]
        self.result["tasks_seen"] = self.active_tasks_seen
        self.finish()


SESSION = Session()
QTimer.singleShot(int(CONFIG.get("start_delay_ms", 1000)), SESSION.guarded(SESSION.start))
