"""Styles of the output layers: applied once QGIS loads them (main thread, after the algorithm ran) and
stored as a GeoPackage's default style.

A weight map must read at a glance, so a style here is a rule-based renderer of:

- classes of one numeric field over the *included* patches, their breaks on values the data holds
  (quantiles that step over ties: a value shared by many patches is one class, never two equal ones;
  a field with few distinct values gets one class per value), so no class is empty or repeated;
- labels rounded to the fewest significant digits that keep neighbouring classes apart
  ("0.4 – 0.52", not "0.395325 – 0.395325");
- excluded patches (field ``excluded`` true, or a zero weight) as their own grey, hatched
  "excluded" entry, outside the classes.
"""

import math

from qgis.core import (
    QgsFeatureRequest,
    QgsFillSymbol,
    QgsProcessingLayerPostProcessorInterface,
    QgsRuleBasedRenderer,
    QgsStyle,
    QgsSymbol,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QCoreApplication, QLocale
from qgis.PyQt.QtGui import QColor

from ..balanced_sampling_plugin.contract import (
    EXCLUDED,
    FREQ_CLUSTER_ID,
    FREQ_CLUSTER_WEIGHT,
    SAMPLER_WEIGHT,
)

#: Fields whose zero means "never sampled": a zero is drawn as excluded, not as the lowest class.
ZERO_IS_EXCLUDED = (SAMPLER_WEIGHT, FREQ_CLUSTER_WEIGHT)
EXCLUDED_COLOR = QColor(128, 128, 128)
EXCLUDED_STROKE = QColor(96, 96, 96)


def class_bounds(values, classes: int) -> list:
    """Classes of sorted-or-not ``values`` as ``[(low, high), …]``, both values the data holds.

    Quantiles that step over ties: each class takes about an equal share of the values not yet
    classed, and ends after the last copy of its upper value. So classes are never empty, never
    repeat a value, and increase; a value shared by many features is a class of its own, and data
    with at most ``classes`` distinct values gets one class per value.
    """
    values = sorted(v for v in values if v is not None and math.isfinite(v))
    if not values or classes < 1:
        return []
    distinct = sorted(set(values))
    if len(distinct) <= classes:
        return [(v, v) for v in distinct]
    bounds, start, n = [], 0, len(values)
    for remaining in range(classes, 0, -1):
        if start >= n:
            break
        # The upper value of an equal share of what is left, then past all its copies.
        end = start + math.ceil((n - start) / remaining) - 1
        high = values[end] if remaining > 1 else values[-1]
        while end + 1 < n and values[end + 1] == high:
            end += 1
        bounds.append((values[start], high))
        start = end + 1
    return bounds


def format_number(value: float, digits: int) -> str:
    """``value`` with ``digits`` significant digits, fixed point, no trailing zeros, in QGIS's locale."""
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    locale = QLocale()
    text = locale.toString(float(value), "f", decimals)
    point = locale.decimalPoint()
    if decimals and point in text:
        text = text.rstrip("0").rstrip(point)
    return text


def class_labels(bounds) -> list:
    """Labels of ``class_bounds``: "low – high", or one number where a class holds one value.

    Two significant digits, more only where two classes would start or end alike, or a class would
    read "x – x". A class may start with the number the one below ends with ("0.001 – 0.0015" after
    "0.00068 – 0.001"): neighbouring data values, read as adjoining ranges.
    """
    def readable(digits):
        lows = [format_number(low, digits) for low, _ in bounds]
        highs = [format_number(high, digits) for _, high in bounds]
        return (len(set(lows)) == len(lows) and len(set(highs)) == len(highs)
                and all(low_text != high_text for (low, high), low_text, high_text in zip(bounds, lows, highs)
                        if low != high))

    digits = next((digits for digits in range(2, 17) if readable(digits)), 17)
    labels = []
    for low, high in bounds:
        low_text, high_text = format_number(low, digits), format_number(high, digits)
        labels.append(low_text if low == high else f"{low_text} – {high_text}")
    return labels


def _quoted(field: str) -> str:
    return '"{}"'.format(field.replace('"', '""'))


def _literal(value: float) -> str:
    return repr(float(value))


class _RendererStyle(QgsProcessingLayerPostProcessorInterface):
    """A post-processor that sets ``self.renderer(layer)`` on the loaded layer (None: left as it is)."""

    def renderer(self, layer):
        raise NotImplementedError

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS API name)
        renderer = self.renderer(layer)
        if renderer is None:
            return
        layer.setRenderer(renderer)
        layer.triggerRepaint()


class GraduatedStyle(_RendererStyle):
    """Classes of one numeric field on a colour ramp (fills part transparent), excluded patches apart.

    ``detail_field``: a field whose values each class lists in its label (the clusters a weight class
    holds). Used as a post-processor (QGIS owns nothing: keep a reference), by
    :func:`save_default_style`, and directly through :meth:`renderer`.
    """

    def __init__(self, field: str, ramp: str = "Viridis", classes: int = 7, detail_field: str = ""):
        super().__init__()
        self.field, self.ramp, self.classes, self.detail_field = field, ramp, classes, detail_field

    def tr(self, string):
        return QCoreApplication.translate("GraduatedStyle", string)

    def excluded_expression(self, layer) -> str:
        """The filter of the excluded patches on ``layer``, or "" where it cannot tell them."""
        parts = []
        if layer.fields().indexOf(EXCLUDED) >= 0:
            parts.append(f"coalesce({_quoted(EXCLUDED)}, false)")
        if self.field in ZERO_IS_EXCLUDED:
            parts.append(f"coalesce({_quoted(self.field)} <= 0, false)")
        return " OR ".join(parts)

    def _read(self, layer, excluded: str):
        """(value, detail) of the included features, and how many features are excluded."""
        request = QgsFeatureRequest().setFlags(QgsFeatureRequest.NoGeometry)
        names = [self.field] + ([EXCLUDED] if layer.fields().indexOf(EXCLUDED) >= 0 else [])
        detail = self.detail_field if layer.fields().indexOf(self.detail_field) >= 0 else ""
        request.setSubsetOfAttributes(names + ([detail] if detail else []), layer.fields())
        included, excluded_count = [], 0
        for feature in layer.getFeatures(request):
            value = feature[self.field]
            value = None if value is None or (hasattr(value, "isNull") and value.isNull()) else value
            flag = feature[EXCLUDED] if EXCLUDED in names else None
            flag = bool(flag) and not (hasattr(flag, "isNull") and flag.isNull())
            try:
                value = None if value is None else float(value)
            except (TypeError, ValueError):
                value = None
            if flag or (excluded and self.field in ZERO_IS_EXCLUDED and value is not None and value <= 0):
                excluded_count += 1
            elif value is not None and math.isfinite(value):
                included.append((value, feature[detail] if detail else None))
        return included, excluded_count

    def _detail(self, values) -> str:
        values = sorted({v for v in values if v is not None and not (hasattr(v, "isNull") and v.isNull())})
        if not values:
            return ""
        text = ", ".join(str(v) for v in values)
        if len(values) == 1:
            return self.tr("cluster {}").format(text)
        return self.tr("clusters {}").format(text)

    def renderer(self, layer):
        """The rule-based renderer for ``layer``, or None if it lacks the field or has no value to class."""
        if not isinstance(layer, QgsVectorLayer) or layer.fields().indexOf(self.field) < 0:
            return None
        excluded = self.excluded_expression(layer)
        included, excluded_count = self._read(layer, excluded)
        bounds = class_bounds([value for value, _ in included], self.classes)
        if not bounds and not excluded_count:
            return None
        labels = class_labels(bounds)
        ramp = QgsStyle.defaultStyle().colorRamp(self.ramp)
        root = QgsRuleBasedRenderer.Rule(None)
        field = _quoted(self.field)
        for i, ((low, high), label) in enumerate(zip(bounds, labels)):
            # Contiguous and open at both ends, so a value edited later still gets a class.
            tests = [] if i == 0 else [f"{field} > {_literal(bounds[i - 1][1])}"]
            tests += [] if i == len(bounds) - 1 else [f"{field} <= {_literal(high)}"]
            tests = tests or [f"{field} IS NOT NULL"]
            condition = " AND ".join(tests)
            if excluded:
                condition = f"NOT ({excluded}) AND {condition}"
            if self.detail_field:
                detail = self._detail(d for value, d in included if low <= value <= high)
                label = f"{label} · {detail}" if detail else label
            symbol = QgsSymbol.defaultSymbol(layer.geometryType())
            symbol.setColor(ramp.color(i / max(1, len(bounds) - 1)) if ramp is not None else QColor(68, 1, 84))
            symbol.setOpacity(0.75)
            root.appendChild(QgsRuleBasedRenderer.Rule(symbol, 0, 0, condition, label))
        if excluded_count and excluded:
            root.appendChild(QgsRuleBasedRenderer.Rule(self.excluded_symbol(layer), 0, 0, excluded,
                                                       self.tr("excluded")))
        return QgsRuleBasedRenderer(root)

    @staticmethod
    def excluded_symbol(layer):
        """Grey and hatched (a fill for polygons; grey for other geometries)."""
        if layer.geometryType() == QgsWkbTypes.PolygonGeometry:
            # Built from properties: a symbol layer made in Python would be deleted under the symbol.
            return QgsFillSymbol.createSimple({
                "color": EXCLUDED_COLOR.name(), "style": "b_diagonal", "outline_color": EXCLUDED_STROKE.name(),
                "outline_width": "0.26"})
        symbol = QgsSymbol.defaultSymbol(layer.geometryType())
        symbol.setColor(EXCLUDED_COLOR)
        return symbol


def composition_style() -> GraduatedStyle:
    """The clusters layer: classes of ``freq_cluster_weight`` (one a cluster, as far as 16), each label
    naming its clusters, on the ramp the sampler weights use, so rare compositions stand out alike."""
    return GraduatedStyle(FREQ_CLUSTER_WEIGHT, classes=16, detail_field=FREQ_CLUSTER_ID)


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
    # QGIS 3.22 asks in a dialog before it replaces a style of the same name (a layer written again into the
    # same GeoPackage keeps its layer_styles rows): headless, nobody answers and the run hangs. The style being
    # replaced is this output's own, so remove it first.
    related, ids, names, _descriptions, _error = layer.listStylesInDatabase()
    for style_id, name in list(zip(ids, names))[:related]:
        if name == styler.field:
            layer.deleteStyleFromDatabase(style_id)
    description = QCoreApplication.translate("GraduatedStyle", "Classes of {}, excluded patches hatched")
    message = layer.saveStyleToDatabase(styler.field, description.format(styler.field), True, "")
    if message and feedback is not None:
        feedback.pushInfo(QCoreApplication.translate("GraduatedStyle", "Style not saved into {}: {}")
                          .format(path, message))
    return True


def style_on_load(algorithm, context, dest_id: str, styler) -> None:
    """Attach ``styler`` to the output ``dest_id`` if QGIS will load it (Toolbox runs, not qgis_process).

    The algorithm and the context keep a reference: QGIS does not keep post-processors created in
    Python alive, and ``processing.run`` runs a copy of the algorithm that is gone before the layers load.
    """
    if context.willLoadLayerOnCompletion(dest_id):
        for holder in (algorithm, context):
            holder._post_processors = getattr(holder, "_post_processors", []) + [styler]
        context.layerToLoadOnCompletionDetails(dest_id).setPostProcessor(styler)


class SelectionStyle(_RendererStyle):
    """A coreset layer: selected patches filled by the step that took them (vector, the method, fill),
    the rest as a faint outline, excluded patches grey and hatched."""

    field = "coreset_selected"
    #: selection_step value -> colour; any other step (the method's name) gets METHOD_COLOR.
    STEP_COLORS = {"vector": QColor(230, 97, 1), "fill": QColor(94, 60, 153)}
    METHOD_COLOR = QColor(26, 152, 80)

    def tr(self, string):
        return QCoreApplication.translate("SelectionStyle", string)

    def _steps(self, layer) -> list:
        if layer.fields().indexOf("selection_step") < 0:
            return []
        index = layer.fields().indexOf("selection_step")
        values = layer.uniqueValues(index)
        return sorted(str(v) for v in values if v is not None and not (hasattr(v, "isNull") and v.isNull())
                      and str(v))

    def renderer(self, layer):
        """The rule-based renderer for ``layer``, or None if it has no ``coreset_selected`` field."""
        if not isinstance(layer, QgsVectorLayer) or layer.fields().indexOf(self.field) < 0:
            return None
        root = QgsRuleBasedRenderer.Rule(None)
        selected = f"coalesce({_quoted(self.field)}, false)"
        steps = self._steps(layer)
        if steps:
            for step in steps:
                symbol = QgsSymbol.defaultSymbol(layer.geometryType())
                symbol.setColor(self.STEP_COLORS.get(step, self.METHOD_COLOR))
                symbol.setOpacity(0.8)
                condition = "{} AND {} = '{}'".format(selected, _quoted("selection_step"), step.replace("'", "''"))
                root.appendChild(QgsRuleBasedRenderer.Rule(symbol, 0, 0, condition,
                                                           self.tr("selected ({})").format(step)))
        else:
            symbol = QgsSymbol.defaultSymbol(layer.geometryType())
            symbol.setColor(self.METHOD_COLOR)
            root.appendChild(QgsRuleBasedRenderer.Rule(symbol, 0, 0, selected, self.tr("selected")))
        excluded = f"coalesce({_quoted(EXCLUDED)}, false)" if layer.fields().indexOf(EXCLUDED) >= 0 else ""
        unselected = f"NOT {selected}" + (f" AND NOT {excluded}" if excluded else "")
        if layer.geometryType() == QgsWkbTypes.PolygonGeometry:
            faint = QgsFillSymbol.createSimple({"color": "255,255,255,0", "outline_color": "120,120,120",
                                                "outline_width": "0.1"})
        else:
            faint = QgsSymbol.defaultSymbol(layer.geometryType())
            faint.setColor(QColor(200, 200, 200))
        root.appendChild(QgsRuleBasedRenderer.Rule(faint, 0, 0, unselected, self.tr("not selected")))
        if excluded:
            root.appendChild(QgsRuleBasedRenderer.Rule(GraduatedStyle.excluded_symbol(layer), 0, 0,
                                                       f"NOT {selected} AND {excluded}", self.tr("excluded")))
        return QgsRuleBasedRenderer(root)

