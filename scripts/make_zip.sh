#!/usr/bin/env bash
# Build dist/<name>-<version>.zip holding <name>/… : the plugin as QGIS installs it.
# Only what QGIS needs goes in: tracked plugin files and compiled translations; no tests,
# benchmarks, CI files, caches or venv.
set -euo pipefail
name=$1 version=$2
cd "$(dirname "$0")/.."
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$name" dist
git ls-files -- metadata.txt __init__.py LICENSE README.md 'balanced_sampling_plugin/*' 'processing_provider/*' \
    'resources/*' 'i18n/*.ts' ':!:**/__pycache__/**' | while read -r file; do
  mkdir -p "$stage/$name/$(dirname "$file")"
  cp "$file" "$stage/$name/$file"
done
for qm in i18n/*.qm; do [ -e "$qm" ] && cp "$qm" "$stage/$name/i18n/"; done
rm -f "dist/$name-$version.zip"
(cd "$stage" && python3 -m zipfile -c "$OLDPWD/dist/$name-$version.zip" "$name")
echo "dist/$name-$version.zip"
