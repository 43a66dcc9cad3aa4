"""Build balanced dataset: the whole chain in one algorithm (footprints -> clusters -> uniqueness -> combine)."""

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterDefinition,
    QgsProcessingMultiStepFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ...balanced_sampling_plugin.contract import BACKENDS, METHOD_SIGNALS, SAMPLER_WEIGHT, SAMPLING_METHODS
from ...balanced_sampling_plugin.dependencies import BACKEND_MODULES, CLUSTERS, EMBEDDINGS, WEIGHTS
from ..dask_scheduler import DASK_SCHEDULER, dask_scheduler_parameter, scheduler_text
from ..parameters import edge_mode_parameter, knn_backend_parameter, sampling_method_parameter
from ..styles import GraduatedStyle, style_on_load
from ..utils import engine_errors, raise_if_canceled, run_child
from .base import BalancedSamplingAlgorithm
from .compute_composition_clusters import ComputeCompositionClusters

PROVIDER = "balanced_sampling"

#: Options of Compute composition clusters the chain offers as its own (advanced) parameters, with the same
#: names, descriptions and defaults: its messages name them ("lower K_MIN", "turn off an exclusion").
COMPOSITION_OPTIONS = ("K_SELECTION", "K_MIN", "K_MAX", "K", "EXCLUDE_BORDER_NODATA", "EXCLUDE_BLACK_BORDER",
                       "BLACK_TOLERANCE", "MAX_NODATA_RATIO")


class BuildBalancedDataset(BalancedSamplingAlgorithm):
    IMAGE_FOLDER = "IMAGE_FOLDER"
    IMAGE_PATTERN = "IMAGE_PATTERN"
    MASK_FOLDER = "MASK_FOLDER"
    MASK_PATTERN = "MASK_PATTERN"
    PATCH_SIZE = "PATCH_SIZE"
    STRIDE = "STRIDE"
    EDGE_MODE = "EDGE_MODE"
    NODATA_CLASS = "NODATA_CLASS"
    USE_UNIQUENESS = "USE_UNIQUENESS"
    DINO_MODEL = "DINO_MODEL"
    BANDS = "BANDS"
    PARQUET_PATH = "PARQUET_PATH"
    BACKEND = "BACKEND"
    SAMPLING_METHOD = "SAMPLING_METHOD"
    OUTPUT = "OUTPUT"
    OUTPUT_CSV = "OUTPUT_CSV"
    OUTPUT_REPORT = "OUTPUT_REPORT"

    group_key = "weights"
    required_modules = CLUSTERS + WEIGHTS
    icon_name = "build_balanced_dataset.svg"

    def name(self):
        return "buildbalanceddataset"

    def displayName(self):  # noqa: N802 (QGIS API name)
        return self.tr("Build balanced dataset")

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        return self.tr(
            "Runs the whole chain on image/mask raster folders: Create patch footprints → Compute composition "
            "clusters → Compute DINOv2 uniqueness (optional) → Combine sampler weights, and writes the weighted "
            "patch layer, the training CSV and the report. Each step is also an algorithm of its own, with all "
            "its options; this one uses their defaults apart from the parameters below.\n\n"
            "<b>Image / mask folder and pattern</b>: the rasters; an image pairs with the mask of the same name "
            "(apart from words like _mask).\n<b>Patch size, stride</b>: windows in pixels (stride 0 = patch size).\n"
            "<b>Windows at the raster edge</b>: drop the windows that do not fit, or shift a last one inward so "
            "every pixel is covered, as in Create patch footprints.\n"
            "<b>Nodata class</b>: mask value without a label; a value the masks do not hold (e.g. -1) makes every "
            "value a class (when 0 is background).\n"
            "<b>Number of clusters, exclusions, maximum nodata ratio</b> (advanced): as in Compute composition "
            "clusters; turn off the border-nodata exclusion when the nodata class marks unlabelled pixels inside "
            "the tiles (not only at the scene edges).\n"
            "<b>Compute uniqueness</b>: DINOv2 uniqueness is computed only when this is on AND the sampling "
            "method reads it (the rank methods, multiplicative, uniqueness_only); class_balanced and "
            "composition_only need no DINOv2, so the chain skips it and says so in the log. Off with a rank "
            "method is an error: pick composition_only or class_balanced.\n<b>DINOv2 model, bands, embedding cache, "
            "kNN backend</b>: as in Compute DINOv2 uniqueness (bands: the three image bands fed to the model as red, "
            "green, blue, e.g. 4,3,2 for Sentinel-2).\n<b>Sampling method</b> (default class_balanced, the "
            "one that lifts a 1-2 % class well): as in Combine sampler weights.\n<b>Dask scheduler</b> "
            "(advanced): where the mask statistics and the DINOv2 embeddings run, as in Compute composition clusters "
            "and Compute DINOv2 uniqueness (empty = this process, local:N = N worker processes on this machine, or "
            "a scheduler address such as tcp://host:8786)."
        )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        self.addParameter(QgsProcessingParameterFile(
            self.IMAGE_FOLDER, self.tr("Image folder"), behavior=QgsProcessingParameterFile.Folder))
        self.addParameter(QgsProcessingParameterString(
            self.IMAGE_PATTERN, self.tr("Image file pattern"), defaultValue="*.tif"))
        self.addParameter(QgsProcessingParameterFile(
            self.MASK_FOLDER, self.tr("Mask folder"), behavior=QgsProcessingParameterFile.Folder))
        self.addParameter(QgsProcessingParameterString(
            self.MASK_PATTERN, self.tr("Mask file pattern"), defaultValue="*.tif"))
        self.addParameter(QgsProcessingParameterNumber(
            self.PATCH_SIZE, self.tr("Patch size (pixels)"), QgsProcessingParameterNumber.Integer,
            defaultValue=256, minValue=1))
        self.addParameter(QgsProcessingParameterNumber(
            self.STRIDE, self.tr("Stride (pixels, 0 = patch size)"), QgsProcessingParameterNumber.Integer,
            defaultValue=0, minValue=0))
        self.addParameter(edge_mode_parameter(self.EDGE_MODE, self.tr("Windows at the raster edge")))
        self.addParameter(QgsProcessingParameterNumber(
            self.NODATA_CLASS, self.tr("Nodata class"), QgsProcessingParameterNumber.Integer, defaultValue=0))
        composition = ComputeCompositionClusters()
        composition.initAlgorithm()
        for name in COMPOSITION_OPTIONS:
            parameter = composition.parameterDefinition(name).clone()
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(parameter)
        self.addParameter(QgsProcessingParameterBoolean(
            self.USE_UNIQUENESS, self.tr("Compute DINOv2 uniqueness"), defaultValue=True))
        self.addParameter(QgsProcessingParameterString(
            self.DINO_MODEL, self.tr("DINOv2 model (short name, hub id or local folder)"),
            defaultValue="dinov2-base"))
        self.addParameter(QgsProcessingParameterString(
            self.BANDS, self.tr("Bands (comma-separated)"), defaultValue="1,2,3"))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.PARQUET_PATH, self.tr("Embedding cache (Parquet)"), self.tr("Parquet files (*.parquet)"),
            optional=True, createByDefault=False))
        self.addParameter(knn_backend_parameter(self.BACKEND, self.tr("kNN backend")))
        self.addParameter(sampling_method_parameter(self.SAMPLING_METHOD, self.tr("Sampling method")))
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT, self.tr("Sampler weights"), QgsProcessing.TypeVectorPolygon))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_CSV, self.tr("Training CSV"), self.tr("CSV files (*.csv)")))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_REPORT, self.tr("Report"), self.tr("HTML files (*.html)"), optional=True))
        self.addParameter(dask_scheduler_parameter())
        self.addOutput(QgsProcessingOutputNumber("EFFECTIVE_SAMPLE_SIZE", self.tr("Effective sample size")))

    def uniqueness_wanted(self, parameters, context) -> bool:
        """Compute DINOv2 uniqueness only when it is asked for AND the method reads it."""
        method = SAMPLING_METHODS[self.parameterAsEnum(parameters, self.SAMPLING_METHOD, context)]
        return self.parameterAsBool(parameters, self.USE_UNIQUENESS, context) and \
            "uniqueness" in METHOD_SIGNALS[method]

    def modules_needed(self, parameters, context) -> tuple:
        if not self.uniqueness_wanted(parameters, context):
            return super().modules_needed(parameters, context)
        backend = BACKENDS[self.parameterAsEnum(parameters, self.BACKEND, context)]
        return super().modules_needed(parameters, context) + EMBEDDINGS + (BACKEND_MODULES[backend],)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        self.require_packages(parameters, context)
        use_uniqueness = self.uniqueness_wanted(parameters, context)
        method = SAMPLING_METHODS[self.parameterAsEnum(parameters, self.SAMPLING_METHOD, context)]
        if "uniqueness" in METHOD_SIGNALS[method] and not use_uniqueness:  # refused before the long steps
            raise QgsProcessingException(self.tr(
                "Sampling method {} reads DINOv2 uniqueness, which 'Compute DINOv2 uniqueness' turns off: tick it, or "
                "pick class_balanced or composition_only, which need no DINOv2.").format(method))
        if self.parameterAsBool(parameters, self.USE_UNIQUENESS, context) and not use_uniqueness:
            feedback.pushInfo(self.tr("Sampling method {} does not read uniqueness, so DINOv2 uniqueness is not "
                                      "computed (it would not change the weights).").format(
                SAMPLING_METHODS[self.parameterAsEnum(parameters, self.SAMPLING_METHOD, context)]))
        from ...balanced_sampling_plugin.embedding_cache import cache_output
        from ...balanced_sampling_plugin.file_safety import files_under
        from ...balanced_sampling_plugin.footprints import find_pairs

        # Before the long steps: the chain's outputs must not overwrite a raster, the model or each other.
        writes = {self.OUTPUT: self.output_file(parameters, context),
                  self.OUTPUT_CSV: self.file_output(parameters, self.OUTPUT_CSV, context),
                  self.OUTPUT_REPORT: self.file_output(parameters, self.OUTPUT_REPORT, context),
                  self.PARQUET_PATH: cache_output(self.parameterAsFileOutput(parameters, self.PARQUET_PATH, context))
                  if use_uniqueness else None}

        image_folder = self.parameterAsFile(parameters, self.IMAGE_FOLDER, context)
        with engine_errors():  # the pairs the chain's first step will read
            pairs = find_pairs(image_folder, self.parameterAsString(parameters, self.IMAGE_PATTERN, context) or "*.tif",
                               self.parameterAsFile(parameters, self.MASK_FOLDER, context) or image_folder,
                               self.parameterAsString(parameters, self.MASK_PATTERN, context) or "*.tif")
        rasters = [path for pair in pairs for path in pair[:2]]
        model = self.parameterAsString(parameters, self.DINO_MODEL, context).strip() or "dinov2-base"
        self.check_paths(writes, {"raster of the image or mask folder": rasters,  # English: see raster_reads
                                  self.DINO_MODEL: files_under(model) if use_uniqueness else []})
        if use_uniqueness:
            self.check_embedding_inputs(parameters, context, model, [pair[0] for pair in pairs], feedback)
        steps = QgsProcessingMultiStepFeedback(4 if use_uniqueness else 3, feedback)

        def run(step, algorithm, child_parameters):
            steps.setCurrentStep(step)
            raise_if_canceled(feedback)
            return run_child(f"{PROVIDER}:{algorithm}", child_parameters, context, steps)

        # Named memory layers: QGIS would name TEMPORARY_OUTPUT ones from the (translated) output descriptions,
        # which the log then shows mangled (e.g. 'Clusters_de_composi__o_…' under pt_BR).
        footprints = run(0, "createpatchfootprints", {
            "IMAGE_FOLDER": parameters[self.IMAGE_FOLDER], "IMAGE_PATTERN": parameters.get(self.IMAGE_PATTERN),
            "MASK_FOLDER": parameters[self.MASK_FOLDER], "MASK_PATTERN": parameters.get(self.MASK_PATTERN),
            "PATCH_SIZE": parameters[self.PATCH_SIZE], "STRIDE": parameters.get(self.STRIDE, 0),
            "EDGE_MODE": self.parameterAsEnum(parameters, self.EDGE_MODE, context),
            "OUTPUT": "memory:patch_footprints"})
        clusters = run(1, "computecompositionclusters", {
            "INPUT": footprints["OUTPUT"], "NODATA_CLASS": parameters.get(self.NODATA_CLASS, 0),
            **{name: parameters[name] for name in COMPOSITION_OPTIONS if parameters.get(name) is not None},
            DASK_SCHEDULER: scheduler_text(self, parameters, context), "OUTPUT": "memory:composition_clusters"})
        signals = clusters
        if use_uniqueness:
            signals = run(2, "computedinov2uniqueness", {
                "INPUT": clusters["OUTPUT"], "DINO_MODEL": parameters.get(self.DINO_MODEL) or "dinov2-base",
                "BANDS": self.parameterAsString(parameters, self.BANDS, context) or "1,2,3",
                "PARQUET_PATH": parameters.get(self.PARQUET_PATH),
                "BACKEND": self.parameterAsEnum(parameters, self.BACKEND, context),
                DASK_SCHEDULER: scheduler_text(self, parameters, context), "OUTPUT": "memory:uniqueness"})
        combined = run(3 if use_uniqueness else 2, "combinesamplerweights", {
            "INPUT": signals["OUTPUT"],
            "SAMPLING_METHOD": self.parameterAsEnum(parameters, self.SAMPLING_METHOD, context),
            "OUTPUT": parameters[self.OUTPUT], "OUTPUT_CSV": parameters[self.OUTPUT_CSV],
            "OUTPUT_REPORT": parameters.get(self.OUTPUT_REPORT)})
        style_on_load(self, context, combined["OUTPUT"], GraduatedStyle(SAMPLER_WEIGHT))
        return {self.OUTPUT: combined["OUTPUT"], self.OUTPUT_CSV: combined["OUTPUT_CSV"],
                self.OUTPUT_REPORT: combined.get("OUTPUT_REPORT"),
                "EFFECTIVE_SAMPLE_SIZE": combined["EFFECTIVE_SAMPLE_SIZE"]}

    def check_embedding_inputs(self, parameters, context, model, images, feedback):
        """Before the footprints and mask statistics: the bands fit the images and the DINOv2 model can be
        loaded (its config read; a hub model not in the local cache is fetched now, or fails now)."""
        from ...balanced_sampling_plugin.embeddings import model_dimension, resolve_model_name
        from ...balanced_sampling_plugin.patch_images import bands_from_text, check_bands

        with engine_errors():
            check_bands(images, bands_from_text(self.parameterAsString(parameters, self.BANDS, context)))
            raise_if_canceled(feedback)
            model_dimension(*resolve_model_name(model))
