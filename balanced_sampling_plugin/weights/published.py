"""The published class-rebalancing samplers, as patch weights for ``WeightedRandomSampler``.

A patch "contains" class c when it holds at least ``min_pixels`` valid pixels of it
(``p_ic * v_i >= min_pixels``, p: (n, C) class shares among valid pixels, v: (n,) valid pixels).

repeat_factor
    LVIS (Gupta et al., CVPR 2019), detectron2's ``RepeatFactorTrainingSampler``, mmengine's
    ``ClassBalancedDataset``: ``f_c`` = fraction of patches containing c,
    ``r_c = max(1, sqrt(t / f_c))``, a patch's weight is the largest ``r_c`` of the classes it
    contains (1 when it contains none).
rare_class_sampling
    DAFormer (Hoyer et al., CVPR 2022): a class is drawn with ``P(c) = softmax((1 - f_c) / T)``
    (``f_c`` = pixel frequency), then a patch uniformly among the ``n_c`` patches containing c.
    As weights, ``w_i = sum_c P(c) [i contains c] / n_c``, which draws exactly that distribution.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..i18n import _

#: DAFormer keeps a class in a crop from 3000 of its pixels on 512 x 512 crops.
DAFORMER_MIN_PIXELS, DAFORMER_CROP = 3000, 512
#: DAFormer's temperature of the class softmax.
DEFAULT_TEMPERATURE = 0.01


def default_min_pixels(patch_size: float) -> float:
    """DAFormer's 3000 px on 512 px crops, scaled by patch area: 750 px for 256 px patches."""
    return DAFORMER_MIN_PIXELS * (float(patch_size) / DAFORMER_CROP) ** 2


def contains_classes(proportions, valid_pixels, min_pixels: float) -> np.ndarray:
    """(n, C) bool: patch i holds at least ``min_pixels`` (> 0) valid pixels of class c."""
    p = np.nan_to_num(np.asarray(proportions, dtype=float))
    pixels = p * np.asarray(valid_pixels, dtype=float)[:, None]
    return (pixels >= max(float(min_pixels), 1e-12)) & (p > 0)


def repeat_factor_weights(proportions, valid_pixels, min_pixels: float, threshold: Optional[float] = None):
    """LVIS repeat factors, (n,) float >= 1, and the threshold used.

    ``threshold`` None = the median ``f_c`` of the classes some patch contains (super-gradients'
    choice for datasets with a handful of classes; detectron2 ships 0.001 for LVIS's 1203).
    """
    contains = contains_classes(proportions, valid_pixels, min_pixels)
    fraction = contains.mean(axis=0)
    seen = fraction > 0
    if threshold is None:
        threshold = float(np.median(fraction[seen])) if seen.any() else 1.0
    factors = np.ones(fraction.shape)
    factors[seen] = np.maximum(1.0, np.sqrt(threshold / fraction[seen]))
    weights = np.where(contains, factors, 1.0).max(axis=1, initial=1.0)
    return weights, threshold


def rare_class_sampling_weights(proportions, valid_pixels, min_pixels: float,
                                temperature: float = DEFAULT_TEMPERATURE):
    """DAFormer's rare-class sampling as (n,) weights (sum 1 over patches), and P(c) (C,).

    Classes no patch contains get P(c) = 0 (the softmax runs over the others); patches that
    contain no class get 0 (the caller's floor keeps them drawable).
    """
    p = np.nan_to_num(np.asarray(proportions, dtype=float))
    v = np.asarray(valid_pixels, dtype=float)
    contains = contains_classes(p, v, min_pixels)
    counts = contains.sum(axis=0)
    frequency = v @ p / v.sum()
    logits = np.where(counts > 0, (1.0 - frequency) / temperature, -np.inf)
    logits -= logits[np.isfinite(logits)].max()
    probability = np.exp(logits)
    probability /= probability.sum()
    per_patch = np.divide(probability, counts, out=np.zeros_like(probability), where=counts > 0)
    return contains @ per_patch, probability


def describe_threshold(threshold: float, given: bool) -> str:
    """The note the weights carry about the repeat-factor threshold (translated)."""
    if given:
        return _("Repeat-factor threshold t = {t:.4g}.").format(t=threshold)
    return _("Repeat-factor threshold t = {t:.4g}: the median fraction of patches containing a class (with a handful "
             "of classes, LVIS's 0.001 would repeat nothing).").format(t=threshold)
