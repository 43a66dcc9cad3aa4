"""Compute composition clusters: class proportions from the masks -> CLR -> KMeans -> 1 / cluster size."""

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterNumber,
)

from ...balanced_sampling_plugin.contract import CLASS_ENTROPY, FREQ_CLUSTER_WEIGHT, K_SELECTIONS, MASK_PATH
from ...balanced_sampling_plugin.dependencies import CLUSTERS
from ...balanced_sampling_plugin.file_safety import OutputFiles
from ..dask_scheduler import dask_scheduler_parameter, scheduler_text
from ..layers import read_table
from ..parameters import K_SELECTION_LABELS, add_record_field_parameters, labelled_enum, record_field_map, with_decimals
from ..styles import composition_style
from ..utils import engine_errors, engine_progress
from .base import IN_PLACE, BalancedSamplingAlgorithm, raster_reads


class ComputeCompositionClusters(BalancedSamplingAlgorithm):
    INPUT = "INPUT"
    NODATA_CLASS = "NODATA_CLASS"
    K_SELECTION = "K_SELECTION"
    K_MIN = "K_MIN"
    K_MAX = "K_MAX"
    K = "K"
    RANDOM_STATE = "RANDOM_STATE"
    EXCLUDE_BORDER_NODATA = "EXCLUDE_BORDER_NODATA"
    EXCLUDE_BLACK_BORDER = "EXCLUDE_BLACK_BORDER"
    BLACK_TOLERANCE = "BLACK_TOLERANCE"
    MAX_NODATA_RATIO = "MAX_NODATA_RATIO"
    MIN_ENTROPY_THRESHOLD = "MIN_ENTROPY_THRESHOLD"
    CLR_EPS = "CLR_EPS"
    WORKERS = "WORKERS"
    USE_LAYER_PROPORTIONS = "USE_LAYER_PROPORTIONS"
    OUTPUT = "OUTPUT"

    group_key = "signals"
    required_modules = CLUSTERS
    added_fields = (FREQ_CLUSTER_WEIGHT, CLASS_ENTROPY)
    icon_name = "compute_composition_clusters.svg"

    def name(self):
        return "computecompositionclusters"

    def displayName(self):  # noqa: N802 (QGIS API name)
        return self.tr("Compute composition clusters")

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        return self.with_in_place_help(self.tr(
            "Reads the mask window of every patch, computes its class proportions (nodata excluded), "
            "groups patches of similar composition with KMeans on the centered log-ratio (CLR) of the "
            "proportions, and gives each patch the composition weight 1 / size of its cluster: patches "
            "of rare compositions weigh more.\n\n"
            "Writes all input fields plus: one proportion field per class (cls_1, cls_2, …), class_entropy "
            "(Shannon entropy of the proportions, nats), nodata_ratio, border_nodata, black_border, excluded, "
            "exclusion_reason, freq_cluster_id, freq_cluster_size and freq_cluster_weight. Excluded patches keep "
            "their row with cluster id -1 and weight 0, and do not shape the clusters.\n\n"
            "<b>Patch footprints</b>: a layer from Create patch footprints (or any layer with the image/mask "
            "path and window fields; pick them under Advanced).\n"
            "<b>Nodata class</b>: mask value that means no label (default 0); a value the masks do not hold (e.g. -1) "
            "makes every value a class, for masks whose 0 is background.\n"
            "<b>Number of clusters</b>: <i>elbow</i> tries k from k min to k max and picks the elbow of the "
            "normalised inertia curve; <i>fixed</i> uses k.\n"
            "<b>Random state</b>: seed of KMeans, for repeatable clusters.\n"
            "<b>Exclude patches with nodata on the mask border</b>: any border pixel of the mask window equal "
            "to the nodata class.\n"
            "<b>Exclude patches with black image borders</b>: any border pixel of the image window at or below "
            "the black tolerance in all bands, or holding no value (the image's nodata value, mask or alpha, "
            "NaN).\n"
            "<b>Maximum nodata ratio</b>: exclude patches with a larger share of nodata pixels (1 = off).\n"
            "<b>Minimum class entropy</b>: exclude patches whose class entropy (nats) is below it, e.g. 0.1 drops "
            "patches of nearly a single class (0 = off); their exclusion_reason is has_low_entropy.\n"
            "<b>CLR epsilon</b>: replaces zero proportions before the log.\n"
            "<b>Parallel readers</b>: threads reading mask windows (0 = automatic).\n"
            "<b>Dask scheduler</b>: empty reads the masks in this process; local:N starts a Dask cluster of N "
            "worker processes on this machine for the run; an address such as tcp://host:8786 sends the reads to "
            "that cluster's workers, which must reach the rasters by the same paths. Same results either way; "
            "needs the dask and distributed packages.\n"
            "<b>Use class proportions already on the layer</b>: when the layer carries cls_&lt;c&gt; fields "
            "(e.g. loaded from a PostgreSQL tile table's class_dist), cluster them without reading any mask; "
            "the border and black-border exclusions need pixels: the flags an earlier run found (border_nodata, "
            "black_border fields) are kept, otherwise those exclusions are skipped."
        ))

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.INPUT, self.tr("Patch footprints"), [QgsProcessing.TypeVector]))
        self.addParameter(QgsProcessingParameterNumber(
            self.NODATA_CLASS, self.tr("Nodata class"), QgsProcessingParameterNumber.Integer, defaultValue=0))
        self.addParameter(labelled_enum(
            self.K_SELECTION, self.tr("Number of clusters"), K_SELECTIONS, K_SELECTION_LABELS, "elbow"))
        self.addParameter(QgsProcessingParameterNumber(
            self.K_MIN, self.tr("k min (elbow)"), QgsProcessingParameterNumber.Integer, defaultValue=4, minValue=1))
        self.addParameter(QgsProcessingParameterNumber(
            self.K_MAX, self.tr("k max (elbow)"), QgsProcessingParameterNumber.Integer, defaultValue=16, minValue=1))
        self.addParameter(QgsProcessingParameterNumber(
            self.K, self.tr("k (fixed)"), QgsProcessingParameterNumber.Integer, defaultValue=8, minValue=1))
        self.addParameter(QgsProcessingParameterNumber(
            self.RANDOM_STATE, self.tr("Random state"), QgsProcessingParameterNumber.Integer, defaultValue=42))
        self.addParameter(QgsProcessingParameterBoolean(
            self.EXCLUDE_BORDER_NODATA, self.tr("Exclude patches with nodata on the mask border"), defaultValue=True))
        self.addParameter(QgsProcessingParameterBoolean(
            self.EXCLUDE_BLACK_BORDER, self.tr("Exclude patches with black image borders"), defaultValue=True))
        advanced = [
            with_decimals(QgsProcessingParameterNumber(
                self.BLACK_TOLERANCE, self.tr("Black tolerance (pixel value)"), QgsProcessingParameterNumber.Double,
                defaultValue=0, minValue=0), 2),
            with_decimals(QgsProcessingParameterNumber(
                self.MAX_NODATA_RATIO, self.tr("Maximum nodata ratio"), QgsProcessingParameterNumber.Double,
                defaultValue=1.0, minValue=0, maxValue=1), 2),
            with_decimals(QgsProcessingParameterNumber(
                self.MIN_ENTROPY_THRESHOLD, self.tr("Minimum class entropy (nats, 0 = off)"),
                QgsProcessingParameterNumber.Double, defaultValue=0.0, minValue=0), 3),
            QgsProcessingParameterNumber(
                self.CLR_EPS, self.tr("CLR epsilon"), QgsProcessingParameterNumber.Double,
                defaultValue=1e-6, minValue=1e-12, maxValue=0.1),
            QgsProcessingParameterNumber(
                self.WORKERS, self.tr("Parallel readers (0 = automatic)"), QgsProcessingParameterNumber.Integer,
                defaultValue=0, minValue=0),
            dask_scheduler_parameter(),
        ]
        for parameter in advanced:
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(parameter)
        self.addParameter(QgsProcessingParameterBoolean(
            self.USE_LAYER_PROPORTIONS, self.tr("Use class proportions already on the layer (no mask reads)"),
            defaultValue=True))
        add_record_field_parameters(self, self.INPUT)
        self.add_in_place_parameter()
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT, self.tr("Composition clusters"), QgsProcessing.TypeVectorAnyGeometry,
            optional=True, createByDefault=True))  # optional: not written with IN_PLACE

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        self.require_packages(parameters, context)
        source = self.parameterAsSource(parameters, self.INPUT, context)
        if source is None:
            raise QgsProcessingException(self.invalidSourceError(parameters, self.INPUT))
        from ...balanced_sampling_plugin.composition import compute_composition
        from ...balanced_sampling_plugin.records import class_columns, validate_records

        k_selection = K_SELECTIONS[self.parameterAsEnum(parameters, self.K_SELECTION, context)]
        options = dict(
            nodata_class=self.parameterAsInt(parameters, self.NODATA_CLASS, context),
            exclude_border_nodata=self.parameterAsBool(parameters, self.EXCLUDE_BORDER_NODATA, context),
            exclude_black_border=self.parameterAsBool(parameters, self.EXCLUDE_BLACK_BORDER, context),
            black_tolerance=self.parameterAsDouble(parameters, self.BLACK_TOLERANCE, context),
            max_nodata_ratio=self.parameterAsDouble(parameters, self.MAX_NODATA_RATIO, context),
            min_entropy_threshold=self.parameterAsDouble(parameters, self.MIN_ENTROPY_THRESHOLD, context),
            k_selection=k_selection,
            k_min=self.parameterAsInt(parameters, self.K_MIN, context),
            k_max=self.parameterAsInt(parameters, self.K_MAX, context),
            k=self.parameterAsInt(parameters, self.K, context),
            random_state=self.parameterAsInt(parameters, self.RANDOM_STATE, context),
            clr_eps=self.parameterAsDouble(parameters, self.CLR_EPS, context),
            workers=self.parameterAsInt(parameters, self.WORKERS, context) or None,
            executor=scheduler_text(self, parameters, context) or None,  # text: opened and closed by the engine
        )
        if k_selection == "elbow" and options["k_min"] > options["k_max"]:
            raise QgsProcessingException(
                self.tr("k min ({}) is larger than k max ({}).").format(options["k_min"], options["k_max"]))

        output = self.output_file(parameters, context)
        self.check_paths({self.OUTPUT: output}, {self.INPUT: self.input_file(parameters, context)})
        nodata_field = "cls_{}".format(options["nodata_class"])
        in_place = self.parameterAsBool(parameters, IN_PLACE, context)
        if in_place and nodata_field in source.fields().names():
            raise QgsProcessingException(self.tr(
                "The layer has a field {} although Nodata class is {}: class proportions of a run with another nodata "
                "class, which an update in place cannot remove. Write a new layer (Output) instead.").format(
                    nodata_field, options["nodata_class"]))
        use_layer = self.parameterAsBool(parameters, self.USE_LAYER_PROPORTIONS, context)
        known = ("cls_*", "class_entropy", "nodata_ratio", "border_nodata", "black_border") if use_layer else ()
        table = read_table(source, record_field_map(self, parameters, context), feedback, optional=known)
        layer_proportions = class_columns(table.columns)
        if layer_proportions and nodata_field in layer_proportions and "nodata_ratio" in table.columns:
            # Proportions of an earlier run with another nodata class (this one was a class then): read the masks.
            if MASK_PATH not in table.columns:
                raise QgsProcessingException(self.tr(
                    "The layer's proportions have a field {} although Nodata class is {}: they were computed with "
                    "another nodata class, and the layer has no mask paths to compute them again. Set the nodata "
                    "class they were computed with.").format(nodata_field, options["nodata_class"]))
            feedback.pushInfo(self.tr(
                "The layer's proportions have a field {} although Nodata class is {}: they were computed with another "
                "nodata class, so the masks are read again with this one.").format(
                    nodata_field, options["nodata_class"]))
            layer_proportions = []
        if layer_proportions:
            feedback.pushInfo(self.tr("Class proportions taken from the layer fields {}; no mask is read.")
                              .format(", ".join(layer_proportions)))
            kept = [flag for flag in ("border_nodata", "black_border") if flag in table.columns]
            if kept:
                feedback.pushInfo(self.tr("Border exclusions kept from the layer fields {} (found from the pixels by "
                                          "an earlier run; turn off 'Use class proportions already on the layer' to "
                                          "find them again, e.g. with another black tolerance).").format(
                                              ", ".join(kept)))
            options["proportions"] = table[[c for c in table.columns if c in known or c in layer_proportions]]
        progress = engine_progress(feedback)
        with engine_errors():
            records = validate_records(table, source=self.tr("the input layer"))
            self.check_paths({self.OUTPUT: output}, raster_reads(records), writable=False)
            result = compute_composition(records, progress=progress.child(0.05, 0.9), **options)

        # Class fields of an earlier run that are no class of this one (another nodata class, relabelled masks).
        stale = [name for name in class_columns(source.fields().names()) if name not in result.table.columns]
        if stale and not in_place:
            feedback.pushInfo(self.tr("Fields {} of an earlier run are left out: no class of this run.").format(
                ", ".join(stale)))
        with OutputFiles() as outputs:
            dest_id = self.write_output(parameters, context, feedback, source, result.table, outputs,
                                        composition_style(), drop=stale)
            self.commit(outputs, feedback)
        return {self.OUTPUT: dest_id}
