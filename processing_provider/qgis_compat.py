"""Work-arounds for bugs of the QGIS versions the plugin supports, each applied only where the bug is."""

import inspect
import time


def give_batch_results_a_timestamp():
    """QGIS 3.22's batch dialog adds every HTML output of a run to the Results Viewer without the timestamp that
    ``ProcessingResults.addResult`` requires (``BatchAlgorithmDialog.loadHTMLResults``), so a batch of any
    algorithm with a report stops with a TypeError after writing its files: no summary, the Run button stays
    disabled. Give the timestamp a default (now). Returns the undo, or None where nothing needed it."""
    try:
        from processing.core.ProcessingResults import ProcessingResults
    except ImportError:  # no Processing plugin (a bare qgis_process has no batch dialog)
        return None
    original = ProcessingResults.addResult
    timestamp = inspect.signature(original).parameters.get("timestamp")
    if timestamp is None or timestamp.default is not inspect.Parameter.empty:
        return None

    def add_result(self, icon, name, timestamp=None, result=None):
        return original(self, icon, name, time.localtime() if timestamp is None else timestamp, result)

    ProcessingResults.addResult = add_result

    def undo():
        if ProcessingResults.addResult is add_result:
            ProcessingResults.addResult = original

    return undo
