"""The advanced ``DASK_SCHEDULER`` parameter of the heavy algorithms: where the mask reads and the DINOv2
embeddings run.

Empty: in the QGIS process (threads, as always); ``local:N``: a Dask LocalCluster of N worker processes
started for the run and closed after it; otherwise a scheduler address such as ``tcp://host:8786`` (the
workers must reach the rasters by the same paths). ``dask`` and ``distributed`` are needed only then.
"""

from qgis.core import QgsProcessingParameterDefinition, QgsProcessingParameterString
from qgis.PyQt.QtCore import QCoreApplication

from ..balanced_sampling_plugin.dependencies import SCALE_OUT, missing_packages
from .python_packages import install_line

DASK_SCHEDULER = "DASK_SCHEDULER"
#: What a Dask run needs (import names = pip names).
DASK_MODULES = SCALE_OUT


def tr(text: str) -> str:
    return QCoreApplication.translate("DaskScheduler", text)


def dask_scheduler_parameter() -> QgsProcessingParameterString:
    """The advanced, optional string parameter (empty by default)."""
    parameter = QgsProcessingParameterString(DASK_SCHEDULER, tr("Dask scheduler"), defaultValue="", optional=True)
    parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
    parameter.setHelp(tr("Empty: run in this process. local:N: a Dask cluster of N worker processes on this "
                         "machine. Otherwise the address of a Dask scheduler, e.g. tcp://host:8786."))
    return parameter


def scheduler_text(algorithm, parameters, context) -> str:
    """The scheduler the user gave ('' = in-process)."""
    return (algorithm.parameterAsString(parameters, DASK_SCHEDULER, context) or "").strip()


def scheduler_problem(algorithm, parameters, context):
    """None, or why the scheduler cannot be used: text the engine does not understand, or dask missing."""
    text = scheduler_text(algorithm, parameters, context)
    if not text:
        return None
    from ..balanced_sampling_plugin.compute import parse_spec
    from ..balanced_sampling_plugin.errors import BalancedSamplingError

    try:
        parse_spec(text)
    except BalancedSamplingError as exc:
        return str(exc)
    missing = missing_packages(DASK_MODULES)
    if missing:
        return tr("The Dask scheduler '{}' needs the Python packages {}, which the Python of this QGIS cannot "
                  "import. Install them with Plugins > Balanced Sampling > Install Python packages… (tick Also "
                  "install Dask), or in a terminal:\n{}\nthen restart QGIS; or leave the Dask scheduler empty "
                  "to run in this process.").format(text, ", ".join(missing), install_line(missing))
    return None
