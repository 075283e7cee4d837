"""Real photos without downloads: the sample images that scikit-image ships inside its wheel.

Used to show what the models do on pictures unlike anything they were trained on (a cat
through a VAE that only ever saw flat shapes), and, for the motorcycle stereo pair, to
compare an estimated depth map with a measured disparity map.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["PHOTOS", "load_photo", "load_motorcycle"]

PHOTOS = ("chelsea", "astronaut", "coffee", "hubble_deep_field", "motorcycle")


def _to_size(image: np.ndarray, size: int | None) -> np.ndarray:
    """Centre-crop to a square and resize with bicubic filtering; None keeps the original."""
    if size is None:
        return image
    h, w = image.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    crop = image[top : top + s, left : left + s]
    return np.asarray(Image.fromarray(crop).resize((size, size), Image.BICUBIC))


def load_photo(name: str = "chelsea", size: int | None = 64) -> np.ndarray:
    """One bundled photo as (H, W, 3) uint8 RGB, centre-cropped and resized to size x size.

    Args:
        name: one of PHOTOS ("motorcycle" is the left view of the stereo pair).
        size: output side in pixels, or None for the original resolution and aspect.
    """
    import skimage.data  # imported on use: skimage takes about a second to import, and only the photos need it

    if name not in PHOTOS:
        raise ValueError(f"Unknown photo {name!r}; choose one of {PHOTOS}.")
    if name == "motorcycle":
        image = skimage.data.stereo_motorcycle()[0]
    else:
        image = getattr(skimage.data, name)()
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return _to_size(np.ascontiguousarray(image[..., :3]), size)


def load_motorcycle(size: int | None = 64) -> tuple[np.ndarray, np.ndarray]:
    """The left motorcycle view and its measured disparity map (larger = nearer).

    The disparity map comes from the Middlebury stereo data set; pixels without a
    measurement are NaN.
    """
    import skimage.data  # imported on use: skimage takes about a second to import, and only the photos need it

    left, _, disparity = skimage.data.stereo_motorcycle()
    disparity = disparity.astype(np.float32)
    disparity[~np.isfinite(disparity)] = np.nan
    if size is None:
        return left, disparity
    h, w = disparity.shape
    s = min(h, w)
    top, lft = (h - s) // 2, (w - s) // 2
    crop = disparity[top : top + s, lft : lft + s]
    # average over valid pixels only, block by block
    valid = np.isfinite(crop)
    filled = np.where(valid, crop, 0).astype(np.float32)
    num = np.asarray(Image.fromarray(filled).resize((size, size), Image.BOX))
    den = np.asarray(Image.fromarray(valid.astype(np.float32)).resize((size, size), Image.BOX))
    small = np.where(den > 0.5, num / np.maximum(den, 1e-6), np.nan).astype(np.float32)
    return _to_size(left, size), small
