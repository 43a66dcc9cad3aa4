"""Styles applied to output layers once QGIS loads them (main thread, after the algorithm ran)."""

from qgis.core import (
    QgsClassificationQuantile,
    QgsGraduatedSymbolRenderer,
    QgsProcessingLayerPostProcessorInterface,
    QgsStyle,
    QgsSymbol,
    QgsVectorLayer,
)


class GraduatedStyle(QgsProcessingLayerPostProcessorInterface):
    """Quantile classes of one numeric field on a colour ramp, outlines thin, fills half transparent."""

    def __init__(self, field: str, ramp: str = "Viridis", classes: int = 7):
        super().__init__()
        self.field, self.ramp, self.classes = field, ramp, classes

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS API name)
        if not isinstance(layer, QgsVectorLayer) or layer.fields().indexOf(self.field) < 0:
            return
        renderer = QgsGraduatedSymbolRenderer(self.field)
        symbol = QgsSymbol.defaultSymbol(layer.geometryType())
        symbol.setOpacity(0.7)
        renderer.setSourceSymbol(symbol)
        ramp = QgsStyle.defaultStyle().colorRamp(self.ramp)
        if ramp is not None:
            renderer.setSourceColorRamp(ramp)
        renderer.setClassificationMethod(QgsClassificationQuantile())
        renderer.updateClasses(layer, self.classes)
        layer.setRenderer(renderer)
        layer.triggerRepaint()


def save_default_style(path: str, styler: GraduatedStyle, feedback=None) -> bool:
    """Store the style as the default of a GeoPackage layer, so QGIS opens the file styled.

    Used for outputs that no QGIS session loads (qgis_process, the modeler writing files).
    """
    if not path.lower().split("|")[0].endswith(".gpkg"):
        return False
    layer = QgsVectorLayer(path, "output", "ogr")
    if not layer.isValid():
        return False
    styler.postProcessLayer(layer, None, feedback)
    message = layer.saveStyleToDatabase(styler.field, f"Graduated by {styler.field}", True, "")
    if message and feedback is not None:
        feedback.pushInfo(f"Style not saved into {path}: {message}")
    return True


def style_on_load(algorithm, context, dest_id: str, styler) -> None:
    """Attach ``styler`` to the output ``dest_id`` if QGIS will load it (Toolbox runs, not qgis_process).

    The algorithm keeps a reference: QGIS does not own post-processors created in Python.
    """
    if context.willLoadLayerOnCompletion(dest_id):
        algorithm._post_processors = getattr(algorithm, "_post_processors", []) + [styler]
        context.layerToLoadOnCompletionDetails(dest_id).setPostProcessor(styler)
