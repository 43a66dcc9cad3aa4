"""Every user-facing string is translatable, pt_BR covers them all, and the plugin loads it."""

import glob
import os
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree

import pytest
from qgis.core import QgsApplication, QgsSettings
from qgis.PyQt.QtCore import QCoreApplication

from tests.conftest import ROOT

TS_FILE = os.path.join(ROOT, "i18n", "balanced_sampling_pt_BR.ts")
QM_FILE = TS_FILE[:-3] + ".qm"


def messages(ts_path):
    tree = ElementTree.parse(ts_path)
    for context in tree.getroot().iter("context"):
        name = context.findtext("name")
        for message in context.iter("message"):
            yield name, message.findtext("source"), message.find("translation")


@pytest.mark.skipif(shutil.which("pylupdate5") is None, reason="pylupdate5 (Debian pyqt5-dev-tools) is missing")
def test_ts_file_holds_every_string_of_the_code(tmp_path):
    sources = sorted(glob.glob(os.path.join(ROOT, "processing_provider", "**", "*.py"), recursive=True))
    fresh = str(tmp_path / "fresh.ts")
    subprocess.run(["pylupdate5", "-noobsolete", *sources, "-ts", fresh], check=True, capture_output=True)
    in_code = {(c, s) for c, s, _ in messages(fresh)}
    in_ts = {(c, s) for c, s, _ in messages(TS_FILE)}
    assert in_code - in_ts == set(), "run `make transup` and translate the new strings"


def test_every_pt_br_message_is_translated():
    missing = [(c, s[:60]) for c, s, t in messages(TS_FILE)
               if t is None or t.get("type") == "unfinished" or not (t.text or "").strip()]
    assert missing == []


def test_plugin_loads_pt_br_for_a_brazilian_user(plugin):
    assert os.path.exists(QM_FILE), "make transcompile builds the .qm"
    import balanced_sampling

    settings = QgsSettings()
    previous = settings.value("locale/userLocale", "")
    settings.setValue("locale/userLocale", "pt_BR")
    localized = balanced_sampling.classFactory(None)
    try:
        assert localized.translator is not None
        algorithm = QgsApplication.processingRegistry().createAlgorithmById("balanced_sampling:createpatchfootprints")
        assert algorithm.displayName() != "Create patch footprints"
        assert algorithm.displayName() == QCoreApplication.translate("CreatePatchFootprints", "Create patch footprints")
    finally:
        localized.unload()
        settings.setValue("locale/userLocale", previous)
    assert algorithm.displayName() == "Create patch footprints", "unload removes the translator"
