"""The Processing provider ``balanced_sampling``."""

import glob
import os

from qgis.core import QgsProcessingModelAlgorithm, QgsProcessingProvider
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from .algorithms.build_balanced_dataset import BuildBalancedDataset
from .algorithms.build_from_config import BuildFromConfig
from .algorithms.combine_sampler_weights import CombineSamplerWeights
from .algorithms.compute_composition_clusters import ComputeCompositionClusters
from .algorithms.compute_dinov2_uniqueness import ComputeDinov2Uniqueness
from .algorithms.create_patch_footprints import CreatePatchFootprints
from .algorithms.import_patch_records import ImportPatchRecords
from .algorithms.load_tiles_from_postgres import LoadTilesFromPostgres
from .algorithms.select_coreset import SelectCoreset
from .algorithms.select_coreset_from_config import SelectCoresetFromConfig
from .utils import icon_path

PROVIDER_ID = "balanced_sampling"


class BalancedSamplingProvider(QgsProcessingProvider):
    def loadAlgorithms(self):  # noqa: N802 (QGIS API name)
        algorithms = (CreatePatchFootprints(), ComputeCompositionClusters(), ComputeDinov2Uniqueness(),
                      CombineSamplerWeights(), BuildBalancedDataset(), ImportPatchRecords(),
                      LoadTilesFromPostgres(), BuildFromConfig(), SelectCoreset(),
                      SelectCoresetFromConfig())
        for algorithm in algorithms:
            self.addAlgorithm(algorithm)
        # The shipped graphical models (scripts/build_model.py writes them). A 3.22 model file holds one
        # string for group and group id: theirs is the algorithms' group id, named here as the algorithms
        # name it (translated), so the Toolbox shows one group.
        group_names = {algorithm.groupId(): algorithm.group() for algorithm in algorithms}
        for path in sorted(glob.glob(os.path.join(os.path.dirname(__file__), "models", "*.model3"))):
            model = QgsProcessingModelAlgorithm()
            if model.fromFile(path):
                model.setSourceFilePath(path)
                model.setGroup(group_names.get(model.groupId(), model.group()))
                self.addAlgorithm(model)

    def id(self):
        return PROVIDER_ID

    def name(self):
        return QCoreApplication.translate("BalancedSamplingProvider", "Balanced sampling")

    def longName(self):  # noqa: N802 (QGIS API name)
        return self.name()

    def icon(self):
        return QIcon(icon_path("balanced_sampling.svg"))
