"""Progress, cancel and log plumbing between the engine and whoever runs it.

The engine reports through a :class:`Progress`; QGIS adapts its
``QgsProcessingFeedback`` to it, scripts use the silent default. A long loop calls
:meth:`Progress.update` once per batch, which also raises
:class:`~balanced_sampling_plugin.errors.OperationCanceled` when the user cancelled.
"""

from __future__ import annotations

from typing import Callable, Optional

from .errors import OperationCanceled
from .i18n import _


class Progress:
    """Maps a stage's own 0..1 progress onto a slice [start, end] of the 0..100 bar.

    Parameters
    ----------
    set_percent : callable(float) or None
        Receives the overall percentage (0..100).
    is_canceled : callable() -> bool, or None
    info, warning : callable(str) or None
        Log sinks (QGIS: ``pushInfo`` / ``reportError(..., fatalError=False)``).
    start, end : float
        The slice of the overall bar this reporter owns, in percent.
    """

    def __init__(
        self,
        set_percent: Optional[Callable[[float], None]] = None,
        is_canceled: Optional[Callable[[], bool]] = None,
        info: Optional[Callable[[str], None]] = None,
        warning: Optional[Callable[[str], None]] = None,
        start: float = 0.0,
        end: float = 100.0,
    ):
        self._set_percent = set_percent
        self._is_canceled = is_canceled
        self._info = info
        self._warning = warning
        self.start = float(start)
        self.end = float(end)
        self.warnings: list[str] = []

    def child(self, start_fraction: float, end_fraction: float) -> "Progress":
        """A reporter for a sub-stage owning ``[start_fraction, end_fraction]`` of this one's slice."""
        span = self.end - self.start
        sub = Progress(
            self._set_percent,
            self._is_canceled,
            self._info,
            self._warning,
            self.start + span * start_fraction,
            self.start + span * end_fraction,
        )
        sub.warnings = self.warnings  # one shared list, so callers see all warnings
        return sub

    def canceled(self) -> bool:
        return bool(self._is_canceled and self._is_canceled())

    def check_canceled(self) -> None:
        if self.canceled():
            raise OperationCanceled(_("Canceled by the user; nothing was written."))

    def update(self, done: float, total: float, check_cancel: bool = True) -> None:
        """Report ``done`` of ``total`` units and raise if the user cancelled (unless ``check_cancel`` is
        False: after a point of no return, a cancel must not claim that nothing was written)."""
        if check_cancel:
            self.check_canceled()
        if self._set_percent is not None and total > 0:
            fraction = min(max(done / total, 0.0), 1.0)
            self._set_percent(self.start + (self.end - self.start) * fraction)

    def info(self, message: str) -> None:
        if self._info is not None:
            self._info(message)

    def warning(self, message: str) -> None:
        self.warnings.append(message)
        if self._warning is not None:
            self._warning(message)


def as_progress(progress: Optional[Progress]) -> Progress:
    """The given reporter, or a silent one."""
    return progress if progress is not None else Progress()
