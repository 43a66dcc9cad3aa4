"""Exceptions raised by the engine.

Every message names the patch, field or file at fault and says what to do, so the
QGIS side can show it as is (it wraps them in ``QgsProcessingException``).
"""

from .i18n import _


class BalancedSamplingError(ValueError):
    """Bad input or a state the engine cannot work from."""


class MissingDependencyError(BalancedSamplingError):
    """An optional package needed by the chosen option is not installed."""


class OperationCanceled(BalancedSamplingError):
    """The user cancelled; outputs were not written."""


def require(module_name: str, purpose: str, pip_name: str | None = None):
    """Import ``module_name`` lazily, or raise a :class:`MissingDependencyError` that says how to install it.

    ``purpose`` is already translated, e.g. ``_("DINOv2 embeddings")``."""
    import importlib

    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise MissingDependencyError(
            _("The Python package '{package}' is needed for {purpose} but could not be imported ({error}). "
              "Install it into the Python that QGIS uses, e.g. `python3 -m pip install {package}`.").format(
                package=pip_name or module_name, purpose=purpose, error=exc)
        ) from exc


def error_chain(exc: BaseException) -> str:
    """The message of ``exc`` and of the exceptions it was raised from, joined with ': ', without repeats.

    GDAL's reason (``No such file or directory``, ``TIFFReadEncodedStrip: Read error ...``) is the cause of
    rasterio's ``Read failed. See previous exception for details.``, which alone tells the user nothing."""
    messages, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        text = str(exc).replace("See previous exception for details.", "").strip().rstrip(".")
        if text and not any(text in earlier for earlier in messages):  # GDAL repeats a cause in its summary
            messages.append(text)
        exc = exc.__cause__ or exc.__context__
    return ": ".join(messages)
