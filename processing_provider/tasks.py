"""Running an algorithm as a background QgsTask, with its output layer added and styled on success."""

from qgis.core import (
    QgsApplication,
    QgsProcessingAlgRunnerTask,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProject,
    QgsVectorLayer,
)

from ..balanced_sampling_plugin.contract import SAMPLER_WEIGHT
from .styles import GraduatedStyle


class AlgorithmTask:
    """One background run: a ``QgsProcessingAlgRunnerTask`` plus what happens when it ends.

    QGIS prepares the algorithm in the main thread, runs it in a worker thread and calls
    ``executed`` back in the main thread, where the layer is added (nothing touches the
    project or the GUI from the worker). ``cancel()`` cancels the feedback, which the
    engine checks between batches (mask chunks, embedding batches, kNN query batches).
    """

    def __init__(self, algorithm_id: str, parameters: dict, project=None, on_finished=None,
                 layer_name: str = "Sampler weights"):
        registry = QgsApplication.processingRegistry()
        algorithm = registry.createAlgorithmById(algorithm_id)
        if algorithm is None:
            raise ValueError(f"No algorithm {algorithm_id}; is the Balanced Sampling plugin enabled?")
        self.project = project or QgsProject.instance()
        self.context = QgsProcessingContext()
        self.context.setProject(self.project)
        self.feedback = QgsProcessingFeedback()
        self.layer_name = layer_name
        self.on_finished = on_finished
        self.succeeded = None
        self.results = {}
        self.layer = None
        self.task = QgsProcessingAlgRunnerTask(algorithm, parameters, self.context, self.feedback)
        self.task.executed.connect(self._executed)

    def start(self) -> "AlgorithmTask":
        QgsApplication.taskManager().addTask(self.task)
        return self

    def cancel(self) -> None:
        self.task.cancel()

    def _executed(self, successful: bool, results: dict) -> None:
        self.succeeded, self.results = successful, dict(results or {})
        output = self.results.get("OUTPUT")
        if successful and isinstance(output, str):
            layer = QgsVectorLayer(output, self.layer_name, "ogr")
            if layer.isValid():
                if layer.fields().indexOf(SAMPLER_WEIGHT) >= 0:
                    GraduatedStyle(SAMPLER_WEIGHT).postProcessLayer(layer, self.context, self.feedback)
                self.project.addMapLayer(layer)
                self.layer = layer
        if self.on_finished is not None:
            self.on_finished(self)
