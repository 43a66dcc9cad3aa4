"""Sampler weights: per-patch signals -> one ``sampler_weight`` per patch.

methods    the combination methods and their shared rules (ranks, floor, normalisation)
published  the published class-rebalancing samplers (repeat factor, rare-class sampling)
targets    weights that reach requested class shares at the largest effective sample size
"""

from .methods import (  # noqa: F401  (the package's public names)
    COMPOSITION_ALGORITHM,
    DEFAULT_FLOOR,
    LOW_ESS_RATIO,
    METHOD_DESCRIPTIONS,
    RANK_METHODS,
    TARGET_METHODS,
    SAMPLING_METHODS,
    UNIQUENESS_ALGORITHM,
    WeightResult,
    apply_floor,
    available_methods,
    class_balanced_weights,
    combine_weights,
    compare_methods,
    effective_sample_size,
    expected_class_shares,
    included_mask,
    low_ess_warning,
    method_signals,
    percentile_rank,
    rare_class_boost,
    rare_class_mask,
    valid_pixel_counts,
)
