"""Select coreset: the most informative subset of the weighted pool, by one of the six methods of
pytorch-smt-tools' select-coreset, with QGIS's spatial steps (a vector layer's polygons first, spatial diversity)."""

from qgis.core import (
    QgsCoordinateTransform,
    QgsExpression,
    QgsFeatureRequest,
    QgsGeometry,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterDistance,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExpression,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorLayer,
    QgsSpatialIndex,
    QgsWkbTypes,
)

from ...balanced_sampling_plugin.contract import (
    BUDGET_MODES,
    CLASS_ENTROPY,
    CLASS_PREFIX,
    CORESET_EMBEDDING_METHODS,
    CORESET_METHODS,
    CORESET_SCORE,
    CORESET_SELECTED,
    EXCLUDED,
    FREQ_CLUSTER_ID,
    NODATA_RATIO,
    PATCH_ID,
    SAMPLER_WEIGHT,
    SELECTION_RANK,
    SELECTION_STEP,
    UNIQUENESS_SCORE,
)
from ...balanced_sampling_plugin.dependencies import TABLES
from ...balanced_sampling_plugin.file_safety import OutputFiles
from ..layers import read_table
from ..parameters import add_record_field_parameters, record_field_map, with_decimals
from ..styles import SelectionStyle, save_default_style
from ..utils import engine_errors, engine_progress, raise_if_canceled
from .base import BalancedSamplingAlgorithm

#: Layer fields read when present (the methods, the CSV's diagnostics, the coverage measures).
OPTIONAL_FIELDS = (CLASS_ENTROPY, EXCLUDED, SAMPLER_WEIGHT, PATCH_ID, FREQ_CLUSTER_ID, NODATA_RATIO,
                   UNIQUENESS_SCORE, f"{CLASS_PREFIX}*")


class SelectCoreset(BalancedSamplingAlgorithm):
    INPUT = "INPUT"
    METHOD = "METHOD"
    BUDGET = "BUDGET"
    BUDGET_MODE = "BUDGET_MODE"
    PARQUET_PATH = "PARQUET_PATH"
    DINO_MODEL = "DINO_MODEL"
    VECTOR_LAYER = "VECTOR_LAYER"
    MIN_INTERSECT_AREA = "MIN_INTERSECT_AREA"
    MAX_PER_CELL = "MAX_PER_CELL"
    GRID_CELL_SIZE = "GRID_CELL_SIZE"
    MIN_DISTANCE = "MIN_DISTANCE"
    SUBPOOL_EXPRESSION = "SUBPOOL_EXPRESSION"
    METHOD_BUDGET = "METHOD_BUDGET"
    FD_K_MIN = "FD_K_MIN"
    FD_K_MAX = "FD_K_MAX"
    FD_USE_VENDI = "FD_USE_VENDI"
    FD_VENDI_DELTA = "FD_VENDI_DELTA"
    LC_FD_CUTOFF_M = "LC_FD_CUTOFF_M"
    FA_CB_LAMBDA = "FA_CB_LAMBDA"
    RANDOM_STATE = "RANDOM_STATE"
    OUTPUT = "OUTPUT"
    OUTPUT_CSV = "OUTPUT_CSV"
    OUTPUT_REPORT = "OUTPUT_REPORT"
    SELECTED_PATCHES = "SELECTED_PATCHES"
    POOL_PATCHES = "POOL_PATCHES"

    group_key = "weights"
    icon_name = "select_coreset.svg"
    required_modules = TABLES
    added_fields = (CORESET_SCORE, CORESET_SELECTED, SELECTION_STEP, SELECTION_RANK)

    def name(self):
        return "selectcoreset"

    def displayName(self):  # noqa: N802 (QGIS API name)
        return self.tr("Select coreset")

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        return self.with_in_place_help(self.tr(
            "Picks the most informative subset of the patches when the compute budget allows training on only "
            "part of them (pytorch-smt-tools select-coreset). Writes the layer with coreset_score (the method's "
            "score, higher = picked earlier by the method), coreset_selected, selection_step and selection_rank "
            "(the pick order over all steps: 1 = first, 0 = not selected), styled selected / not selected, and a "
            "training CSV of the selected patches (Combine's columns, sampler weights re-normalised to mean 1 "
            "over the subset). Excluded patches are never selected.\n\n"
            "<b>Method</b>: <i>lc</i> = class_entropy / its maximum; <i>cb</i> = greedy class balance, each pick "
            "the patch that makes the summed class distribution of the subset most even; <i>fd</i> = KMeans on "
            "the DINOv2 embeddings, then round-robin over the clusters; <i>fa</i> = mean × spread of each "
            "embedding; <i>lc_fd</i> = the first m patches by fd, then by lc; <i>fa_cb</i> = λ·fa + (1 − λ)·cb. "
            "fd, fa, lc_fd and fa_cb read the embeddings from the Parquet cache that Compute DINOv2 uniqueness "
            "wrote; when it holds embeddings of several models, name the model (advanced).\n"
            "<b>Budget</b>: a fraction of the patches that are not excluded (0.3 = 30%), or a number of "
            "patches, as the budget mode says.\n"
            "<b>Vector layer</b> (optional): patches whose footprint covers at least the minimum area (map units "
            "of the patch layer, squared) of its polygons, e.g. mapped rare-class areas, are taken first, best "
            "score first, up to the budget; the method fills the rest. The layer may be in another CRS.\n"
            "<b>Sub-pool</b> (optional): an expression such as \"cls_4\" > 0.5; the method then scores and picks "
            "only those patches, up to its own budget (a fraction of the patches not excluded, or a count, as "
            "the budget mode says; 0 = the rest of the budget), and the rest of the budget is filled by class "
            "entropy over all patches.\n"
            "<b>Spatial diversity</b> (optional): at most n selected patches per grid cell of a given size, or a "
            "minimum distance between selected footprint centroids. A patch it refuses is skipped; what the "
            "method cannot fill is filled by class entropy, under the same rule. selection_step says which step "
            "took each patch: vector, the method's name, or fill.\n"
            "The log and the report (HTML, optional) compare the subset with a random one of the same size: "
            "per-class pixel shares, clusters and tiles covered, and the coverage radius in embedding space."))

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.INPUT, self.tr("Patches with composition fields (and sampler weights)"),
            [QgsProcessing.TypeVectorPolygon]))
        self.addParameter(QgsProcessingParameterEnum(
            self.METHOD, self.tr("Method"), options=self.method_labels(),
            defaultValue=0))
        self.addParameter(with_decimals(QgsProcessingParameterNumber(
            self.BUDGET, self.tr("Budget (a fraction ≤ 1, or a number of patches)"),
            QgsProcessingParameterNumber.Double, defaultValue=0.5, minValue=0), 3))
        self.addParameter(QgsProcessingParameterEnum(
            self.BUDGET_MODE, self.tr("Budget mode"),
            options=[self.tr("fraction — of the patches not excluded"), self.tr("count — a number of patches")],
            defaultValue=0))
        # Any path: a partitioned cache is a folder of parts (e.g. written by Dask workers), typed in; QGIS's
        # default filter (*.*) would refuse a name without an extension.
        self.addParameter(QgsProcessingParameterFile(
            self.PARQUET_PATH, self.tr("Embedding cache (Parquet file or folder)"), optional=True,
            fileFilter=self.tr("Parquet files (*.parquet);;All files (*)")))
        self.addParameter(QgsProcessingParameterVectorLayer(
            self.VECTOR_LAYER, self.tr("Take first the patches over the polygons of"),
            [QgsProcessing.TypeVectorPolygon], optional=True))
        self.addParameter(with_decimals(QgsProcessingParameterNumber(
            self.MIN_INTERSECT_AREA, self.tr("Minimum overlap with those polygons (map units²)"),
            QgsProcessingParameterNumber.Double, defaultValue=0.0, minValue=0), 2))
        self.addParameter(QgsProcessingParameterNumber(
            self.MAX_PER_CELL, self.tr("At most n selected patches per grid cell (0 = off)"),
            QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0))
        # Distances: the dialog shows them in the patch layer's units (and lets the user convert).
        self.addParameter(with_decimals(QgsProcessingParameterDistance(
            self.GRID_CELL_SIZE, self.tr("Grid cell size"), defaultValue=1000.0, parentParameterName=self.INPUT,
            minValue=0), 2))
        self.addParameter(with_decimals(QgsProcessingParameterDistance(
            self.MIN_DISTANCE, self.tr("Minimum distance between selected patches (0 = off)"), defaultValue=0.0,
            parentParameterName=self.INPUT, minValue=0), 2))
        self.addParameter(QgsProcessingParameterExpression(
            self.SUBPOOL_EXPRESSION, self.tr("Method picks only where (e.g. \"cls_4\" > 0.5)"),
            parentLayerParameterName=self.INPUT, optional=True))
        self.addParameter(with_decimals(QgsProcessingParameterNumber(
            self.METHOD_BUDGET, self.tr("Method's own budget (0 = the rest of the budget)"),
            QgsProcessingParameterNumber.Double, defaultValue=0.0, minValue=0), 3))
        advanced = [
            QgsProcessingParameterString(
                self.DINO_MODEL, self.tr("Model in the embedding cache"),
                optional=True),
            QgsProcessingParameterNumber(self.FD_K_MIN, self.tr("fd: smallest number of clusters"),
                                         QgsProcessingParameterNumber.Integer, defaultValue=2, minValue=1),
            QgsProcessingParameterNumber(self.FD_K_MAX, self.tr("fd: largest number of clusters"),
                                         QgsProcessingParameterNumber.Integer, defaultValue=20, minValue=1),
            QgsProcessingParameterBoolean(self.FD_USE_VENDI, self.tr("fd: choose k by the Vendi score (else elbow)"),
                                          defaultValue=False),
            with_decimals(QgsProcessingParameterNumber(
                self.FD_VENDI_DELTA, self.tr("fd: smallest relative Vendi gain to grow k"),
                QgsProcessingParameterNumber.Double, defaultValue=0.005, minValue=0), 4),
            QgsProcessingParameterNumber(self.LC_FD_CUTOFF_M, self.tr("lc_fd: patches taken by fd (0 = 10%)"),
                                         QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0),
            with_decimals(QgsProcessingParameterNumber(
                self.FA_CB_LAMBDA, self.tr("fa_cb: λ, the share of fa"), QgsProcessingParameterNumber.Double,
                defaultValue=0.5, minValue=0, maxValue=1), 2),
            QgsProcessingParameterNumber(self.RANDOM_STATE, self.tr("Random seed"),
                                         QgsProcessingParameterNumber.Integer, defaultValue=42, minValue=0),
        ]
        for parameter in advanced:
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(parameter)
        add_record_field_parameters(self, self.INPUT)
        self.add_in_place_parameter()
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT, self.tr("Coreset"), QgsProcessing.TypeVectorAnyGeometry,
            optional=True, createByDefault=True))  # optional: not written with IN_PLACE
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_CSV, self.tr("Training CSV of the selected patches"), self.tr("CSV files (*.csv)"),
            optional=True))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_REPORT, self.tr("Coreset report (subset vs random)"), self.tr("HTML files (*.html)"),
            optional=True))
        self.addOutput(QgsProcessingOutputNumber(self.SELECTED_PATCHES, self.tr("Selected patches")))
        self.addOutput(QgsProcessingOutputNumber(self.POOL_PATCHES, self.tr("Patches not excluded")))

    def method_labels(self):
        """Enum labels in the order of contract.CORESET_METHODS (literal strings, for pylupdate5)."""
        labels = [
            self.tr("lc — label complexity (class entropy)"),
            self.tr("cb — class balance (greedy)"),
            self.tr("fd — feature diversity"),
            self.tr("fa — feature activation"),
            self.tr("lc_fd — first by fd, then by lc"),
            self.tr("fa_cb — blend of fa and cb"),
        ]
        assert len(labels) == len(CORESET_METHODS)
        return labels

    def modules_needed(self, parameters, context) -> tuple:
        method = CORESET_METHODS[self.parameterAsEnum(parameters, self.METHOD, context)]
        extra = ("pyarrow",) if method in CORESET_EMBEDDING_METHODS else ()
        if method in ("fd", "lc_fd"):
            extra += ("sklearn", "threadpoolctl")
        return tuple(self.required_modules) + extra

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802 (QGIS API name)
        super().postProcessAlgorithm(context, feedback)
        path = getattr(self, "_output_path", "")
        if path and not context.willLoadLayerOnCompletion(path):
            save_default_style(path, SelectionStyle(), feedback)
        return {}

    def _geometry_steps(self, parameters, context, feedback, source, table):
        """(rows over the vector layer's polygons or None, centroid x, y or None) read from the features."""
        import numpy as np

        vector = self.parameterAsVectorLayer(parameters, self.VECTOR_LAYER, context)
        max_per_cell = self.parameterAsInt(parameters, self.MAX_PER_CELL, context)
        min_distance = self.parameterAsDouble(parameters, self.MIN_DISTANCE, context)
        need_centroids = max_per_cell > 0 or min_distance > 0
        if vector is None and not need_centroids:
            return None, None, None
        if need_centroids and source.sourceCrs().isGeographic():
            feedback.pushWarning(self.tr(
                "The patch layer's CRS {} is geographic: the grid cell size and the minimum distance are in degrees "
                "(1 degree is about 111 km). Give them in degrees, or reproject the layer to a projected CRS to give "
                "them in meters.").format(source.sourceCrs().authid() or source.sourceCrs().description()))
        polygons, index = {}, None
        if vector is not None and vector.geometryType() != QgsWkbTypes.PolygonGeometry:
            # qgis_process and scripts pass any layer; overlap areas need polygons
            raise QgsProcessingException(self.tr(
                "'{}' holds {} geometries; patches are taken first over polygons (areas): give a polygon layer, "
                "e.g. a buffer of the lines or points.").format(
                vector.name(), QgsWkbTypes.geometryDisplayString(vector.geometryType()).lower()))
        if vector is not None:
            transform = QgsCoordinateTransform(vector.crs(), source.sourceCrs(), context.transformContext())
            index = QgsSpatialIndex()
            for feature in vector.getFeatures():
                geometry = QgsGeometry(feature.geometry())
                if geometry.isEmpty():
                    continue
                if geometry.transform(transform) != 0:
                    raise QgsProcessingException(self.tr("Could not reproject a polygon of '{}' to the CRS of the "
                                                         "patches.").format(vector.name()))
                polygons[feature.id()] = geometry
                index.addFeature(feature.id(), geometry.boundingBox())
            feedback.pushInfo(self.tr("{} polygons of '{}' reprojected from {} to {}.").format(
                len(polygons), vector.name(), vector.crs().authid(), source.sourceCrs().authid()))
        min_area = self.parameterAsDouble(parameters, self.MIN_INTERSECT_AREA, context)
        positions = {fid: i for i, fid in enumerate(table.index)}
        x = np.full(len(table), np.nan)
        y = np.full(len(table), np.nan)
        over = []
        request = QgsFeatureRequest().setNoAttributes()
        for n, feature in enumerate(source.getFeatures(request)):
            if n % 2000 == 0:
                raise_if_canceled(feedback)
            row = positions.get(feature.id())
            geometry = feature.geometry()
            if row is None or geometry is None or geometry.isEmpty():
                continue
            if need_centroids:
                point = geometry.centroid().asPoint()
                x[row], y[row] = point.x(), point.y()
            if index is not None:
                hits = [polygons[i] for i in index.intersects(geometry.boundingBox())]
                if hits:
                    cover = QgsGeometry.unaryUnion(hits) if len(hits) > 1 else hits[0]
                    area = geometry.intersection(cover).area()
                    if area > 0 and area >= min_area:
                        over.append(row)
        if vector is not None:
            from ...balanced_sampling_plugin.weights import included_mask

            excluded = int((~included_mask(table)[over]).sum()) if over else 0
            feedback.pushInfo(self.tr("{} patches overlap the polygons of '{}' by at least {} map units²; the {} of "
                                      "them that are not excluded are taken first.").format(
                len(over), vector.name(), min_area, len(over) - excluded))
            largest = max((f.geometry().area() for f in source.getFeatures(request)
                           if f.geometry() is not None), default=0.0)
            if min_area > largest > 0:
                feedback.reportError(self.tr("The minimum overlap ({} map units²) is larger than the largest patch "
                                             "({:.6g} map units²): no patch can reach it. Lower it.").format(
                    min_area, largest), fatalError=False)
        return (over if vector is not None else None), (x if need_centroids else None), \
            (y if need_centroids else None)

    def _sub_pool(self, parameters, context, source, table, budget_mode):
        """(bool over the table rows: the features the sub-pool expression keeps, or None; the method's budget
        as a count, or None)."""
        import numpy as np

        from ...balanced_sampling_plugin.selection.budget import budget_size
        from ...balanced_sampling_plugin.weights import included_mask

        value = self.parameterAsDouble(parameters, self.METHOD_BUDGET, context)
        n_pool = int(included_mask(table).sum())
        method_budget = budget_size(value, budget_mode, n_pool) if value > 0 else None
        text = self.parameterAsExpression(parameters, self.SUBPOOL_EXPRESSION, context).strip()
        given = parameters.get(self.SUBPOOL_EXPRESSION)
        if not text and isinstance(given, str) and given.strip():
            text = given.strip()  # QGIS 3.22 reads an expression it cannot parse as none: say why instead
        if not text:
            return None, method_budget
        expression = QgsExpression(text)
        if expression.hasParserError():
            raise QgsProcessingException(self.tr("The sub-pool expression '{}' cannot be read: {}").format(
                text, expression.parserErrorString()))
        names = source.fields().names()
        unknown = sorted(set(expression.referencedColumns()) - set(names) - {QgsFeatureRequest.ALL_ATTRIBUTES})
        if unknown:
            raise QgsProcessingException(self.tr("The sub-pool expression '{}' names {}, which the input layer does "
                                                 "not have; its fields are {}.").format(
                text, ", ".join(unknown), ", ".join(names)))
        request = QgsFeatureRequest(expression).setFlags(QgsFeatureRequest.NoGeometry)
        positions = {fid: i for i, fid in enumerate(table.index)}
        keep = np.zeros(len(table), dtype=bool)
        for feature in source.getFeatures(request):
            row = positions.get(feature.id())
            if row is not None:
                keep[row] = True
        return keep, method_budget

    def _report_options(self, parameters, context) -> dict:
        """The settings that shaped the selection, for the report: parameter label -> value (given or default;
        unset options and zeros that mean "off" left out)."""
        options = {}
        for definition in self.parameterDefinitions():
            if definition.isDestination() or definition.name() in ("INPUT", "IN_PLACE"):
                continue
            advanced = bool(definition.flags() & QgsProcessingParameterDefinition.FlagAdvanced)
            if advanced and definition.name() not in parameters:
                continue  # an advanced option left at its default
            value = parameters.get(definition.name(), definition.defaultValue())
            if value in (None, "") or (definition.type() in ("number", "distance") and value == 0 and
                                       definition.name() != "BUDGET"):
                continue
            if definition.name() == self.GRID_CELL_SIZE and not parameters.get(self.MAX_PER_CELL):
                continue  # the cell size only matters with a per-cell limit
            if definition.type() == "enum":
                value = definition.options()[self.parameterAsEnum(parameters, definition.name(), context)]
            elif definition.type() in ("vector", "source", "file"):
                value = self.parameterAsString(parameters, definition.name(), context) or value
            options[definition.description()] = value
        return options

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        self.require_packages(parameters, context)
        source = self.parameterAsSource(parameters, self.INPUT, context)
        if source is None:
            raise QgsProcessingException(self.invalidSourceError(parameters, self.INPUT))
        method = CORESET_METHODS[self.parameterAsEnum(parameters, self.METHOD, context)]
        budget_mode = BUDGET_MODES[self.parameterAsEnum(parameters, self.BUDGET_MODE, context)]
        budget = self.parameterAsDouble(parameters, self.BUDGET, context)
        parquet = self.parameterAsFile(parameters, self.PARQUET_PATH, context) or None
        csv_path = self.file_output(parameters, self.OUTPUT_CSV, context)
        report_path = self.file_output(parameters, self.OUTPUT_REPORT, context)
        if method in CORESET_EMBEDDING_METHODS and not parquet:
            raise QgsProcessingException(self.tr(
                "Method {} reads the DINOv2 embeddings: give the embedding cache (Parquet) that 'Compute DINOv2 "
                "uniqueness' wrote.").format(method))

        import numpy as np

        from ...balanced_sampling_plugin.export import missing_files_note
        from ...balanced_sampling_plugin.records import validate_records
        from ...balanced_sampling_plugin.selection.budget import check_budget
        from ...balanced_sampling_plugin.selection.config import coreset_frame, describe_comparison
        from ...balanced_sampling_plugin.selection.coreset import select_coreset
        from ...balanced_sampling_plugin.selection.measures import compare_with_random
        from ...balanced_sampling_plugin.selection.report import coreset_report_html
        from ...balanced_sampling_plugin.selection.spatial import diversity_rule

        with engine_errors():
            check_budget(budget, budget_mode)
        writes = {self.OUTPUT: self.output_file(parameters, context), self.OUTPUT_CSV: csv_path,
                  self.OUTPUT_REPORT: report_path}
        self.check_paths(writes, {self.INPUT: self.input_file(parameters, context), self.PARQUET_PATH: parquet,
                                  self.VECTOR_LAYER: self.input_file(parameters, context, self.VECTOR_LAYER)})
        table = read_table(source, record_field_map(self, parameters, context), feedback, optional=OPTIONAL_FIELDS)
        progress = engine_progress(feedback)
        with engine_errors():
            table = validate_records(table, source=self.tr("the input layer"))
            vector_rows, x, y = self._geometry_steps(parameters, context, feedback, source, table)
            feedback.setProgress(10)
            diversity = None
            if x is not None:
                diversity = diversity_rule(
                    x, y, cell_size=self.parameterAsDouble(parameters, self.GRID_CELL_SIZE, context),
                    max_per_cell=self.parameterAsInt(parameters, self.MAX_PER_CELL, context),
                    min_distance=self.parameterAsDouble(parameters, self.MIN_DISTANCE, context))
            method_pool, method_budget = self._sub_pool(parameters, context, source, table, budget_mode)
            cutoff = self.parameterAsInt(parameters, self.LC_FD_CUTOFF_M, context)
            result = select_coreset(
                table, method, budget, budget_mode, parquet_path=parquet,
                model=self.parameterAsString(parameters, self.DINO_MODEL, context).strip() or None,
                fd_k_min=self.parameterAsInt(parameters, self.FD_K_MIN, context),
                fd_k_max=self.parameterAsInt(parameters, self.FD_K_MAX, context),
                fd_use_vendi=self.parameterAsBool(parameters, self.FD_USE_VENDI, context),
                fd_vendi_delta=self.parameterAsDouble(parameters, self.FD_VENDI_DELTA, context),
                lc_fd_cutoff_m=cutoff if cutoff > 0 else None,
                fa_cb_lambda=self.parameterAsDouble(parameters, self.FA_CB_LAMBDA, context),
                seed=self.parameterAsInt(parameters, self.RANDOM_STATE, context),
                vector_rows=vector_rows, method_pool=method_pool, method_budget=method_budget, diversity=diversity,
                progress=progress.child(0.1, 0.7))
            n_pool = int(result.pool.sum())
            steps = result.selection.step[result.selection.order]  # in pick order: vector, method, fill
            counts = ", ".join(f"{name} {int((steps == name).sum())}" for name in dict.fromkeys(steps.tolist()))
            feedback.pushInfo(self.tr("{} of {} patches selected (budget {}); by step: {}.").format(
                result.selection.n_selected, n_pool, result.budget, counts or "-"))
            if result.details.get("k"):
                feedback.pushInfo(self.tr("fd: {} clusters of embeddings.").format(result.details["k"]))
            comparison = None
            if result.selection.n_selected:
                comparison = compare_with_random(table, result.selected, result.pool, result.pool_embeddings)
                feedback.pushInfo(describe_comparison(method, comparison))
            fields = result.fields(CORESET_SCORE)
            fields.index = table.index
            with OutputFiles() as outputs:
                if csv_path:
                    raise_if_canceled(feedback)
                    if not result.selection.n_selected:
                        raise QgsProcessingException(self.tr("No patch was selected (every patch is excluded); "
                                                             "there is no training CSV to write."))
                    frame = coreset_frame(table, result, CORESET_SCORE)
                    note = missing_files_note(table.iloc[result.selection.order])
                    if note:
                        feedback.pushWarning(note)
                    with open(outputs.partial(csv_path), "w", encoding="utf-8", newline="") as handle:
                        frame.to_csv(handle, index=False, lineterminator="\n")
                if report_path:
                    raise_if_canceled(feedback)
                    if comparison is None:
                        raise QgsProcessingException(self.tr("No patch was selected (every patch is excluded); "
                                                             "there is no report to write."))
                    page = coreset_report_html(comparison, method, result.budget,
                                               list(result.step[result.selection.order]),
                                               self._report_options(parameters, context))
                    with open(outputs.partial(report_path), "w", encoding="utf-8") as handle:
                        handle.write(page)
                raise_if_canceled(feedback)
                dest_id = self.write_output(parameters, context, feedback, source, fields, outputs,
                                            SelectionStyle(), progress_span=(75.0, 100.0))
                self.commit(outputs, feedback)
        if csv_path:
            feedback.pushInfo(self.tr("Training CSV: {}").format(csv_path))
        if report_path:
            feedback.pushInfo(self.tr("Report: {}").format(report_path))
        self._output_path = dest_id
        return {self.OUTPUT: dest_id, self.OUTPUT_CSV: csv_path or None, self.OUTPUT_REPORT: report_path or None,
                self.SELECTED_PATCHES: int(np.sum(result.selected)), self.POOL_PATCHES: n_pool}
