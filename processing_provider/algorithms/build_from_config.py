"""Build balanced dataset from config: a pytorch-smt-tools balanced_dataset YAML, run end to end."""

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFile,
)

from ...balanced_sampling_plugin.contract import SAMPLER_WEIGHT
from ...balanced_sampling_plugin.dependencies import CLUSTERS, WEIGHTS
from ...balanced_sampling_plugin.file_safety import OutputFiles
from ..styles import GraduatedStyle, style_on_load
from ..utils import engine_errors, engine_progress
from .base import BalancedSamplingAlgorithm


class BuildFromConfig(BalancedSamplingAlgorithm):
    CONFIG = "CONFIG"
    OUTPUT = "OUTPUT"
    CSV_PATH = "CSV_PATH"
    GEOJSON_PATH = "GEOJSON_PATH"
    SAMPLING_METHOD = "SAMPLING_METHOD"
    EFFECTIVE_SAMPLE_SIZE = "EFFECTIVE_SAMPLE_SIZE"
    CORESET_CSV_PATH = "CORESET_CSV_PATH"

    group_key = "weights"
    required_modules = CLUSTERS + WEIGHTS + ("yaml", "shapely")
    added_fields = (SAMPLER_WEIGHT,)
    icon_name = "build_from_config.svg"

    def name(self):
        return "buildfromconfig"

    def displayName(self):  # noqa: N802 (QGIS API name)
        return self.tr("Build balanced dataset from config")

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        return self.tr(
            "Runs a pytorch-smt-tools balanced_dataset YAML config end to end, as "
            "`pytorch-smt-tools build-balanced-dataset config.yaml` does, in either of the tool's forms: the "
            "documentation's (database keys under input, mode embeddings) or the code's (backend: postgres with a "
            "postgres section, mode both or embeddings_only, exclude_mask_border_nodata…). Patches come from "
            "input.patch_records (a list or a CSV), input.image_dir + mask_dir (folders cut into patch_size "
            "windows), or a PostgreSQL tile table; then composition clusters (clustering, exclusion), DINOv2 "
            "uniqueness when the mode computes it (or, with fetch_embeddings, from the tile table's embedding "
            "column), the config's sampling_method (rank_max when it names none, as in the tool; the log says so; "
            "also target_shares, repeat_factor, rare_class_sampling, sqrt_inverse_freq) with the plugin's own "
            "weights: section (target_shares, min_ess, lift_class, max_weight, …) and boost, and it writes "
            "output.csv_path (the trainer's columns and the "
            "tool's diagnostics) and, when set, output.geojson_path in output.geojson_crs. mode masks_only with a "
            "method that needs uniqueness is an error that says how to fix it. Relative paths are read from the "
            "config's folder. An unknown key is an error that names it and lists the accepted ones. A coreset: "
            "block beside balanced_dataset: then selects the training subset from the CSV just written, as "
            "pytorch-smt-tools select-coreset does (its input_csv_path and parquet_path default to the run's "
            "CSV and embedding cache; see Select coreset from config).\n\n"
            "<b>Config</b>: the YAML file.\n<b>Sampler weights</b>: the patch layer with every computed field, "
            "to style and inspect in QGIS."
        )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        self.addParameter(QgsProcessingParameterFile(
            self.CONFIG, self.tr("balanced_dataset config (YAML)"), fileFilter=self.tr("YAML files (*.yaml *.yml)")))
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT, self.tr("Sampler weights"), QgsProcessing.TypeVectorPolygon, optional=True,
            createByDefault=True))
        self.addOutput(QgsProcessingOutputFile(self.CSV_PATH, self.tr("Training CSV")))
        self.addOutput(QgsProcessingOutputFile(self.GEOJSON_PATH, self.tr("GeoJSON")))
        self.addOutput(QgsProcessingOutputString(self.SAMPLING_METHOD, self.tr("Sampling method applied")))
        self.addOutput(QgsProcessingOutputNumber(self.EFFECTIVE_SAMPLE_SIZE, self.tr("Effective sample size")))
        self.addOutput(QgsProcessingOutputFile(self.CORESET_CSV_PATH, self.tr("Coreset CSV (coreset: block)")))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        self.require_packages(parameters, context)
        progress = engine_progress(feedback)
        write_layer = bool(self.destination(parameters, context))  # empty: skipped
        layer_file = self.output_file(parameters, context) if write_layer else None
        from ...balanced_sampling_plugin.config import load_config
        from ...balanced_sampling_plugin.pipeline import run_config
        from ...balanced_sampling_plugin.selection.config import coreset_block_beside, run_coreset_config
        from ...balanced_sampling_plugin.weights import effective_sample_size

        config_path = self.parameterAsFile(parameters, self.CONFIG, context)

        # The CSV, the GeoJSON and the layer are renamed into place together, after everything succeeded.
        with OutputFiles() as outputs:
            with engine_errors():
                config = load_config(config_path)
                # A coreset: block is checked before anything runs; it reads the CSV this run writes.
                coreset = coreset_block_beside(config_path, config.output.csv_path, config.embeddings.parquet_path,
                                               writes_cache=config.runs_dinov2)
                # The coreset's CSV is checked with the run's outputs: never the config, a raster, the model or
                # another output.
                coreset_output = {"coreset.output_csv_path": coreset.output_csv_path} if coreset else {}
                result = run_config(config, progress.child(0, 0.85),
                                    other_outputs={self.OUTPUT: layer_file, **coreset_output}, outputs=outputs)
            weights = result.weights.weights.to_numpy(dtype=float)
            ess = effective_sample_size(weights[result.weights.included])
            output_values = {self.CSV_PATH: result.csv_path, self.GEOJSON_PATH: result.geojson_path,
                             self.SAMPLING_METHOD: result.sampling_method, self.EFFECTIVE_SAMPLE_SIZE: ess}
            if write_layer:
                dest_id = self.write_patch_layer(parameters, context, feedback, result.table, result.rings,
                                                 result.crs_authid, result.crs_wkt, outputs,
                                                 progress_span=(85.0, 100.0))
                style_on_load(self, context, dest_id, GraduatedStyle(SAMPLER_WEIGHT))
                output_values[self.OUTPUT] = dest_id
            self.commit(outputs, feedback)
        feedback.pushInfo(self.tr("Training CSV: {}").format(result.csv_path))
        if result.geojson_path:
            feedback.pushInfo(self.tr("GeoJSON: {}").format(result.geojson_path))
        if coreset is not None:
            with engine_errors():
                run = run_coreset_config(coreset, progress)
            feedback.pushInfo(self.tr("Coreset CSV ({}, {} of {} patches): {}").format(
                run.method, run.n_selected, run.n_pool, run.output_csv_path))
            output_values[self.CORESET_CSV_PATH] = run.output_csv_path
        return output_values
