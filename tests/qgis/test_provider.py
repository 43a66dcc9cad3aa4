"""The plugin loads headless, registers its provider and algorithms, and documents them."""

import os

from qgis.core import QgsApplication

EXPECTED = {"balanced_sampling:createpatchfootprints", "balanced_sampling:computecompositionclusters",
            "balanced_sampling:computedinov2uniqueness", "balanced_sampling:combinesamplerweights"}


def test_provider_registered_with_algorithms(plugin):
    provider = QgsApplication.processingRegistry().providerById("balanced_sampling")
    assert provider is not None
    assert provider.name() == "Balanced sampling"
    ids = {algorithm.id() for algorithm in provider.algorithms()}
    assert EXPECTED <= ids


def test_every_algorithm_is_documented(plugin):
    provider = QgsApplication.processingRegistry().providerById("balanced_sampling")
    icons = []
    for algorithm in provider.algorithms():
        help_text = algorithm.shortHelpString()
        assert len(help_text) > 200, algorithm.id()
        assert algorithm.group() and algorithm.groupId(), algorithm.id()
        assert not algorithm.icon().isNull(), algorithm.id()
        if hasattr(algorithm, "icon_name"):  # Python algorithms (the shipped model uses QGIS's model icon)
            icons.append(algorithm.icon_name)
        for parameter in algorithm.parameterDefinitions():
            assert parameter.description(), f"{algorithm.id()}:{parameter.name()} has no label"
    assert len(icons) == len(set(icons)), "one icon per algorithm"


def test_unload_removes_the_provider(qgis_app, qgis_processing):
    import balanced_sampling

    second = balanced_sampling.classFactory(None)
    registry = QgsApplication.processingRegistry()
    # The session's plugin fixture already registered one; a second instance must not clash or leak.
    before = len(registry.providers())
    second.initProcessing()
    second.unload()
    assert len(registry.providers()) == before
    assert registry.providerById("balanced_sampling") is not None, "the first instance's provider stays"


def test_unload_then_reload(plugin):
    registry = QgsApplication.processingRegistry()
    plugin.unload()
    assert registry.providerById("balanced_sampling") is None
    plugin.initProcessing()
    assert registry.providerById("balanced_sampling") is not None


def test_metadata_is_complete():
    from tests.conftest import ROOT

    import configparser

    parser = configparser.ConfigParser()
    parser.read(os.path.join(ROOT, "metadata.txt"))
    general = parser["general"]
    for key in ("name", "qgisMinimumVersion", "description", "about", "version", "author", "email",
                "repository", "tracker", "tags", "category", "icon", "hasProcessingProvider"):
        assert general.get(key, "").strip(), key
    assert general["qgisMinimumVersion"] == "3.22"
    assert general["category"] == "Analysis"
    assert general["hasProcessingProvider"] == "yes"
    assert os.path.isfile(os.path.join(ROOT, general["icon"]))
