#!/usr/bin/env bash
# qgis_process with this checkout installed as the plugin `balanced_sampling`, headless.
# Debian's /usr/bin/qgis_process wrapper passes --noversioncheck, which 3.22 rejects,
# so we call the binary. Pip packages reach QGIS's embedded Python through PYTHONPATH.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
plugins="$root/build/qgis_plugins"
mkdir -p "$plugins"
[ -e "$plugins/balanced_sampling" ] || ln -sfn "$root" "$plugins/balanced_sampling"
site=$(echo "$root"/.venv/lib/python3*/site-packages)
export QGIS_PLUGINPATH="$plugins${QGIS_PLUGINPATH:+:$QGIS_PLUGINPATH}"
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
export QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/runtime-$(id -u)}
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
# A profile of our own, so running the demo or tests never changes the user's QGIS settings.
export QGIS_CUSTOM_CONFIG_PATH=${QGIS_CUSTOM_CONFIG_PATH:-$root/build/qgis_profile}
ini="$QGIS_CUSTOM_CONFIG_PATH/profiles/default/QGIS/QGIS3.ini"
if ! grep -qs "^balanced_sampling=true" "$ini"; then
  /usr/bin/qgis_process.bin plugins enable balanced_sampling >/dev/null 2>&1 \
    || { echo "qgis_process could not enable the balanced_sampling plugin" >&2; exit 1; }
fi
exec /usr/bin/qgis_process.bin "$@"
