"""The coreset budget: a fraction of the pool (``budget_mode: fraction``) or a number of patches (``count``)."""

from __future__ import annotations

import math

from ..contract import BUDGET_MODES
from ..errors import BalancedSamplingError
from ..i18n import _

DEFAULT_BUDGET = 0.5
DEFAULT_BUDGET_MODE = "fraction"


def check_budget(budget, budget_mode: str = DEFAULT_BUDGET_MODE) -> float:
    """``budget`` as a number, or a :class:`BalancedSamplingError` saying what is allowed.

    fraction: 0 < budget <= 1; count: a whole number >= 1.
    """
    if budget_mode not in BUDGET_MODES:
        raise BalancedSamplingError(_("Unknown budget mode {value}; choose one of {choices}.").format(
            value=repr(budget_mode), choices=", ".join(BUDGET_MODES)))
    try:
        value = float(budget)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(budget, bool) or not math.isfinite(value):
        raise BalancedSamplingError(_("The budget must be a number; got {value}.").format(value=repr(budget)))
    if budget_mode == "fraction" and not 0 < value <= 1:
        raise BalancedSamplingError(
            _("A budget in mode 'fraction' must lie in (0, 1]; got {value}. For a number of patches use budget "
              "mode 'count'.").format(value=budget))
    if budget_mode == "count" and (value < 1 or value != int(value)):
        raise BalancedSamplingError(
            _("A budget in mode 'count' must be a whole number of patches >= 1; got {value}.").format(value=budget))
    return value


def budget_size(budget, budget_mode: str, pool_size: int) -> int:
    """How many of ``pool_size`` patches the budget selects: round(fraction × pool), at least 1 (of a
    non-empty pool); a count larger than the pool selects the whole pool."""
    value = check_budget(budget, budget_mode)
    if pool_size <= 0:
        return 0
    if budget_mode == "fraction":
        return int(min(pool_size, max(1, math.floor(value * pool_size + 0.5))))
    return int(min(pool_size, value))
