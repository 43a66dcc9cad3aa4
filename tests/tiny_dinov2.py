"""A tiny, randomly initialised DINOv2 saved like a real one, for offline tests.

No model hub is reachable in CI; this builds the same folder layout that
``AutoModel.from_pretrained(...).save_pretrained(folder)`` produces for
``facebook/dinov2-*`` (config, safetensors weights, image-processor config),
only with a 32-wide, 2-layer network on 56 px inputs. Engine and QGIS tests share it.
"""

from __future__ import annotations

import os

IMAGE_SIZE = 56
HIDDEN_SIZE = 32


def build_tiny_dinov2(folder, seed: int = 0) -> str:
    """Create (once) a tiny DINOv2 model + ``BitImageProcessor`` in ``folder``; return the folder path.

    ``seed`` fixes the random weights: the same seed gives the same model.
    """
    import torch
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    folder = os.fspath(folder)
    if os.path.isfile(os.path.join(folder, "config.json")):
        return folder
    config = Dinov2Config(
        hidden_size=HIDDEN_SIZE,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        patch_size=14,
        image_size=IMAGE_SIZE,
    )
    torch.manual_seed(seed)
    Dinov2Model(config).save_pretrained(folder)
    processor = BitImageProcessor(
        do_resize=True,
        size={"shortest_edge": IMAGE_SIZE},
        do_center_crop=True,
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        do_normalize=True,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
        do_convert_rgb=True,
    )
    processor.save_pretrained(folder)
    return folder
