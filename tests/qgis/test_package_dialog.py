"""Plugins > Balanced Sampling > Install Python packages…: the two optional boxes (DINOv2's torch & co., a Dask
cluster's dask and distributed), with the probe of what is installed replaced, so any mix of missing packages can
be shown without installing anything."""

import pytest


@pytest.fixture
def modules(plugin):
    from balanced_sampling.balanced_sampling_plugin import dependencies
    from balanced_sampling.processing_provider import package_dialog, package_installer

    return dependencies, package_dialog, package_installer


@pytest.fixture
def open_dialog(modules, monkeypatch, tmp_path):
    """``open_dialog(missing, in_folder=())``: the dialog as if only ``missing`` were absent, ``in_folder`` in the
    plugin's folder and everything else shipped with QGIS."""
    _, package_dialog, _ = modules
    opened = []

    def open_(missing, in_folder=()):
        def status(name, folder):
            assert folder == str(tmp_path)
            if name in missing:
                return None, None
            return ("folder", "2026.8.0") if name in in_folder else ("qgis", "1.0")

        monkeypatch.setattr(package_dialog, "package_status", status)
        dialog = package_dialog.PackagesDialog(folder=str(tmp_path), installer_factory=lambda packages: packages)
        opened.append(dialog)
        return dialog

    yield open_
    for dialog in opened:
        dialog.deleteLater()


def table(dialog):
    return {dialog.table.item(row, 0).text(): dialog.table.item(row, 2).text()
            for row in range(dialog.table.rowCount())}


def test_the_dask_box_is_unticked_short_and_its_packages_are_listed_after_torch(modules, open_dialog):
    dependencies, _, _ = modules
    dialog = open_dialog({"torch", "transformers", "safetensors", "dask", "distributed"}, in_folder={"pandas"})
    assert dialog.dask_box.objectName() == "installDask"
    assert not dialog.dask_box.isChecked() and dialog.dask_box.isEnabled()
    assert "Dask" in dialog.dask_box.text() and "MB" in dialog.dask_box.text()
    assert len(dialog.dask_box.text()) <= 50  # no horizontal scrolling
    assert "distributed" in dialog.dask_box.toolTip()
    rows = table(dialog)
    assert list(rows) == list(dependencies.RUNTIME_PACKAGES + dependencies.OPTIONAL_PACKAGES
                              + dependencies.SCALE_OUT)
    assert rows["dask"] == rows["distributed"] == rows["torch"] == "Optional, not installed"
    assert rows["pandas"] == "Installed in the plugin's folder (2026.8.0)"
    needed_for = {dialog.table.item(row, 0).text(): dialog.table.item(row, 1).text()
                  for row in range(dialog.table.rowCount())}
    assert needed_for["dask"].startswith("Dask scheduler") and needed_for["distributed"].startswith("Dask scheduler")
    # The torch box is as it was.
    assert dialog.torch_box.objectName() == "installTorch" and not dialog.torch_box.isChecked()
    assert "DINOv2" in dialog.torch_box.text() and "1 GB" in dialog.torch_box.text()
    assert dialog.torch_box.isEnabled()


@pytest.mark.parametrize("missing, torch_enabled, dask_enabled", [
    (set(), False, False),
    ({"dask"}, False, True),
    ({"distributed"}, False, True),
    ({"dask", "distributed"}, False, True),
    ({"torch"}, True, False),
    ({"safetensors", "distributed"}, True, True),
])
def test_each_box_is_enabled_only_while_one_of_its_packages_is_missing(open_dialog, missing, torch_enabled,
                                                                        dask_enabled):
    dialog = open_dialog(missing)
    assert dialog.torch_box.isEnabled() == torch_enabled
    assert dialog.dask_box.isEnabled() == dask_enabled
    for name in ("dask", "distributed"):
        assert table(dialog)[name] == ("Optional, not installed" if name in missing else "Installed with QGIS (1.0)")


def test_ticking_the_dask_box_adds_dask_and_distributed_to_the_request_and_unticking_removes_them(modules,
                                                                                                  open_dialog):
    dependencies, _, pi = modules
    runtime, torch, dask = (list(dependencies.RUNTIME_PACKAGES), list(dependencies.OPTIONAL_PACKAGES),
                            list(dependencies.SCALE_OUT))
    assert dask == ["dask", "distributed"]
    dialog = open_dialog({"pandas", "torch", "transformers", "safetensors", "dask", "distributed"})
    # What QGIS ships is never asked for; the rest of the selection is.
    probe = pi.Probe("py", modules={"numpy": True, "yaml": True})

    def requested():
        return pi.packages_to_request(dialog.selection(), probe)

    assert dialog.selection() == runtime == pi.default_selection()
    assert not {"dask", "distributed", "torch"} & set(requested())
    dialog.dask_box.setChecked(True)
    assert dialog.selection() == runtime + dask == pi.default_selection(with_dask=True)
    assert requested()[-2:] == dask and "torch" not in requested()
    assert not dialog.torch_box.isChecked()  # the torch box is untouched
    dialog.torch_box.setChecked(True)
    assert dialog.selection() == runtime + torch + dask == pi.default_selection(with_torch=True, with_dask=True)
    dialog.dask_box.setChecked(False)
    assert dialog.selection() == runtime + torch == pi.default_selection(with_torch=True)
    assert dialog.torch_box.isChecked() and not {"dask", "distributed"} & set(requested())
    dialog.torch_box.setChecked(False)
    assert dialog.selection() == runtime
    # Dask shipped by QGIS: ticked or not, it is not asked for, distributed still is.
    dialog.dask_box.setChecked(True)
    assert pi.packages_to_request(dialog.selection(), pi.Probe("py", modules={"dask": True}))[-1:] == ["distributed"]


def test_the_dialog_hands_its_selection_to_the_installer(modules, open_dialog, monkeypatch):
    dependencies, package_dialog, _ = modules
    dialog = open_dialog({"dask", "distributed"})
    handed = []

    class Task:
        def __init__(self, installer, on_done):
            handed.append(installer)
            self.progressChanged = type("Signal", (), {"connect": lambda self, slot: None})()

    class Application:  # the module's QgsApplication, for its task manager only
        @staticmethod
        def taskManager():  # noqa: N802 (Qt API name)
            return type("Manager", (), {"addTask": lambda self, task: None})()

    monkeypatch.setattr(package_dialog, "InstallPackagesTask", Task)
    monkeypatch.setattr(package_dialog, "QgsApplication", Application)
    dialog.dask_box.setChecked(True)
    dialog.install()
    assert handed == [list(dependencies.RUNTIME_PACKAGES + dependencies.SCALE_OUT)]  # the factory gets the names
