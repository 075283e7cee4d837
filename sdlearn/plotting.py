"""Small matplotlib helpers shared by the lessons: image rows and grids."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from .images import from_pixels, to_uint8

__all__ = ["show_images", "to_display"]


def to_display(image) -> np.ndarray:
    """Anything image-like -> (H, W, 3) uint8 or (H, W) float for imshow.

    Conventions: uint8 arrays and PIL images are shown as they are; torch tensors and
    channel-first arrays (3, H, W) are model-space images in [-1, 1]; channel-last float
    arrays (H, W, 3) are pipeline outputs in [0, 1] (like diffusers' output_type="np").
    """
    is_tensor = hasattr(image, "detach")
    if is_tensor:
        image = image.detach().cpu().numpy()
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    channel_first = image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3)
    if channel_first:
        image = image.transpose(1, 2, 0)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        return image.astype(np.float32)
    if is_tensor or channel_first:
        return from_pixels(torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].float())[0]
    return to_uint8(np.clip(image, 0, 1))


def show_images(images, titles=None, ncols: int | None = None, size: float = 1.6, cmap="gray", suptitle=None):
    """Draw images in a grid with optional titles; returns the matplotlib figure."""
    images = list(images)
    n = len(images)
    ncols = ncols or n
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.3 if titles else 0)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, img in enumerate(images):
        ax = axes.flat[i]
        ax.imshow(to_display(img), cmap=cmap, interpolation="nearest")
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig
