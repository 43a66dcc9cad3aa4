"""Spatial diversity of a coreset, on footprint centroids (map units of the patch layer's CRS).

So that a coreset is not 40 adjacent patches of one town: either at most ``n`` selected patches per cell of
a square grid, or a minimum distance between selected centroids. Both are accept-or-refuse rules that the
selection steps (:func:`.scores.select_steps`) consult in pick order: a refused patch is skipped and the
next one tried. Pure numpy/Python; the QGIS side passes the centroids.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import BalancedSamplingError
from ..i18n import _


def _centroids(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise BalancedSamplingError(_("Spatial diversity needs one x and one y per patch."))
    return x, y


class GridCellLimit:
    """At most ``max_per_cell`` selected patches per cell of a grid of ``cell_size`` (cells anchored at 0, 0).
    A patch without a centroid (NaN) is never refused."""

    def __init__(self, x, y, cell_size: float, max_per_cell: int):
        self.x, self.y = _centroids(x, y)
        if not (cell_size > 0 and math.isfinite(cell_size)):
            raise BalancedSamplingError(_("The grid cell size must be a number > 0; got {value}.").format(
                value=cell_size))
        if int(max_per_cell) < 1:
            raise BalancedSamplingError(_("At most n patches per grid cell needs n >= 1; got {value}.").format(
                value=max_per_cell))
        self.cell_size, self.max_per_cell = float(cell_size), int(max_per_cell)
        self.counts: dict = {}

    def cell(self, row: int):
        x, y = self.x[row], self.y[row]
        if not (math.isfinite(x) and math.isfinite(y)):
            return None
        return (math.floor(x / self.cell_size), math.floor(y / self.cell_size))

    def describe(self) -> str:
        """The rule and how many cells hold patches, for the warning when it leaves the budget unmet."""
        cells = {self.cell(row) for row in range(len(self.x))} - {None}
        return _("at most {n} patches per grid cell of {size:g} map units: the patches lie in {cells} cells, so at "
                 "most {most} can be selected; use smaller cells or a larger n").format(
            n=self.max_per_cell, size=self.cell_size, cells=len(cells), most=len(cells) * self.max_per_cell)

    def try_add(self, row: int) -> bool:
        cell = self.cell(row)
        if cell is None:
            return True
        count = self.counts.get(cell, 0)
        if count >= self.max_per_cell:
            return False
        self.counts[cell] = count + 1
        return True


class MinDistance:
    """No two selected centroids closer than ``distance`` (a patch without a centroid is never refused).
    Neighbours are looked up in a hash grid of cell ``distance``: O(1) per try."""

    def __init__(self, x, y, distance: float):
        self.x, self.y = _centroids(x, y)
        if not (distance > 0 and math.isfinite(distance)):
            raise BalancedSamplingError(_("The minimum distance must be a number > 0; got {value}.").format(
                value=distance))
        self.distance = float(distance)
        self.cells: dict = {}

    def describe(self) -> str:
        """The rule, for the warning when it leaves the budget unmet."""
        return _("selected patches at least {distance:g} map units apart; use a smaller distance").format(
            distance=self.distance)

    def try_add(self, row: int) -> bool:
        x, y = float(self.x[row]), float(self.y[row])
        if not (math.isfinite(x) and math.isfinite(y)):
            return True
        cx, cy = math.floor(x / self.distance), math.floor(y / self.distance)
        limit = self.distance * self.distance
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for ox, oy in self.cells.get((cx + dx, cy + dy), ()):
                    if (ox - x) ** 2 + (oy - y) ** 2 < limit:
                        return False
        self.cells.setdefault((cx, cy), []).append((x, y))
        return True


def diversity_rule(x, y, *, cell_size: float = 0.0, max_per_cell: int = 0, min_distance: float = 0.0):
    """The rule the options ask for, or None: ``max_per_cell`` > 0 with ``cell_size`` > 0 gives
    :class:`GridCellLimit`, ``min_distance`` > 0 gives :class:`MinDistance`; both at once is an error."""
    grid = bool(max_per_cell and max_per_cell > 0)
    distance = bool(min_distance and min_distance > 0)
    if grid and distance:
        raise BalancedSamplingError(_("Choose one spatial diversity rule: at most n patches per grid cell, or a "
                                      "minimum distance, not both."))
    if grid:
        return GridCellLimit(x, y, cell_size, max_per_cell)
    if distance:
        return MinDistance(x, y, min_distance)
    return None
