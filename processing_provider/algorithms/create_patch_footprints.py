"""Create patch footprints: one polygon per patch window over image/mask raster pairs."""

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFile,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
    QgsProviderRegistry,
)

from ...balanced_sampling_plugin.contract import (
    COL_OFF,
    EDGE_MODES,
    IMAGE_PATH,
    MASK_PATH,
    PATCH_ID,
    PATCH_SIZE,
    ROW_OFF,
)
from ...balanced_sampling_plugin.dependencies import RASTERS
from ...balanced_sampling_plugin.file_safety import OutputFiles
from ..parameters import edge_mode_parameter
from ..utils import engine_errors, engine_progress
from .base import BalancedSamplingAlgorithm


def raster_file_path(layer) -> str:
    """The file behind a raster layer (GDAL URIs may carry options after a '|')."""
    parts = QgsProviderRegistry.instance().decodeUri(layer.providerType(), layer.source())
    return parts.get("path") or layer.source()


class CreatePatchFootprints(BalancedSamplingAlgorithm):
    IMAGES = "IMAGES"
    MASKS = "MASKS"
    IMAGE_FOLDER = "IMAGE_FOLDER"
    IMAGE_PATTERN = "IMAGE_PATTERN"
    MASK_FOLDER = "MASK_FOLDER"
    MASK_PATTERN = "MASK_PATTERN"
    PATCH_SIZE = "PATCH_SIZE"
    STRIDE = "STRIDE"
    EDGE_MODE = "EDGE_MODE"
    OUTPUT = "OUTPUT"

    group_key = "patches"
    required_modules = RASTERS
    icon_name = "create_patch_footprints.svg"

    def name(self):
        return "createpatchfootprints"

    def displayName(self):  # noqa: N802 (QGIS API name)
        return self.tr("Create patch footprints")

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        return self.tr(
            "Cuts image/mask raster pairs into square patch windows and writes one polygon per window, "
            "in the first raster's CRS, with the fields image_path, mask_path, row_off, col_off, patch_size and "
            "a stable patch_id. This layer is the input of every other Balanced Sampling algorithm.\n\n"
            "<b>Image rasters / Mask rasters</b>: the pairs, given as layers. An image pairs with the mask "
            "whose file name is the same apart from words like _mask or _label (tile_01.tif ↔ tile_01_mask.tif, "
            "or images/tile_01.tif ↔ masks/tile_01.tif).\n"
            "<b>Image folder / pattern, Mask folder / pattern</b>: instead of layers, every file in a folder that "
            "matches a pattern such as *.tif. The mask folder defaults to the image folder.\n"
            "<b>Patch size</b>: window side in pixels.\n"
            "<b>Stride</b>: step between windows in pixels; 0 means the patch size (no overlap).\n"
            "<b>Windows at the raster edge</b>: <i>Drop</i> keeps only windows that fit inside the raster; "
            "<i>Shift inward</i> adds a last window aligned to the right/bottom edge so every pixel is covered "
            "(it overlaps its neighbour). Windows never extend past the raster.\n\n"
            "Image and mask of a pair must share one pixel grid. Rasters in another CRS than the first (e.g. "
            "Sentinel-2 tiles of two UTM zones) have their footprints reprojected to it, as the log says; their "
            "patches are still read on their own pixel grid."
        )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.IMAGES, self.tr("Image rasters"), QgsProcessing.TypeRaster, optional=True))
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.MASKS, self.tr("Mask rasters"), QgsProcessing.TypeRaster, optional=True))
        self.addParameter(QgsProcessingParameterFile(
            self.IMAGE_FOLDER, self.tr("Image folder (instead of layers)"),
            behavior=QgsProcessingParameterFile.Folder, optional=True))
        self.addParameter(QgsProcessingParameterString(
            self.IMAGE_PATTERN, self.tr("Image file pattern"), defaultValue="*.tif", optional=True))
        self.addParameter(QgsProcessingParameterFile(
            self.MASK_FOLDER, self.tr("Mask folder (default: the image folder)"),
            behavior=QgsProcessingParameterFile.Folder, optional=True))
        self.addParameter(QgsProcessingParameterString(
            self.MASK_PATTERN, self.tr("Mask file pattern"), defaultValue="*.tif", optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.PATCH_SIZE, self.tr("Patch size (pixels)"), QgsProcessingParameterNumber.Integer,
            defaultValue=256, minValue=1))
        self.addParameter(QgsProcessingParameterNumber(
            self.STRIDE, self.tr("Stride (pixels, 0 = patch size)"), QgsProcessingParameterNumber.Integer,
            defaultValue=0, minValue=0))
        self.addParameter(edge_mode_parameter(self.EDGE_MODE, self.tr("Windows at the raster edge")))
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT, self.tr("Patch footprints"), QgsProcessing.TypeVectorPolygon))

    def _pairs(self, parameters, context):
        from ...balanced_sampling_plugin import footprints

        images = self.parameterAsLayerList(parameters, self.IMAGES, context)
        masks = self.parameterAsLayerList(parameters, self.MASKS, context)
        folder = self.parameterAsFile(parameters, self.IMAGE_FOLDER, context)
        if images or masks:
            if folder:
                raise QgsProcessingException(self.tr("Give either raster layers or a folder, not both."))
            return footprints.pair_images_and_masks(
                [raster_file_path(layer) for layer in images], [raster_file_path(layer) for layer in masks])
        if not folder:
            raise QgsProcessingException(self.tr("Give image and mask rasters, or an image folder."))
        mask_folder = self.parameterAsFile(parameters, self.MASK_FOLDER, context) or folder
        return footprints.find_pairs(
            folder, self.parameterAsString(parameters, self.IMAGE_PATTERN, context) or "*.tif",
            mask_folder, self.parameterAsString(parameters, self.MASK_PATTERN, context) or "*.tif")

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        self.require_packages(parameters, context)
        from ...balanced_sampling_plugin import footprints

        patch_size = self.parameterAsInt(parameters, self.PATCH_SIZE, context)
        stride = self.parameterAsInt(parameters, self.STRIDE, context) or patch_size
        edge = EDGE_MODES[self.parameterAsEnum(parameters, self.EDGE_MODE, context)]
        progress = engine_progress(feedback)
        with engine_errors():
            pairs = self._pairs(parameters, context)
            self.check_paths({self.OUTPUT: self.output_file(parameters, context)},
                             {"raster of the image/mask pairs": [p for pair in pairs for p in pair[:2]]})
            feedback.pushInfo(self.tr("{} image/mask pairs").format(len(pairs)))
            result = footprints.build_footprints(pairs, patch_size, stride, edge, progress.child(0, 0.5))

        records = result.records[[PATCH_ID, IMAGE_PATH, MASK_PATH, ROW_OFF, COL_OFF, PATCH_SIZE]]
        with OutputFiles() as outputs:
            dest_id = self.write_patch_layer(parameters, context, feedback, records, result.rings,
                                             result.crs_authid, result.crs_wkt, outputs)
            self.commit(outputs, feedback)
        feedback.pushInfo(self.tr("{} patch footprints written").format(len(records)))
        return {self.OUTPUT: dest_id}
