"""Write processing_provider/models/build_balanced_dataset.model3 (run by `make model`).

The shipped graphical model is generated here with the PyQGIS model API, so that it
always names the algorithms' real parameters; open it in the modeler to change it.

Its inputs are the chain algorithm's (``balanced_sampling:buildbalanceddataset``), cloned in
the same order with the same defaults, so the two read alike; each input feeds the step
whose parameter has its name. Two things a QGIS 3.22 model file cannot say:

- *Group*: 3.22 reads ``model_group`` into both the group name and the group id, so the file
  holds the algorithms' group id (``weights``) and the provider gives the model the
  algorithms' translated group name when it loads it (one group in the Toolbox).
- *Output order*: 3.22 lists a model's outputs by step id, then output name (so "Report"
  comes before "Sampler weights"); the output names are public (qgis_process
  ``sampler_weights:Sampler weights=…``), so they stay.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_PATH = os.path.join(ROOT, "processing_provider", "models", "build_balanced_dataset.model3")

MODEL_NAME = "Build balanced dataset model"
#: The Python algorithms' group id (BalancedSamplingAlgorithm.groupId() of the weights group).
GROUP_ID = "weights"
CHAIN = "balanced_sampling:buildbalanceddataset"
#: The chain's inputs a model cannot follow: a graphical model cannot skip its uniqueness step
#: without a second copy of every output. Run the chain algorithm to go without DINOv2.
CHAIN_ONLY = ("USE_UNIQUENESS",)
#: Inputs whose default differs from the chain's: the model always computes DINOv2 uniqueness, so its default
#: method is one that reads it (pytorch-smt-tools' default), not class_balanced, which would leave hours of
#: embeddings unused.
MODEL_DEFAULTS = {"SAMPLING_METHOD": "rank_max"}
#: (step id, algorithm, step description, model outputs: (child output, name, mandatory)).
STEPS = (
    ("footprints", "createpatchfootprints", "Create patch footprints", ()),
    ("composition_clusters", "computecompositionclusters", "Compute composition clusters", ()),
    ("uniqueness", "computedinov2uniqueness", "Compute DINOv2 uniqueness",
     (("PARQUET_PATH", "Embedding cache", False),)),
    ("sampler_weights", "combinesamplerweights", "Combine sampler weights",
     (("OUTPUT", "Sampler weights", True), ("OUTPUT_CSV", "Training CSV", True), ("OUTPUT_REPORT", "Report", False))),
)
#: Each step reads the previous step's layer.
LAYER_INPUTS = {"composition_clusters": "footprints", "uniqueness": "composition_clusters",
                "sampler_weights": "uniqueness"}
#: The chain's output descriptions, for the model outputs fed by the same step outputs.
CHAIN_OUTPUTS = {("uniqueness", "PARQUET_PATH"): "PARQUET_PATH", ("sampler_weights", "OUTPUT"): "OUTPUT",
                 ("sampler_weights", "OUTPUT_CSV"): "OUTPUT_CSV", ("sampler_weights", "OUTPUT_REPORT"): "OUTPUT_REPORT"}
HELP = {
    "ALG_DESC": "Footprints → composition clusters → DINOv2 uniqueness → combine sampler weights, as a graphical "
                "model you can open and change in the modeler (each step keeps its default options apart from the "
                "inputs below; edit a step to change them). Writes the weighted patch layer, the training CSV and "
                "the HTML report. The model always computes DINOv2 uniqueness, so its default method is rank_max, "
                "which reads it; class_balanced and composition_only do not read it: for those, the algorithm "
                "Build balanced dataset runs the same chain without DINOv2.",
    "IMAGE_FOLDER": "Folder of the image rasters.",
    "IMAGE_PATTERN": "File name pattern of the images in the image folder.",
    "MASK_FOLDER": "Folder of the mask rasters; a mask pairs with the image of the same name.",
    "MASK_PATTERN": "File name pattern of the masks in the mask folder.",
    "PATCH_SIZE": "Side of a patch window, in pixels.",
    "STRIDE": "Step between windows, in pixels; 0 = the patch size (no overlap).",
    "EDGE_MODE": "Windows that do not fit at the raster edge: drop them, or shift a last one inward so every pixel "
                 "is covered.",
    "NODATA_CLASS": "Mask value without a label.",
    "K_SELECTION": "Number of composition clusters: by the elbow of the inertia curve between k min and k max, or "
                   "a fixed k.",
    "K_MIN": "Fewest clusters the elbow may choose.",
    "K_MAX": "Most clusters the elbow may choose.",
    "K": "Number of clusters when it is fixed.",
    "EXCLUDE_BORDER_NODATA": "Leave out patches whose mask has the nodata class on its border; turn it off when the "
                             "nodata class marks unlabelled pixels inside the tiles.",
    "EXCLUDE_BLACK_BORDER": "Leave out patches whose image has black (or no-value) pixels on its border.",
    "BLACK_TOLERANCE": "Image values up to this count as black.",
    "MAX_NODATA_RATIO": "Leave out patches with a larger share of nodata mask pixels.",
    "DINO_MODEL": "dinov2-small|base|large, a Hugging Face id, or a folder saved with save_pretrained.",
    "BANDS": "The three image bands fed to the model as red, green, blue (e.g. 4,3,2 for Sentinel-2).",
    "BACKEND": "How the nearest neighbours of each embedding are found (see Compute DINOv2 uniqueness).",
    "SAMPLING_METHOD": "How composition and uniqueness become one weight (see Combine sampler weights).",
    "DASK_SCHEDULER": "Where the mask statistics and the DINOv2 embeddings run: empty = this process, local:N = a Dask cluster of N worker "
                      "processes on this machine, or a Dask scheduler address such as tcp://host:8786.",
    "uniqueness:Embedding cache": "Parquet file of DINOv2 embeddings, read and extended on each run (optional).",
}


def build():
    from qgis.core import (
        QgsApplication,
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
    )
    from qgis.core import (
        QgsProcessingModelChildParameterSource as Source,
    )
    from qgis.PyQt.QtCore import QPointF

    registry = QgsApplication.processingRegistry()
    chain = registry.algorithmById(CHAIN)
    algorithms = {step: registry.algorithmById(f"balanced_sampling:{name}") for step, name, _, _ in STEPS}
    model = QgsProcessingModelAlgorithm(MODEL_NAME, GROUP_ID, GROUP_ID)
    model.setHelpContent(HELP)

    # Inputs: the chain's, in its order, each feeding the steps that have a parameter of its name.
    inputs, routes = [], {}
    for definition in chain.parameterDefinitions():
        name = definition.name()
        if definition.isDestination() or name in CHAIN_ONLY:
            continue
        steps = [step for step, algorithm in algorithms.items() if algorithm.parameterDefinition(name) is not None]
        if not steps:
            raise SystemExit(f"{CHAIN} has the input {name}, which no step of the model reads: map it in "
                             f"scripts/build_model.py (or list it in CHAIN_ONLY).")
        parameter = definition.clone()
        source = Source.fromModelParameter(name)
        if name in MODEL_DEFAULTS:  # an enum whose options start with the value's name
            default = next(i for i, option in enumerate(definition.options())
                           if option.split(" ")[0] == MODEL_DEFAULTS[name])
            parameter.setDefaultValue(default)
            # QGIS 3.22 passes an input left out of the call (qgis_process, processing.run) to the step as unset,
            # so the step's own default would apply: the model's default is given here too.
            source = Source.fromExpression(f"coalesce(@{name}, {default})")
        component = QgsProcessingModelParameter(name)
        component.setPosition(QPointF(120, 60 + 70 * len(inputs)))
        model.addModelParameter(parameter, component)
        inputs.append(name)
        for step in steps:
            routes.setdefault(step, {})[name] = source
    model.setParameterOrder(inputs)

    for y, (step_id, algorithm_name, description, outputs) in enumerate(STEPS):
        algorithm = algorithms[step_id]
        step = QgsProcessingModelChildAlgorithm(algorithm.id())
        step.setChildId(step_id)
        step.setDescription(description)
        step.setPosition(QPointF(520, 60 + 110 * y))
        sources = dict(routes.get(step_id, {}))
        if step_id in LAYER_INPUTS:
            sources["INPUT"] = Source.fromChildOutput(LAYER_INPUTS[step_id], "OUTPUT")
        for definition in algorithm.parameterDefinitions():
            if definition.isDestination():
                continue
            source = sources.get(definition.name())
            if source is None and definition.defaultValue() is not None:
                source = Source.fromStaticValue(definition.defaultValue())
            if source is not None:
                step.addParameterSources(definition.name(), [source])
        model_outputs = {}
        for output_name, name, mandatory in outputs:
            output = QgsProcessingModelOutput(name, chain.parameterDefinition(CHAIN_OUTPUTS[step_id, output_name])
                                              .description())
            output.setChildId(step_id)
            output.setChildOutputName(output_name)
            output.setMandatory(mandatory)
            output.setPosition(QPointF(820, 60 + 110 * y + 40 * len(model_outputs)))
            model_outputs[name] = output
        step.setModelOutputs(model_outputs)
        model.addChildAlgorithm(step)
    return model


def main() -> int:
    from qgis.core import QgsApplication
    from qgis.PyQt.QtCore import QCoreApplication

    sys.path.insert(0, os.path.join(ROOT, "build", "qgis_plugins"))
    app = QgsApplication([], False)
    app.initQgis()
    sys.path.append(os.path.join(QgsApplication.pkgDataPath(), "python", "plugins"))
    from processing.core.Processing import Processing

    Processing.initialize()
    import balanced_sampling

    plugin = balanced_sampling.classFactory(None)
    if getattr(plugin, "translator", None) is not None:  # the file holds English, whatever this profile's locale
        QCoreApplication.removeTranslator(plugin.translator)
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
