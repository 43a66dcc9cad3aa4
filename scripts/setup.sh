#!/usr/bin/env bash
# Installs what the plugin, its demo and its tests need on Debian 12, idempotently:
#   1. QGIS 3.22 (Debian packages) when qgis_process is missing and we are root,
#      plus the other Debian tools the test suite drives (PostgreSQL server, Qt lrelease, gettext msgfmt);
#   2. a venv on /usr/bin/python3 with --system-site-packages (so `import qgis` works),
#      with the pinned pip packages of requirements.txt + constraints.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
STAMP="$VENV/.setup-stamp"

need_apt=()
[ -x /usr/bin/qgis_process.bin ] || need_apt+=(qgis python3-qgis qgis-providers)
/usr/bin/python3 -c "import ensurepip" 2>/dev/null || need_apt+=(python3-venv)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v lrelease >/dev/null 2>&1 || [ -x /usr/lib/qt5/bin/lrelease ] || need_apt+=(qttools5-dev-tools)
command -v pylupdate5 >/dev/null 2>&1 || need_apt+=(pyqt5-dev-tools)
command -v xvfb-run >/dev/null 2>&1 || need_apt+=(xvfb)
command -v msgfmt >/dev/null 2>&1 && command -v xgettext >/dev/null 2>&1 || need_apt+=(gettext)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian packages: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "setup: missing Debian packages (${need_apt[*]}); run as root or: sudo apt-get install ${need_apt[*]}" >&2
    [ -x /usr/bin/qgis_process.bin ] || exit 1
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV on /usr/bin/python3 with system site packages"
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi
want=$(cat requirements.txt constraints.txt | sha1sum | cut -d' ' -f1)
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
  echo "setup: installing pinned Python packages into $VENV (a few minutes the first time)"
  extra=()
  # The machine keeps a local CPU wheel of torch; without it pip would fetch the CUDA build.
  [ -d /opt/wheels ] && extra+=(--find-links /opt/wheels)
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${extra[@]}" \
      -r requirements.txt -c constraints.txt 2>&1 | grep -v "is ignored: it is neither" || true
  "$VENV/bin/python" -c "import numpy, pandas, sklearn, rasterio, pyarrow, qgis.core" \
      || { echo "setup: the venv does not import its packages" >&2; exit 1; }
  echo "$want" > "$STAMP"
fi

# The nndescent kNN backend's kernels, compiled into numba's on-disk cache here (about a minute, once per machine
# and again when numba or their source changes), so that no kNN run pays for it; a second when already cached.
if kernels=$("$VENV/bin/python" -m balanced_sampling_plugin.nn_descent 2>&1); then
  echo "setup: $kernels"
else
  echo "setup: warning: $kernels" >&2
fi

# 3. build/wheelhouse: the plugin's pinned runtime packages (processing_provider/python_packages.txt) for this
#    machine, which the installer tests install offline. torch only from a local CPU wheel (/opt/wheels), never
#    PyPI's CUDA build; source-only packages (hnswlib) are built into wheels once. When the package registry cannot
#    be reached the wheelhouse stays unfilled and the installer tests skip, saying so.
WHEELHOUSE=${WHEELHOUSE:-build/wheelhouse}
packages=$("$VENV/bin/python" -c "from balanced_sampling_plugin.dependencies import RUNTIME_PACKAGES as r, \
OPTIONAL_PACKAGES as o; print(' '.join(p for p in r + o if p != 'torch'))")
torch_wheel=$(ls /opt/wheels/torch-*.whl 2>/dev/null | head -n 1 || true)
# What the installer picks for a QGIS whose attrs is older than 24 (Debian 12's): affine 3 breaks there.
older="affine==2.4.0"
wheels_want=$( (cat processing_provider/python_packages.txt; echo "$packages $torch_wheel $older") | sha1sum | cut -d' ' -f1)
if [ "$(cat "$WHEELHOUSE/.complete" 2>/dev/null)" != "$wheels_want" ]; then
  echo "setup: downloading the plugin's pinned packages into $WHEELHOUSE (once)"
  mkdir -p "$WHEELHOUSE"
  rm -f "$WHEELHOUSE/.complete"
  links=()
  [ -n "$torch_wheel" ] && { packages="$packages torch"; links=(--find-links "$(dirname "$torch_wheel")"); }
  log=$(mktemp)
  # shellcheck disable=SC2086 # one word per package
  if "$VENV/bin/python" -m pip download -q --disable-pip-version-check -d "$WHEELHOUSE" "${links[@]}" \
      -c processing_provider/python_packages.txt $packages >"$log" 2>&1 \
      && "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps -d "$WHEELHOUSE" $older \
      >>"$log" 2>&1; then
    for sdist in "$WHEELHOUSE"/*.tar.gz "$WHEELHOUSE"/*.zip; do
      [ -e "$sdist" ] || continue
      echo "setup: building a wheel of $(basename "$sdist") (about a minute, once)"
      "$VENV/bin/python" -m pip wheel -q --disable-pip-version-check --no-deps -w "$WHEELHOUSE" "$sdist" \
          >>"$log" 2>&1 || { cat "$log" >&2; echo "setup: could not build $sdist" >&2; exit 1; }
      rm -f "$sdist"
    done
    echo "$wheels_want" > "$WHEELHOUSE/.complete"
  elif ! "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps -d "$WHEELHOUSE/.reachable" \
      "$(grep -m1 '^mdurl==' processing_provider/python_packages.txt)" >/dev/null 2>&1; then
    # pip says "ResolutionImpossible" rather than "unreachable": one tiny pinned wheel tells them apart.
    echo "setup: the package registry cannot be reached: $WHEELHOUSE stays unfilled, the installer tests will skip" >&2
  else
    grep -v "is ignored: it is neither" "$log" >&2 || true
    echo "setup: pip download into $WHEELHOUSE failed" >&2
    rm -f "$log"
    exit 1
  fi
  rm -rf "$log" "$WHEELHOUSE/.reachable"
fi
