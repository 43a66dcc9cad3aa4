"""Write processing_provider/models/build_balanced_dataset.model3 (run by `make model`).

The shipped graphical model is generated here with the PyQGIS model API, so that it
always names the algorithms' real parameters; open it in the modeler to change it.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_PATH = os.path.join(ROOT, "processing_provider", "models", "build_balanced_dataset.model3")


def build():
    from qgis.core import (
        QgsApplication,
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource as Source,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
        QgsProcessingParameterEnum,
        QgsProcessingParameterFile,
        QgsProcessingParameterNumber,
        QgsProcessingParameterString,
    )
    from qgis.PyQt.QtCore import QPointF

    model = QgsProcessingModelAlgorithm("Build balanced dataset model", "Sampler weights", "weights")
    model.setHelpContent({
        "ALG_DESC": "Footprints → composition clusters → DINOv2 uniqueness → combine sampler weights, as a graphical "
                    "model you can open and change in the modeler (each step keeps its default options; edit a step "
                    "to change them). Writes the weighted patch layer, the training CSV and the HTML report.",
        "IMAGE_FOLDER": "Folder of the image rasters (*.tif).",
        "MASK_FOLDER": "Folder of the mask rasters; a mask pairs with the image of the same name.",
        "PATCH_SIZE": "Side of a patch window, in pixels.",
        "DINO_MODEL": "dinov2-small|base|large, a Hugging Face id, or a folder saved with save_pretrained.",
        "SAMPLING_METHOD": "How composition and uniqueness become one weight (see Combine sampler weights).",
    })
    inputs = [
        QgsProcessingParameterFile("IMAGE_FOLDER", "Image folder", behavior=QgsProcessingParameterFile.Folder),
        QgsProcessingParameterFile("MASK_FOLDER", "Mask folder", behavior=QgsProcessingParameterFile.Folder),
        QgsProcessingParameterNumber("PATCH_SIZE", "Patch size (pixels)", QgsProcessingParameterNumber.Integer,
                                     defaultValue=256, minValue=1),
        QgsProcessingParameterString("DINO_MODEL", "DINOv2 model (short name, hub id or local folder)",
                                     defaultValue="dinov2-base"),
        QgsProcessingParameterEnum("SAMPLING_METHOD", "Sampling method", defaultValue=0, options=[
            "rank_max", "rank_multiply", "rank_add", "multiplicative", "composition_only", "uniqueness_only",
            "class_balanced"]),
    ]
    for y, parameter in enumerate(inputs):
        component = QgsProcessingModelParameter(parameter.name())
        component.setPosition(QPointF(120, 60 + 70 * y))
        model.addModelParameter(parameter, component)

    def child(child_id, algorithm, sources, y, outputs=()):
        step = QgsProcessingModelChildAlgorithm(f"balanced_sampling:{algorithm}")
        step.setChildId(child_id)
        step.setDescription(child_id.replace("_", " ").capitalize())
        step.setPosition(QPointF(420, 60 + 110 * y))
        algorithm = QgsApplication.processingRegistry().algorithmById(f"balanced_sampling:{algorithm}")
        for definition in algorithm.parameterDefinitions():
            if definition.isDestination():
                continue
            source = sources.get(definition.name())
            if source is None and definition.defaultValue() is not None:
                source = Source.fromStaticValue(definition.defaultValue())
            if source is not None:
                step.addParameterSources(definition.name(), [source])
        model_outputs = {}
        for output_name, label in outputs:
            output = QgsProcessingModelOutput(label)
            output.setChildId(child_id)
            output.setChildOutputName(output_name)
            model_outputs[label] = output
        step.setModelOutputs(model_outputs)
        model.addChildAlgorithm(step)

    child("footprints", "createpatchfootprints", {
        "IMAGE_FOLDER": Source.fromModelParameter("IMAGE_FOLDER"),
        "MASK_FOLDER": Source.fromModelParameter("MASK_FOLDER"),
        "PATCH_SIZE": Source.fromModelParameter("PATCH_SIZE")}, 0)
    child("composition_clusters", "computecompositionclusters", {
        "INPUT": Source.fromChildOutput("footprints", "OUTPUT")}, 1)
    child("uniqueness", "computedinov2uniqueness", {
        "INPUT": Source.fromChildOutput("composition_clusters", "OUTPUT"),
        "DINO_MODEL": Source.fromModelParameter("DINO_MODEL")}, 2)
    child("sampler_weights", "combinesamplerweights", {
        "INPUT": Source.fromChildOutput("uniqueness", "OUTPUT"),
        "SAMPLING_METHOD": Source.fromModelParameter("SAMPLING_METHOD")}, 3,
        outputs=[("OUTPUT", "Sampler weights"), ("OUTPUT_CSV", "Training CSV"), ("OUTPUT_REPORT", "Report")])
    return model


def main() -> int:
    from qgis.core import QgsApplication

    sys.path.insert(0, os.path.join(ROOT, "build", "qgis_plugins"))
    app = QgsApplication([], False)
    app.initQgis()
    sys.path.append(os.path.join(QgsApplication.pkgDataPath(), "python", "plugins"))
    from processing.core.Processing import Processing

    Processing.initialize()
    import balanced_sampling

    plugin = balanced_sampling.classFactory(None)
    plugin.initProcessing()
    model = build()
    valid, errors = model.validate()
    if not valid:
        print("\n".join(errors), file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(MODEL_PATH), exist_ok=True)
    if not model.toFile(MODEL_PATH):
        return 1
    print(MODEL_PATH)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
