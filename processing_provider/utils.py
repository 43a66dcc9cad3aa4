"""Small helpers shared by the algorithms: icons, engine progress, engine errors."""

import contextlib
import os

from qgis.core import QgsProcessingException
from qgis.PyQt.QtCore import QCoreApplication

from ..balanced_sampling_plugin.errors import BalancedSamplingError
from ..balanced_sampling_plugin.progress import Progress

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def icon_path(name: str) -> str:
    """Absolute path of an icon in ``resources/icons`` (icons load by path: no compiled resources)."""
    return os.path.join(PLUGIN_DIR, "resources", "icons", name)


def engine_progress(feedback) -> Progress:
    """Adapt a ``QgsProcessingFeedback`` (or None) to the engine's :class:`Progress`."""
    if feedback is None:
        return Progress()
    warn = getattr(feedback, "pushWarning", None) or (lambda message: feedback.reportError(message, False))
    return Progress(
        set_percent=feedback.setProgress,
        is_canceled=feedback.isCanceled,
        info=feedback.pushInfo,
        warning=warn,
    )


@contextlib.contextmanager
def engine_errors():
    """Turn engine errors (bad input, missing package, cancel) into ``QgsProcessingException``."""
    try:
        yield
    except BalancedSamplingError as exc:
        raise QgsProcessingException(str(exc)) from exc


def raise_if_canceled(feedback) -> None:
    """Stop a QGIS-side loop on cancel; raising (not breaking) means no partial output is kept."""
    if feedback is not None and feedback.isCanceled():
        raise QgsProcessingException(QCoreApplication.translate("utils", "Canceled by the user; nothing was written."))


def run_child(algorithm_id: str, parameters: dict, context, feedback) -> dict:
    """Run a Processing algorithm as one step of another and return its results.

    What ``processing.run(..., is_child_algorithm=True)`` does (parameters checked, the step's layers left
    in ``context`` for the next step) without its ``Results: {...}`` line, which put each step's raw
    result dictionary into the user's log."""
    from qgis.core import QgsApplication

    algorithm = QgsApplication.processingRegistry().createAlgorithmById(algorithm_id)
    if algorithm is None:
        raise QgsProcessingException(QCoreApplication.translate(
            "utils", "Algorithm {} is not registered.").format(algorithm_id))
    ok, message = algorithm.checkParameterValues(parameters, context)
    if not ok:
        raise QgsProcessingException(message)
    results, ok = algorithm.run(parameters, context, feedback, {}, False)
    if not ok:
        raise QgsProcessingException(QCoreApplication.translate(
            "utils", "{} did not finish.").format(algorithm.displayName()))
    return results
