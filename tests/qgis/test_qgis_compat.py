"""Work-arounds for QGIS bugs: applied where the bug is, undone on unload."""

import inspect

import pytest

pytest.importorskip("processing")


def test_a_batch_of_an_algorithm_with_a_report_adds_its_results(plugin, tmp_path):
    """QGIS 3.22's BatchAlgorithmDialog.loadHTMLResults, the real function, on Combine's results: it raised TypeError
    (addResult's timestamp), which stopped every batch of Combine, Build and Select coreset before its summary."""
    from processing.core.ProcessingResults import ProcessingResults, resultsList
    from processing.gui.BatchAlgorithmDialog import BatchAlgorithmDialog
    from qgis.core import QgsApplication

    from processing_provider.qgis_compat import give_batch_results_a_timestamp

    algorithm = QgsApplication.processingRegistry().algorithmById("balanced_sampling:combinesamplerweights")
    report = str(tmp_path / "report.html")

    class Dialog:  # what loadHTMLResults reads of its dialog
        def algorithm(self):
            return algorithm

    original = ProcessingResults.addResult
    buggy = inspect.signature(original).parameters["timestamp"].default is inspect.Parameter.empty
    if buggy:
        with pytest.raises(TypeError, match="timestamp"):
            BatchAlgorithmDialog.loadHTMLResults(Dialog(), {"OUTPUT_REPORT": report}, 1)
    undo = give_batch_results_a_timestamp()
    assert (undo is not None) == buggy
    try:
        before = len(resultsList.getResults())
        BatchAlgorithmDialog.loadHTMLResults(Dialog(), {"OUTPUT_REPORT": report}, 2)
        added = resultsList.getResults()[before:]
        assert [(r.name, r.filename) for r in added] == [("Report [2]", report)]
        assert added[0].timestamp is not None
    finally:
        if undo is not None:
            undo()
    assert ProcessingResults.addResult is original
