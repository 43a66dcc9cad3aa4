"""Randomly initialised DINOv2 models saved like real ones, for offline demos and benchmarks.

No model hub is reachable on air-gapped servers or in CI. A random network with the
real architecture has the real cost (FLOPs, memory), so it is what benchmarks time,
and it lets the demo run the whole chain; its embeddings are random projections of
the image, not semantic features, so say so wherever it is used.
"""

from __future__ import annotations

import os

#: name -> (hidden size, layers, heads, input size); "small"/"base"/"large" match facebook/dinov2-*.
ARCHITECTURES = {
    "tiny": (32, 2, 2, 56),
    "small": (384, 12, 6, 224),
    "base": (768, 12, 12, 224),
    "large": (1024, 24, 16, 224),
}


def build_random_dinov2(folder, architecture: str = "tiny", seed: int = 0) -> str:
    """Save a random DINOv2 of ``architecture`` + its ``BitImageProcessor`` into ``folder`` (once).

    Returns the folder, loadable with ``AutoModel``/``AutoImageProcessor.from_pretrained``.
    """
    import torch
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    folder = os.fspath(folder)
    if os.path.isfile(os.path.join(folder, "config.json")):
        return folder
    hidden, layers, heads, size = ARCHITECTURES[architecture]
    config = Dinov2Config(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                          intermediate_size=4 * hidden if architecture != "tiny" else 64,
                          patch_size=14, image_size=518 if architecture != "tiny" else size)
    torch.manual_seed(seed)
    Dinov2Model(config).save_pretrained(folder)
    BitImageProcessor(
        do_resize=True, size={"shortest_edge": size if architecture == "tiny" else 256},
        do_center_crop=True, crop_size={"height": size, "width": size},
        do_normalize=True, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
        do_convert_rgb=True,
    ).save_pretrained(folder)
    return folder
