"""Import patch records: a CSV or a pytorch-smt-tools balanced_dataset YAML -> patch footprint layer."""

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFile,
)

from ...balanced_sampling_plugin.contract import ON_MISSING
from ...balanced_sampling_plugin.dependencies import RASTERS
from ...balanced_sampling_plugin.file_safety import OutputFiles
from ..utils import engine_errors, engine_progress
from .base import BalancedSamplingAlgorithm, raster_reads


class ImportPatchRecords(BalancedSamplingAlgorithm):
    INPUT = "INPUT"
    ON_MISSING = "ON_MISSING"
    OUTPUT = "OUTPUT"
    MISSING_RASTERS = "MISSING_RASTERS"

    group_key = "patches"
    required_modules = RASTERS + ("yaml",)
    icon_name = "import_patch_records.svg"

    def name(self):
        return "importpatchrecords"

    def displayName(self):  # noqa: N802 (QGIS API name)
        return self.tr("Import patch records")

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        return self.tr(
            "Turns a list of patches into a patch footprint layer that the other Balanced Sampling algorithms "
            "accept. Each footprint polygon comes from its image raster's geotransform and CRS.\n\n"
            "<b>Patch records</b>: a CSV with the columns image_path, mask_path, row_off, col_off, patch_size "
            "(or image, mask, … as in a training CSV), or a pytorch-smt-tools balanced_dataset YAML config whose "
            "input.patch_records lists them. Relative paths are read from the file's folder. Extra columns "
            "(e.g. cls_1, uniqueness_score) are kept as fields; a training CSV's class_dist_json becomes the "
            "cls_<class> fields and its has_mask_border_nodata / has_image_black_border the border_nodata / "
            "black_border fields, so the weights and coreset algorithms read it back.\n"
            "<b>Records whose raster is missing</b>: <i>fail</i> stops and lists the missing files; <i>skip</i> "
            "leaves those records out and lists them in the log. Nothing is dropped silently."
        )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        self.addParameter(QgsProcessingParameterFile(
            self.INPUT, self.tr("Patch records (CSV or YAML config)"),
            fileFilter=self.tr("Patch records (*.csv *.yaml *.yml)")))
        self.addParameter(QgsProcessingParameterEnum(
            self.ON_MISSING, self.tr("Records whose raster is missing"),
            options=[self.tr("Fail"), self.tr("Skip and report")], defaultValue=0))
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT, self.tr("Patch footprints"), QgsProcessing.TypeVectorPolygon))
        self.addOutput(QgsProcessingOutputNumber(self.MISSING_RASTERS, self.tr("Missing rasters")))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        self.require_packages(parameters, context)
        from ...balanced_sampling_plugin.export import layer_fields_from_training_csv
        from ...balanced_sampling_plugin.sources import read_patch_records, record_footprints, records_files

        path = self.parameterAsFile(parameters, self.INPUT, context)
        on_missing = ON_MISSING[self.parameterAsEnum(parameters, self.ON_MISSING, context)]
        progress = engine_progress(feedback)
        output = self.output_file(parameters, context)
        self.check_paths({self.OUTPUT: output}, {self.INPUT: records_files(path)})
        with engine_errors():
            records = layer_fields_from_training_csv(read_patch_records(path))  # a CSV this plugin wrote
            self.check_paths({self.OUTPUT: output}, raster_reads(records), writable=False)
            footprints = record_footprints(records, on_missing, progress.child(0, 0.5))
        for missing in footprints.missing:
            feedback.reportError(self.tr("Raster not found, its records were skipped: {}").format(missing), False)
        with OutputFiles() as outputs:
            dest_id = self.write_patch_layer(parameters, context, feedback, footprints.records, footprints.rings,
                                             footprints.crs_authid, footprints.crs_wkt, outputs)
            self.commit(outputs, feedback)
        feedback.pushInfo(self.tr("{} patch records imported").format(len(footprints.records)))
        return {self.OUTPUT: dest_id, self.MISSING_RASTERS: len(footprints.missing)}
