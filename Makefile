# Balanced Sampling — QGIS plugin. `make demo` and `make test` work on a fresh Debian 12 machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PLUGIN_NAME := balanced_sampling
VERSION := $(shell sed -n 's/^version=//p' metadata.txt)
DEMO_DIR ?= demo_data
QGIS_PROFILE ?= $(HOME)/.local/share/QGIS/QGIS3/profiles/default
export QT_QPA_PLATFORM ?= offscreen

.PHONY: help setup test test-engine demo bench profile zip deploy transup transcompile model lint clean screenshots

help:
	@echo "make demo     run the whole chain through qgis_process on a generated dataset"
	@echo "make test     install what is missing, then run the whole test suite"
	@echo "make bench    time every stage and the kNN backends at 10k-155k patches (docs/benchmarks.md)"
	@echo "make profile  pyinstrument call trees of the kNN step at 155k patches (docs/profiles/)"
	@echo "make zip      build dist/$(PLUGIN_NAME)-$(VERSION).zip, installable in QGIS"
	@echo "make deploy   copy the plugin into your QGIS profile ($(QGIS_PROFILE))"
	@echo "make screenshots  the QGIS desktop under Xvfb runs the chain; screenshots in build/screenshots/"

setup:
	@bash scripts/setup.sh

# Engine tests run without pytest-qgis, so nothing in that session can lean on QGIS.
PYTEST := $(PY) -m pytest -q -p no:cacheprovider
test: setup transcompile
	$(PYTEST) -p no:pytest_qgis tests/engine
	$(PYTEST) --qgis_disable_gui tests/qgis tests/headless tests/desktop

test-engine: setup
	$(PYTEST) -p no:pytest_qgis tests/engine

demo: setup
	$(PY) scripts/demo.py --folder $(DEMO_DIR)

bench: setup
	$(PY) bench/run_all.py

# pyinstrument call trees of the kNN step at 155k (docs/profiles/); a dev tool, not a dependency.
profile: setup
	$(PY) -m pip install -q pyinstrument
	$(PY) bench/profile_knn.py --backend nndescent --data scenes
	$(PY) bench/profile_knn.py --backend hnsw --data scenes

zip: transcompile
	@bash scripts/make_zip.sh $(PLUGIN_NAME) $(VERSION)

deploy: zip
	mkdir -p "$(QGIS_PROFILE)/python/plugins"
	rm -rf "$(QGIS_PROFILE)/python/plugins/$(PLUGIN_NAME)"
	cd "$(QGIS_PROFILE)/python/plugins" && unzip -q "$(CURDIR)/dist/$(PLUGIN_NAME)-$(VERSION).zip"
	@echo "Installed into $(QGIS_PROFILE)/python/plugins/$(PLUGIN_NAME); enable it in Plugins > Manage."

# Translations. QGIS side: Qt (.ts -> .qm, ignored by git, built here). Engine (balanced_sampling_plugin, no Qt):
# GNU gettext, messages marked _("…") / N_("…"), catalogue balanced_sampling_plugin/locale/<lang>/LC_MESSAGES/
# balanced_sampling.po, compiled to the tracked .mo beside it (the zip ships it; tests/engine/test_i18n.py checks both).
ENGINE_LOCALE := balanced_sampling_plugin/locale
ENGINE_POT := $(ENGINE_LOCALE)/$(PLUGIN_NAME).pot
transup:
	pylupdate5 -noobsolete __init__.py $(wildcard processing_provider/*.py processing_provider/*/*.py) \
		-ts i18n/$(PLUGIN_NAME)_pt_BR.ts
	xgettext --language=Python --from-code=UTF-8 --keyword=_ --keyword=N_ --keyword=tr --add-comments=Translators: \
		--add-location=file --sort-by-file --package-name="Balanced Sampling" --msgid-bugs-address="https://github.com/balanced-sampling/qgis-balanced-sampling/issues" \
		-o $(ENGINE_POT) $$(find balanced_sampling_plugin -name '*.py' -not -path '*/__pycache__/*' | LC_ALL=C sort)
	@for po in $(ENGINE_LOCALE)/*/LC_MESSAGES/$(PLUGIN_NAME).po; do [ -e "$$po" ] || continue; \
		msgmerge --quiet --update --backup=none --add-location=file "$$po" $(ENGINE_POT) \
		&& msgattrib --no-obsolete -o "$$po" "$$po"; done

transcompile:
	@for ts in i18n/*.ts; do [ -e "$$ts" ] || continue; lrelease -silent "$$ts" -qm "$${ts%.ts}.qm"; done
	@for po in $(ENGINE_LOCALE)/*/LC_MESSAGES/$(PLUGIN_NAME).po; do [ -e "$$po" ] || continue; \
		msgfmt --check-format -o "$${po%.po}.mo" "$$po"; done

# Regenerate the shipped graphical model from scripts/build_model.py.
model: setup
	$(PY) scripts/build_model.py

lint: setup
	$(PY) -m ruff check . || true

clean:
	rm -rf build dist $(DEMO_DIR) .pytest_cache

# The real QGIS desktop under Xvfb, the zip in a fresh profile: every dialog, the chain as a background task, its
# styled layer and report (tests/desktop, also in `make test`); screenshots for people to look at, pt_BR beside.
screenshots: setup transcompile
	$(PYTEST) --qgis_disable_gui tests/desktop
	$(PY) -m tests.desktop.test_desktop --locale pt_BR --out build/screenshots/pt_BR
	@echo "Screenshots: build/screenshots/ (pt_BR: build/screenshots/pt_BR/), what QGIS showed: desktop.json beside them"
