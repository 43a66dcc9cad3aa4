"""What every Balanced Sampling algorithm shares: translation, icon, group, instance creation."""

from qgis.core import QgsProcessingAlgorithm
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ..utils import icon_path


class BalancedSamplingAlgorithm(QgsProcessingAlgorithm):
    """Base class; subclasses define name, displayName, shortHelpString, initAlgorithm, processAlgorithm."""

    #: File name of the algorithm's icon in resources/icons.
    icon_name = "balanced_sampling.svg"

    def tr(self, string):
        # The class name is the context, as pylupdate5 records it for self.tr() calls.
        return QCoreApplication.translate(type(self).__name__, string)

    def createInstance(self):  # noqa: N802 (QGIS API name)
        return type(self)()

    #: One of "patches", "signals", "weights".
    group_key = "signals"

    def group(self):
        # Literal strings so pylupdate5 finds them; the base class is their context.
        names = {
            "patches": QCoreApplication.translate("BalancedSamplingAlgorithm", "Patch records"),
            "signals": QCoreApplication.translate("BalancedSamplingAlgorithm", "Sampling signals"),
            "weights": QCoreApplication.translate("BalancedSamplingAlgorithm", "Sampler weights"),
        }
        return names[self.group_key]

    def groupId(self):  # noqa: N802 (QGIS API name)
        return self.group_key

    def icon(self):
        return QIcon(icon_path(self.icon_name))

    def helpUrl(self):  # noqa: N802 (QGIS API name)
        return "https://github.com/balanced-sampling/qgis-balanced-sampling#readme"
