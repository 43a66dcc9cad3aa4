"""The real QGIS desktop, under Xvfb, with the built zip installed into a fresh profile, as a user gets it.

tests/desktop/desktop_script.py runs inside QGIS (``qgis --code``): it opens every algorithm's dialog, the
packages dialog and the chain's dialog from the Plugins menu, runs the chain from that dialog (a background
QgsTask) on two 256 px tiles, and writes what it saw as JSON; the tests below read it. Screenshots land in
build/screenshots/ for people to look at (``make screenshots`` makes them alone).
"""

import configparser
import json
import os
import shutil
import signal
import subprocess
import time
import zipfile

import pytest

from tests.conftest import ROOT

QGIS = "/usr/bin/qgis"
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "desktop_script.py")
SCREENSHOTS = os.environ.get("BS_SCREENSHOTS") or os.path.join(ROOT, "build", "screenshots")
TIMEOUT_S = 240

pytestmark = [
    pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is not installed (apt-get install xvfb)"),
    pytest.mark.skipif(not os.path.exists(QGIS), reason="the QGIS desktop (/usr/bin/qgis) is not installed"),
]


def plugin_version() -> str:
    with open(os.path.join(ROOT, "metadata.txt"), encoding="utf-8") as file:
        return next(line.split("=", 1)[1].strip() for line in file if line.startswith("version="))


def fresh_profile(folder, locale="en_US") -> str:
    """A QGIS config folder whose default profile holds the zip's plugin, enabled; nothing else set."""
    version = plugin_version()
    built = subprocess.run(["bash", os.path.join(ROOT, "scripts", "make_zip.sh"), "balanced_sampling", version],
                           cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert built.returncode == 0, built.stderr
    profile = os.path.join(folder, "profiles", "default")
    plugins = os.path.join(profile, "python", "plugins")
    os.makedirs(plugins)
    with zipfile.ZipFile(os.path.join(ROOT, "dist", f"balanced_sampling-{version}.zip")) as zipped:
        zipped.extractall(plugins)
    ini = configparser.RawConfigParser()
    ini.optionxform = str  # QGIS's keys are case-sensitive
    ini["PythonPlugins"] = {"balanced_sampling": "true"}
    # No news or version check to wait on; the user interface in ``locale``, whatever the machine's.
    ini["qgis"] = {"checkVersion": "false", "allowVersionCheck": "false"}
    ini["locale"] = {"overrideFlag": "true", "userLocale": locale, "globalLocale": locale}
    ini["core"] = {"NewsFeed\\httpsfeedqgisorg\\disabled": "true"}
    os.makedirs(os.path.join(profile, "QGIS"))
    with open(os.path.join(profile, "QGIS", "QGIS3.ini"), "w", encoding="utf-8") as file:
        ini.write(file, space_around_delimiters=False)
    return folder


def venv_site() -> str:
    import sysconfig

    return sysconfig.get_paths()["purelib"]


def run_desktop(work, screenshots=SCREENSHOTS, timeout=TIMEOUT_S, locale="en_US") -> dict:
    """Start QGIS with the script, wait for it to quit; the script's JSON, plus how QGIS ended."""
    from balanced_sampling_plugin.synthetic import make_synthetic_dataset

    work = str(work)
    dataset = make_synthetic_dataset(os.path.join(work, "data"), n_tiles=2, tile_size=256)
    config_path, result_path = os.path.join(work, "config.json"), os.path.join(work, "result.json")
    if os.path.isdir(screenshots):
        for name in os.listdir(screenshots):
            if name.endswith(".png"):
                os.remove(os.path.join(screenshots, name))
    with open(config_path, "w", encoding="utf-8") as file:
        json.dump({"result": result_path, "screenshots": screenshots, "watchdog_s": max(5, timeout - 30),
                   "parameters": {"IMAGE_FOLDER": os.path.dirname(dataset.images[0]),
                                  "MASK_FOLDER": os.path.dirname(dataset.masks[0]), "PATCH_SIZE": 64}}, file)
    runtime = os.path.join(work, "runtime")
    os.makedirs(runtime, mode=0o700)
    env = dict(os.environ, BS_DESKTOP_CONFIG=config_path, QGIS_CUSTOM_CONFIG_PATH=fresh_profile(
        os.path.join(work, "config"), locale), XDG_RUNTIME_DIR=runtime, HOME=work, LANG="C.UTF-8", LC_ALL="C.UTF-8",
        PYTHONPATH=os.pathsep.join(p for p in (venv_site(), os.environ.get("PYTHONPATH")) if p))
    env.pop("QT_QPA_PLATFORM", None)  # the Makefile exports offscreen; the desktop draws on Xvfb
    started = time.monotonic()
    # Its own process group: on a timeout, xvfb-run, Xvfb and QGIS all go, not only xvfb-run.
    desktop = subprocess.Popen(["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", QGIS, "--nologo",
                                "--noversioncheck", "--code", SCRIPT], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = desktop.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(desktop.pid, signal.SIGKILL)
        stdout, stderr = desktop.communicate()
        raise AssertionError(f"QGIS did not quit within {timeout} s:\n{stdout[-3000:]}\n{stderr[-3000:]}") from None
    seen = {}
    if os.path.exists(result_path):
        with open(result_path, encoding="utf-8") as file:
            seen = json.load(file)
    seen.update(returncode=desktop.returncode, stderr=stderr[-5000:], stdout=stdout[-5000:],
                wall_s=round(time.monotonic() - started, 1))
    os.makedirs(screenshots, exist_ok=True)
    with open(os.path.join(screenshots, "desktop.json"), "w", encoding="utf-8") as file:
        json.dump(seen, file, indent=1)  # what the screenshots come with, for people to read
    return seen


@pytest.fixture(scope="module")
def desktop(tmp_path_factory):
    seen = run_desktop(tmp_path_factory.mktemp("desktop"))
    assert seen.get("steps"), f"the script wrote nothing (exit {seen['returncode']}):\n{seen['stderr']}"
    assert not seen["errors"], "\n".join(seen["errors"])
    return seen


def test_qgis_starts_with_the_plugin_and_quits(desktop):
    assert desktop["plugin_loaded"] and desktop["plugin_active"]
    assert desktop["menu_actions"] == ["balancedSamplingBuildAction", "balancedSamplingInstallPackagesAction"]
    assert desktop["returncode"] == 0, desktop["stderr"]


def test_every_algorithm_dialog_opens(desktop):
    assert "balanced_sampling:buildbalanceddataset" in desktop["algorithms"]
    assert len(desktop["algorithms"]) >= 8
    assert set(desktop["dialogs"]) == set(desktop["algorithms"])
    assert all(entry["opened"] for entry in desktop["dialogs"].values()), desktop["dialogs"]
    assert desktop["packages_dialog_opened"]
    assert desktop["chain_dialog_opened"]


def test_chain_runs_as_a_background_task(desktop):
    assert desktop.get("chain_finished") is True, desktop.get("chain_log")
    # runAlgorithm returned to the event loop while the chain ran: a task, not the main thread.
    assert desktop["returned_before_finished"]
    assert any("Build balanced dataset" in description for description in desktop["tasks_seen"]), desktop
    assert not desktop["active_tasks_at_end"]
    assert "does not read uniqueness" in desktop["chain_log"]  # class_balanced: DINOv2 skipped, and said so


def weight_layer(desktop):
    layers = [layer for layer in desktop["layers"] if "sampler_weight" in layer.get("fields", [])]
    assert len(layers) == 1, desktop["layers"]
    return layers[0]


def test_weight_layer_is_styled_with_distinct_classes(desktop):
    layer = weight_layer(desktop)
    assert layer["features"] == 32  # 2 tiles of 256 px, 64 px patches
    assert layer["renderer"] == "RuleRenderer"
    legend = layer["legend"]
    assert len(legend) >= 2 and len(set(legend)) == len(legend), legend
    assert "excluded" in legend  # the nodata strip of tile 1 holds excluded patches
    assert layer["layer_tree_legend"] == legend  # what the Layers panel shows


def test_report_is_in_the_results_viewer(desktop):
    report = desktop["chain_results"]["OUTPUT_REPORT"]
    assert report.endswith(".html")
    assert report in [entry["filename"] for entry in desktop["results_viewer"]], desktop["results_viewer"]
    assert desktop["results_dock_items"], "the Results Viewer lists nothing"


SELF_CHECK_TAG = "Balanced Sampling desktop test"  # desktop_script.py logs one Critical line there, on purpose
#: Critical lines QGIS itself logs on a machine without GRASS or SAGA: not the plugin's.
QGIS_OWN = ("Problem with GRASS installation", "Problem with SAGA installation")


def log_problems(tag, level_critical, text):
    if tag == SELF_CHECK_TAG or any(own in text for own in QGIS_OWN):
        return False
    if tag == "Python warning":  # a library's deprecation is no error; the plugin's own warnings are
        return "balanced_sampling" in text
    return tag == "Python error" or level_critical or "Traceback" in text


def test_no_python_error_in_the_message_log(desktop):
    # What arrived while the script ran (connected to QgsMessageLog.messageReceived)...
    assert any(m["tag"] == SELF_CHECK_TAG for m in desktop["messages"]), "the message log was not watched"
    problems = [m for m in desktop["messages"] if log_problems(m["tag"], m["critical"], m["message"])]
    # ...and the Log Messages panel: everything since QGIS started, the plugin's loading included.
    panel = desktop["message_log_panel"]
    assert "Plugins" in panel and "Loaded Balanced Sampling" in panel["Plugins"], panel
    problems += [{"tag": tag, "line": line} for tag, text in panel.items() for line in text.splitlines()
                 if log_problems(tag, "CRITICAL" in line, line)]
    problems += [{"tag": "Python error", "text": panel["Python error"]}] if "Python error" in panel else []
    assert not problems, json.dumps(problems, indent=1)
    assert "Traceback" not in desktop["chain_log"]
    assert "Traceback" not in desktop["stderr"], desktop["stderr"]


def test_screenshots_were_saved(desktop):
    names = desktop["screenshots"]
    assert any(name.endswith("dialog_buildbalanceddataset.png") for name in names)
    assert any(name.endswith("weight_layer_legend_and_results_viewer.png") for name in names)
    for name in names:
        assert os.path.getsize(os.path.join(SCREENSHOTS, name)) > 10_000, name


if __name__ == "__main__":  # python -m tests.desktop.test_desktop --locale pt_BR: one session, no assertions
    import argparse
    import sys
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--locale", default="en_US")
    parser.add_argument("--out", default=SCREENSHOTS)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        seen = run_desktop(work, screenshots=arguments.out, locale=arguments.locale)
    print("\n".join(os.path.join(arguments.out, name) for name in seen.get("screenshots", [])))
    print(f"QGIS ran {seen['wall_s']} s, exit {seen['returncode']}; errors: {seen.get('errors') or 'none'}")
    sys.exit(0 if seen.get("chain_finished") and not seen.get("errors") else 1)
