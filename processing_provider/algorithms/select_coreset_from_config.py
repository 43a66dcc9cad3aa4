"""Select coreset from config: the tool's YAML ``coreset:`` block, run as ``pytorch-smt-tools select-coreset``."""

from qgis.core import (
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterFile,
)

from ...balanced_sampling_plugin.dependencies import TABLES
from ..utils import engine_errors, engine_progress
from .base import BalancedSamplingAlgorithm


class SelectCoresetFromConfig(BalancedSamplingAlgorithm):
    CONFIG = "CONFIG"
    OUTPUT_CSV = "OUTPUT_CSV"
    METHOD = "METHOD"
    SELECTED_PATCHES = "SELECTED_PATCHES"
    POOL_PATCHES = "POOL_PATCHES"

    group_key = "weights"
    icon_name = "select_coreset_from_config.svg"
    required_modules = TABLES + ("yaml",)

    def name(self):
        return "selectcoresetfromconfig"

    def displayName(self):  # noqa: N802 (QGIS API name)
        return self.tr("Select coreset from config")

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        return self.tr(
            "Runs the coreset: block of a pytorch-smt-tools YAML config, as `pytorch-smt-tools select-coreset "
            "config.yaml` does: reads input_csv_path (the training CSV of Combine sampler weights or "
            "build-balanced-dataset), scores its patches by method (lc, cb, fd, fa, lc_fd, fa_cb; fd, fa, lc_fd "
            "and fa_cb read the embeddings from parquet_path), keeps the budget (a fraction of the patches that "
            "are not excluded, or a count with budget_mode: count) and writes output_csv_path: the selected rows "
            "with the trainer's columns, sampler weights re-normalised to mean 1 over the subset, the score "
            "(score_column) and selection_step. Relative paths are read from the config's folder; an unknown key "
            "is an error that names it. The log compares the subset with a random one of the same size.\n\n"
            "For the spatial steps (a vector layer's polygons first, spatial diversity) use Select coreset on the "
            "patch layer.")

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        self.addParameter(QgsProcessingParameterFile(
            self.CONFIG, self.tr("Config with a coreset: block (YAML)"),
            fileFilter=self.tr("YAML files (*.yaml *.yml)")))
        self.addOutput(QgsProcessingOutputFile(self.OUTPUT_CSV, self.tr("Training CSV of the selected patches")))
        self.addOutput(QgsProcessingOutputString(self.METHOD, self.tr("Method")))
        self.addOutput(QgsProcessingOutputNumber(self.SELECTED_PATCHES, self.tr("Selected patches")))
        self.addOutput(QgsProcessingOutputNumber(self.POOL_PATCHES, self.tr("Patches not excluded")))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        self.require_packages(parameters, context)
        from ...balanced_sampling_plugin.selection.config import run_coreset_config

        with engine_errors():
            run = run_coreset_config(self.parameterAsFile(parameters, self.CONFIG, context), engine_progress(feedback))
        feedback.pushInfo(self.tr("Training CSV: {}").format(run.output_csv_path))
        return {self.OUTPUT_CSV: run.output_csv_path, self.METHOD: run.method,
                self.SELECTED_PATCHES: run.n_selected, self.POOL_PATCHES: run.n_pool}
