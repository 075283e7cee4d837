"""Small matplotlib helpers shared by the lessons: image rows and grids."""
from __future__ import annotations

import numpy as np

__all__ = ["show_images", "to_display"]


def to_display(image) -> np.ndarray:
    """Anything image-like -> (H, W, 3) uint8 or (H, W) float for imshow.

    Accepts uint8 arrays, PIL images, and float tensors/arrays in [-1, 1] laid out as
    (3, H, W) or (H, W, 3).
    """
    if hasattr(image, "detach"):
        image = image.detach().cpu().numpy()
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    if image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3):
        image = image.transpose(1, 2, 0)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        return image.astype(np.float32)
    return ((np.clip(image, -1, 1) + 1) * 127.5).round().astype(np.uint8)


def show_images(images, titles=None, ncols: int | None = None, size: float = 1.6, cmap="gray", suptitle=None):
    """Draw images in a grid with optional titles; returns the matplotlib figure."""
    import matplotlib.pyplot as plt

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
