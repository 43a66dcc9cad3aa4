"""Combine sampler weights: composition and uniqueness signals -> sampler_weight, training CSV, report."""

import os

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ...balanced_sampling_plugin.contract import (
    BLACK_BORDER,
    BORDER_NODATA,
    CLASS_ENTROPY,
    CLASS_PREFIX,
    EXCLUDED,
    EXCLUSION_REASON,
    FREQ_CLUSTER_ID,
    FREQ_CLUSTER_SIZE,
    FREQ_CLUSTER_WEIGHT,
    NODATA_RATIO,
    PATCH_ID,
    SAMPLER_WEIGHT,
    SAMPLING_METHODS,
    UNIQUENESS_SCORE,
)
from ...balanced_sampling_plugin.dependencies import WEIGHTS
from ...balanced_sampling_plugin.file_safety import OutputFiles
from ..layers import read_table
from ..parameters import (
    add_record_field_parameters,
    optional_number,
    record_field_map,
    sampling_method_parameter,
    with_decimals,
)
from ..styles import GraduatedStyle, save_default_style
from ..utils import engine_errors, engine_progress, raise_if_canceled
from .base import BalancedSamplingAlgorithm, raster_reads

#: Layer fields read when present: the training CSV's diagnostics come from them (export.DEFAULT_DIAGNOSTIC_COLUMNS;
#: border_nodata / black_border give has_mask_border_nodata / has_image_black_border, exclusion_reason the
#: has_low_entropy / has_high_nodata flags, cls_* the class_dist_json) and the report reads the reasons and classes.
DIAGNOSTIC_FIELDS = (PATCH_ID, FREQ_CLUSTER_ID, FREQ_CLUSTER_SIZE, FREQ_CLUSTER_WEIGHT, CLASS_ENTROPY, NODATA_RATIO,
                     BORDER_NODATA, BLACK_BORDER, EXCLUSION_REASON, f"{CLASS_PREFIX}*")


class CombineSamplerWeights(BalancedSamplingAlgorithm):
    INPUT = "INPUT"
    SAMPLING_METHOD = "SAMPLING_METHOD"
    STRENGTH = "STRENGTH"
    CLASS_ALPHA = "CLASS_ALPHA"
    UNIQUENESS_MIX = "UNIQUENESS_MIX"
    RARE_BOOST = "RARE_BOOST"
    RARE_CLASSES = "RARE_CLASSES"
    FLOOR = "FLOOR"
    TARGET_SHARES = "TARGET_SHARES"
    MIN_ESS = "MIN_ESS"
    LIFT_CLASS = "LIFT_CLASS"
    MAX_WEIGHT = "MAX_WEIGHT"
    MIN_PIXELS = "MIN_PIXELS"
    REPEAT_THRESHOLD = "REPEAT_THRESHOLD"
    TEMPERATURE = "TEMPERATURE"
    COMPOSITION_FIELD = "COMPOSITION_FIELD"
    UNIQUENESS_FIELD = "UNIQUENESS_FIELD"
    EXCLUDED_FIELD = "EXCLUDED_FIELD"
    CSV_IMAGE_COLUMN = "CSV_IMAGE_COLUMN"
    CSV_MASK_COLUMN = "CSV_MASK_COLUMN"
    DROP_EXCLUDED = "DROP_EXCLUDED"
    RELATIVE_PATHS = "RELATIVE_PATHS"
    OUTPUT = "OUTPUT"
    OUTPUT_CSV = "OUTPUT_CSV"
    OUTPUT_REPORT = "OUTPUT_REPORT"
    EFFECTIVE_SAMPLE_SIZE = "EFFECTIVE_SAMPLE_SIZE"
    INCLUDED_PATCHES = "INCLUDED_PATCHES"
    EXCLUDED_PATCHES = "EXCLUDED_PATCHES"

    group_key = "weights"
    required_modules = WEIGHTS
    added_fields = (SAMPLER_WEIGHT,)
    icon_name = "combine_sampler_weights.svg"

    def name(self):
        return "combinesamplerweights"

    def displayName(self):  # noqa: N802 (QGIS API name)
        return self.tr("Combine sampler weights")

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        return self.with_in_place_help(self.tr(
            "Turns the composition and uniqueness signals into one sampler_weight per patch, for PyTorch's "
            "WeightedRandomSampler, and writes it onto the layer (all input fields kept), into a training CSV "
            "and into an HTML report that shows, per class, the pixel share of one epoch under uniform sampling "
            "and under every method side by side.\n\n"
            "<b>Sampling method</b> (default <i>class_balanced</i>): <i>rank_max</i> = max(rank of composition "
            "weight, rank of uniqueness), the pytorch-smt-tools default; "
            "<i>rank_multiply</i> = their product; <i>rank_add</i> = their mean; <i>multiplicative</i> = raw "
            "composition weight × raw uniqueness; <i>composition_only</i>; <i>uniqueness_only</i>; "
            "<i>class_balanced</i> = Σ over classes of (patch share / mean share)^α, optionally mixed with the "
            "uniqueness rank (α 0.5 is pytorch-smt-tools' sqrt_inverse_freq); "
            "<i>target_shares</i> = the weights with the largest effective sample size (ESS) that reach the class "
            "shares you ask for; <i>repeat_factor</i> = LVIS / detectron2 repeat factors, max over a patch's "
            "classes of max(1, √(t / f_c)), f_c = fraction of patches containing class c; "
            "<i>rare_class_sampling</i> = DAFormer: a class drawn with softmax((1 − f_c) / T) of its pixel "
            "frequency, then a patch containing it. Ranks are percentile ranks over the included patches, ties "
            "averaged, so a patch is drawn at most about 2× as often as under uniform sampling (rank_max: 1.5×): "
            "too weak for a class of 1–2% of the pixels. class_balanced lifts rare classes much more, which is why "
            "it is the default here; the report shows every method against the limit of what any weighting can "
            "reach on your data.\n"
            "<b>Target shares</b> (target_shares): class:share pairs, e.g. 6:0.08 or 6:8%, 4:0.1, as shares of the "
            "valid pixels drawn per epoch; classes not named are free. Empty: as balanced as the data allows (the "
            "largest smallest-class share) at an ESS of at least <b>Minimum ESS</b> (fraction of the included "
            "patches), or, with <b>Class to lift</b>, that class as high as the minimum ESS allows. A target no "
            "weighting reaches is replaced by the nearest reachable shares, and the log says so. <b>Largest "
            "weight</b>: optional cap, in multiples of the mean weight.\n"
            "<b>Pixels that make a patch contain a class</b> (repeat_factor, rare_class_sampling): empty = DAFormer's "
            "3000 px per 512 × 512 px, scaled by patch area. <b>Repeat-factor threshold t</b>: empty = the median "
            "f_c (detectron2 uses 0.001 with LVIS's 1203 classes). <b>Temperature T</b>: DAFormer's 0.01.\n"
            "<b>Strength</b>: power applied to rank weights (higher = stronger preference).\n"
            "<b>Class balance α</b>: 0.5 = square-root inverse frequency, 1 = inverse frequency.\n"
            "<b>Uniqueness mix</b>: for class_balanced, share of the weight taken from the uniqueness rank "
            "(0 = off).\n"
            "<b>Rare-class boost</b>: multiplier (1 = off) applied as 1 + (multiplier − 1) × the patch's share "
            "of rare classes; <b>Rare classes</b>: comma-separated class values, empty = classes below the mean "
            "class frequency.\n"
            "<b>Weight floor</b>: every included patch weighs at least this fraction of the largest weight "
            "(target_shares: of the mean weight).\n"
            "Excluded patches (field excluded) get weight 0 and stay in the outputs. Weights are scaled to mean 1 "
            "over included patches.\n"
            "<b>Training CSV</b>: columns image, mask, row_off, col_off, patch_size, sampler_weight (names of the "
            "path columns configurable) plus diagnostics; optionally without excluded rows and with paths "
            "relative to the CSV's folder.\n"
            "<b>Report</b>: HTML file with the weight histogram, per-class shares, the method comparison, "
            "the most over-sampled patches and the exclusions."
        ))

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.INPUT, self.tr("Patches with composition and/or uniqueness fields"), [QgsProcessing.TypeVector]))
        self.addParameter(sampling_method_parameter(self.SAMPLING_METHOD, self.tr("Sampling method")))
        self.addParameter(with_decimals(QgsProcessingParameterNumber(
            self.STRENGTH, self.tr("Strength (power on rank weights)"), QgsProcessingParameterNumber.Double,
            defaultValue=1.0, minValue=0), 2))
        self.addParameter(with_decimals(QgsProcessingParameterNumber(
            self.CLASS_ALPHA, self.tr("Class balance α (class_balanced)"), QgsProcessingParameterNumber.Double,
            defaultValue=0.5, minValue=0.01, maxValue=4), 2))
        self.addParameter(with_decimals(QgsProcessingParameterNumber(
            self.UNIQUENESS_MIX, self.tr("Uniqueness mix (class_balanced, 0 = off)"),
            QgsProcessingParameterNumber.Double, defaultValue=0.0, minValue=0, maxValue=1), 2))
        self.addParameter(with_decimals(QgsProcessingParameterNumber(
            self.RARE_BOOST, self.tr("Rare-class boost multiplier (1 = off)"), QgsProcessingParameterNumber.Double,
            defaultValue=1.0, minValue=1), 2))
        self.addParameter(QgsProcessingParameterString(
            self.RARE_CLASSES, self.tr("Rare classes (e.g. 5,6; empty = automatic)"),
            optional=True))
        self.addParameter(QgsProcessingParameterString(
            self.TARGET_SHARES, self.tr("Target shares (e.g. 6:8%, 4:0.1)"),
            optional=True))
        self.addParameter(with_decimals(QgsProcessingParameterNumber(
            self.MIN_ESS, self.tr("Minimum ESS (fraction of the patches)"),
            QgsProcessingParameterNumber.Double, defaultValue=0.5, minValue=0.01, maxValue=1), 2))
        self.addParameter(QgsProcessingParameterNumber(
            self.LIFT_CLASS, self.tr("Class to lift"), QgsProcessingParameterNumber.Integer,
            optional=True))
        self.addParameter(with_decimals(QgsProcessingParameterNumber(
            self.MAX_WEIGHT, self.tr("Largest weight (× the mean)"),
            QgsProcessingParameterNumber.Double, optional=True, minValue=1), 2))
        advanced = [
            with_decimals(QgsProcessingParameterNumber(
                self.MIN_PIXELS, self.tr("Pixels that make a patch contain a class"),
                QgsProcessingParameterNumber.Double, optional=True, minValue=0.5), 0),
            with_decimals(QgsProcessingParameterNumber(
                self.REPEAT_THRESHOLD, self.tr("Repeat-factor threshold t"),
                QgsProcessingParameterNumber.Double, optional=True, minValue=1e-9, maxValue=1), 4),
            with_decimals(QgsProcessingParameterNumber(
                self.TEMPERATURE, self.tr("Rare-class sampling temperature T"), QgsProcessingParameterNumber.Double,
                defaultValue=0.01, minValue=1e-6), 3),
            with_decimals(QgsProcessingParameterNumber(
                self.FLOOR, self.tr("Weight floor (fraction of the largest weight)"),
                QgsProcessingParameterNumber.Double, defaultValue=1e-3, minValue=1e-9, maxValue=1), 4),
            QgsProcessingParameterField(
                self.COMPOSITION_FIELD, self.tr("Composition weight field"), defaultValue=FREQ_CLUSTER_WEIGHT,
                parentLayerParameterName=self.INPUT, type=QgsProcessingParameterField.Numeric, optional=True),
            QgsProcessingParameterField(
                self.UNIQUENESS_FIELD, self.tr("Uniqueness score field"), defaultValue=UNIQUENESS_SCORE,
                parentLayerParameterName=self.INPUT, type=QgsProcessingParameterField.Numeric, optional=True),
            QgsProcessingParameterField(
                self.EXCLUDED_FIELD, self.tr("Excluded flag field"), defaultValue=EXCLUDED,
                parentLayerParameterName=self.INPUT, optional=True),
            QgsProcessingParameterString(
                self.CSV_IMAGE_COLUMN, self.tr("CSV column name for image paths"), defaultValue="image"),
            QgsProcessingParameterString(
                self.CSV_MASK_COLUMN, self.tr("CSV column name for mask paths"), defaultValue="mask"),
        ]
        for parameter in advanced:
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(parameter)
        add_record_field_parameters(self, self.INPUT)
        self.addParameter(QgsProcessingParameterBoolean(
            self.DROP_EXCLUDED, self.tr("Leave excluded patches out of the CSV"), defaultValue=False))
        self.addParameter(QgsProcessingParameterBoolean(
            self.RELATIVE_PATHS, self.tr("Write paths relative to the CSV's folder"), defaultValue=False))
        self.add_in_place_parameter()
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT, self.tr("Sampler weights"), QgsProcessing.TypeVectorAnyGeometry,
            optional=True, createByDefault=True))  # optional: not written with IN_PLACE
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_CSV, self.tr("Training CSV"), self.tr("CSV files (*.csv)"), optional=True))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_REPORT, self.tr("Report"), self.tr("HTML files (*.html)"), optional=True))
        self.addOutput(QgsProcessingOutputNumber(self.EFFECTIVE_SAMPLE_SIZE, self.tr("Effective sample size")))
        self.addOutput(QgsProcessingOutputNumber(self.INCLUDED_PATCHES, self.tr("Included patches")))
        self.addOutput(QgsProcessingOutputNumber(self.EXCLUDED_PATCHES, self.tr("Excluded patches")))

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802 (QGIS API name)
        super().postProcessAlgorithm(context, feedback)
        # Main thread, sink closed: a GeoPackage output gets the graduated style as its default.
        path = getattr(self, "_output_path", "")
        if path and not context.willLoadLayerOnCompletion(path):
            save_default_style(path, GraduatedStyle(SAMPLER_WEIGHT), feedback)
        return {}

    def _rare_classes(self, parameters, context):
        text = self.parameterAsString(parameters, self.RARE_CLASSES, context).strip()
        if not text:
            return None
        try:
            return [int(part) for part in text.replace(";", ",").split(",") if part.strip()]
        except ValueError:
            raise QgsProcessingException(
                self.tr("Rare classes must be class values separated by commas, e.g. 5,6; got '{}'.").format(text))

    def _lift_class(self, parameters, context):
        value = optional_number(self, parameters, self.LIFT_CLASS, context)
        return None if value is None else int(value)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        self.require_packages(parameters, context)
        source = self.parameterAsSource(parameters, self.INPUT, context)
        if source is None:
            raise QgsProcessingException(self.invalidSourceError(parameters, self.INPUT))
        method = SAMPLING_METHODS[self.parameterAsEnum(parameters, self.SAMPLING_METHOD, context)]
        comp_field = self.parameterAsString(parameters, self.COMPOSITION_FIELD, context) or FREQ_CLUSTER_WEIGHT
        uniq_field = self.parameterAsString(parameters, self.UNIQUENESS_FIELD, context) or UNIQUENESS_SCORE
        excluded_field = self.parameterAsString(parameters, self.EXCLUDED_FIELD, context) or EXCLUDED
        csv_path = self.file_output(parameters, self.OUTPUT_CSV, context)
        report_path = self.file_output(parameters, self.OUTPUT_REPORT, context)
        rare_boost = self.parameterAsDouble(parameters, self.RARE_BOOST, context)

        from ...balanced_sampling_plugin.export import missing_files_note, write_training_csv
        from ...balanced_sampling_plugin.records import validate_records
        from ...balanced_sampling_plugin.report import build_report_html
        from ...balanced_sampling_plugin.weights import combine_weights, effective_sample_size

        # Before any work: no output may overwrite the input or another output, each must be writable.
        writes = {self.OUTPUT: self.output_file(parameters, context), self.OUTPUT_CSV: csv_path,
                  self.OUTPUT_REPORT: report_path}
        self.check_paths(writes, {self.INPUT: self.input_file(parameters, context)}, kinds=False)

        records_needed = bool(csv_path or report_path)
        columns = record_field_map(self, parameters, context) if records_needed else {}
        table = read_table(source, columns, feedback,
                           optional=(comp_field, uniq_field, excluded_field) + DIAGNOSTIC_FIELDS)
        progress = engine_progress(feedback)
        with engine_errors():
            if records_needed:
                table = validate_records(table, source=self.tr("the input layer"))
                self.check_paths(writes, raster_reads(table), writable=False)
            result = combine_weights(
                table, method,
                strength=self.parameterAsDouble(parameters, self.STRENGTH, context),
                class_alpha=self.parameterAsDouble(parameters, self.CLASS_ALPHA, context),
                uniqueness_mix=self.parameterAsDouble(parameters, self.UNIQUENESS_MIX, context),
                rare_boost=rare_boost if rare_boost > 1 else None,
                rare_classes=self._rare_classes(parameters, context),
                floor=self.parameterAsDouble(parameters, self.FLOOR, context),
                target_shares=self.parameterAsString(parameters, self.TARGET_SHARES, context),
                min_ess=self.parameterAsDouble(parameters, self.MIN_ESS, context),
                lift_class=self._lift_class(parameters, context),
                max_weight=optional_number(self, parameters, self.MAX_WEIGHT, context),
                min_pixels=optional_number(self, parameters, self.MIN_PIXELS, context),
                repeat_threshold=optional_number(self, parameters, self.REPEAT_THRESHOLD, context),
                temperature=self.parameterAsDouble(parameters, self.TEMPERATURE, context),
                comp_field=comp_field, uniq_field=uniq_field, excluded_field=excluded_field,
                progress=progress.child(0.05, 0.6),
            )
            table[SAMPLER_WEIGHT] = result.weights
            weights = result.weights.to_numpy(dtype=float)
            ess = effective_sample_size(weights[result.included])
            feedback.pushInfo(self.tr("{}: {} included, {} excluded patches; effective sample size {:.0f} ({:.0%})")
                              .format(method, result.n_included, result.n_excluded, ess, ess / result.n_included))
            # result.notes (ignored options, the floor, a low effective sample size) were logged as they came
            # Every output goes to a partial file; they are renamed into place together at the end, so a
            # failure or a cancel anywhere leaves the earlier files as they were.
            if csv_path and (note := missing_files_note(table)):
                feedback.pushWarning(note)
            with OutputFiles() as outputs:
                if csv_path:
                    raise_if_canceled(feedback)
                    write_training_csv(
                        table.rename(columns={excluded_field: EXCLUDED, uniq_field: UNIQUENESS_SCORE}),
                        outputs.partial(csv_path),
                        image_column=self.parameterAsString(parameters, self.CSV_IMAGE_COLUMN, context) or "image",
                        mask_column=self.parameterAsString(parameters, self.CSV_MASK_COLUMN, context) or "mask",
                        drop_excluded=self.parameterAsBool(parameters, self.DROP_EXCLUDED, context),
                        relative_paths=self.parameterAsBool(parameters, self.RELATIVE_PATHS, context),
                        relative_to=os.path.dirname(os.path.abspath(csv_path)))
                if report_path:
                    raise_if_canceled(feedback)
                    feedback.setProgress(65)
                    build_report_html(table, result, outputs.partial(report_path))
                raise_if_canceled(feedback)
                # The layer last; an in-place update is applied by commit(), the point of no return.
                dest_id = self.write_output(parameters, context, feedback, source, table[[SAMPLER_WEIGHT]], outputs,
                                            GraduatedStyle(SAMPLER_WEIGHT), progress_span=(70.0, 100.0))
                self.commit(outputs, feedback)
        if csv_path:
            feedback.pushInfo(self.tr("Training CSV: {}").format(csv_path))
        if report_path:
            feedback.pushInfo(self.tr("Report: {}").format(report_path))
        self._output_path = dest_id
        return {
            self.OUTPUT: dest_id, self.OUTPUT_CSV: csv_path or None, self.OUTPUT_REPORT: report_path or None,
            self.EFFECTIVE_SAMPLE_SIZE: ess, self.INCLUDED_PATCHES: result.n_included,
            self.EXCLUDED_PATCHES: result.n_excluded,
        }
