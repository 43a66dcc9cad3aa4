"""The QGIS plugin object: registers the Processing provider (also headless) and the GUI entries."""

from qgis.core import QgsApplication


class BalancedSamplingPlugin:
    """Created by ``classFactory``; ``iface`` is None under qgis_process, so nothing here touches it at import."""

    def __init__(self, iface):
        self.iface = iface
        self.provider = None

    def initProcessing(self):  # noqa: N802 (QGIS API name)
        """Register the provider; qgis_process calls only this, the desktop calls it through initGui."""
        from .provider import BalancedSamplingProvider

        if self.provider is None:
            provider = BalancedSamplingProvider()
            # The registry refuses (and deletes) a second provider with the same id; keep only a live one.
            if QgsApplication.processingRegistry().addProvider(provider):
                self.provider = provider

    def initGui(self):  # noqa: N802 (QGIS API name)
        self.initProcessing()

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
