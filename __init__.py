"""QGIS entry point of the Balanced Sampling plugin."""


def classFactory(iface):  # noqa: N802 (QGIS API name)
    """Return the plugin instance; ``iface`` is None under qgis_process."""
    from .processing_provider.plugin import BalancedSamplingPlugin

    return BalancedSamplingPlugin(iface)
