"""Exceptions raised by the engine.

Every message names the patch, field or file at fault and says what to do, so the
QGIS side can show it as is (it wraps them in ``QgsProcessingException``).
"""


class BalancedSamplingError(ValueError):
    """Bad input or a state the engine cannot work from."""


class MissingDependencyError(BalancedSamplingError):
    """An optional package needed by the chosen option is not installed."""


class OperationCanceled(BalancedSamplingError):
    """The user cancelled; outputs were not written."""


def require(module_name: str, purpose: str, pip_name: str | None = None):
    """Import ``module_name`` lazily, or raise a :class:`MissingDependencyError` that says how to install it."""
    import importlib

    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise MissingDependencyError(
            f"The Python package '{pip_name or module_name}' is needed for {purpose} but could not be "
            f"imported ({exc}). Install it into the Python that QGIS uses, e.g. "
            f"`python3 -m pip install {pip_name or module_name}`."
        ) from exc
