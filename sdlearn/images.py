"""Images as the models see them, and back: the course's one place for pixel conversions.

Three ranges meet in Stable Diffusion code, and every module converts through the functions here:

- uint8 pictures (H, W, 3) or (B, H, W, 3), 0-255: what the world, the photos and the judge use;
- pixels, float tensors (B, 3, H, W) in [-1, 1]: what the VAE encodes and decodes (diffusers' convention);
- pipeline outputs, float arrays (B, H, W, 3) in [0, 1]: what diffusers returns with output_type="np".

`prepare_image`, `prepare_mask` and `prepare_condition` are the pipelines' step "preprocess the image / mask /
ControlNet condition" (as diffusers' `VaeImageProcessor`, `mask_processor` and `control_image_processor`), with
clear errors instead of silent resizing.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

__all__ = ["to_pixels", "from_pixels", "to_uint8", "to_pil", "prepare_image", "prepare_mask", "prepare_condition"]


def to_pixels(images) -> torch.Tensor:
    """uint8 images (B, H, W, 3) or one (H, W, 3) -> float tensor (B, 3, H, W) in [-1, 1]: x / 127.5 - 1.

    Args:
        images: a uint8 numpy array (or anything `np.asarray` turns into one).
    Returns:
        A float32 tensor (B, 3, H, W) in [-1, 1].
    """
    x = torch.as_tensor(np.asarray(images))
    if x.ndim == 3:
        x = x[None]
    return x.permute(0, 3, 1, 2).float() / 127.5 - 1


def from_pixels(x: torch.Tensor) -> np.ndarray:
    """The inverse of `to_pixels`: a tensor (B, 3, H, W) in [-1, 1] -> uint8 (B, H, W, 3), clipped to the range."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Pipeline output in [0, 1] (any shape) -> uint8, rounded: round(x * 255)."""
    return (np.asarray(images) * 255).round().astype(np.uint8)


def to_pil(images: np.ndarray) -> list[Image.Image]:
    """Pipeline output (B, H, W, 3) in [0, 1] -> a list of PIL images."""
    return [Image.fromarray(im) for im in to_uint8(images)]


def prepare_image(image, height: int | None = None, width: int | None = None, vae_scale_factor: int = 8) -> torch.Tensor:
    """A PIL image, uint8 array (H, W, C) or list of them -> float tensor (B, 3, H, W) in [-1, 1].

    RGBA and greyscale images are converted to RGB. The size must already be a multiple of
    the VAE factor (and equal height/width if given): we do not resize silently.

    Args:
        image: one image, a list of them, or a stacked uint8 batch (B, H, W, C).
        height, width: the size the caller expects, checked if given.
        vae_scale_factor: the VAE's downsampling factor; both sides must be multiples of it.
    Returns:
        A float32 tensor (B, 3, H, W) in [-1, 1].
    """
    if isinstance(image, np.ndarray) and image.ndim == 4:
        image = list(image)  # a stacked batch (B, H, W, C)
    images = image if isinstance(image, (list, tuple)) else [image]
    arrays = []
    for im in images:
        if isinstance(im, torch.Tensor):
            raise TypeError("pass images as PIL images or uint8 numpy arrays (H, W, 3), not tensors.")
        pil = im if isinstance(im, Image.Image) else Image.fromarray(np.asarray(im))
        arrays.append(np.asarray(pil.convert("RGB"), dtype=np.float32) / 255.0)
    h, w = arrays[0].shape[:2]
    if any(a.shape != arrays[0].shape for a in arrays):
        raise ValueError("all images in a batch must have the same size.")
    if (height or h) != h or (width or w) != w:
        raise ValueError(f"the image is {w}x{h} but height x width = {width}x{height}; resize the image first.")
    if h % vae_scale_factor or w % vae_scale_factor:
        raise ValueError(f"image size {w}x{h} is not a multiple of {vae_scale_factor}; resize or crop it first.")
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
    return 2.0 * x - 1.0


def prepare_mask(mask_image, height: int, width: int) -> torch.Tensor:
    """A mask (PIL, array, bool or 0-255) -> (B, 1, H, W) of 0 and 1, 1 = repaint. Converted to grey, binarised at 0.5.

    Args:
        mask_image: one mask or a list of them, white (or True) where the image is to be repainted.
        height, width: the image's size; the mask must match it.
    Returns:
        A float32 tensor (B, 1, H, W) of 0s and 1s.
    """
    masks = mask_image if isinstance(mask_image, (list, tuple)) else [mask_image]
    out = []
    for m in masks:
        arr = np.asarray(m)
        if arr.dtype == bool:
            arr = arr.astype(np.uint8) * 255
        pil = m if isinstance(m, Image.Image) else Image.fromarray(arr.astype(np.uint8))
        a = np.asarray(pil.convert("L"), dtype=np.float32) / 255.0
        if a.shape != (height, width):
            raise ValueError(f"the mask is {a.shape[1]}x{a.shape[0]} but the image is {width}x{height}; they must match.")
        out.append((a >= 0.5).astype(np.float32))
    return torch.from_numpy(np.stack(out))[:, None]


def prepare_condition(image, height: int, width: int) -> torch.Tensor:
    """A ControlNet's condition picture (white lines on black) -> float tensor (B, 3, H, W) in [0, 1].

    As diffusers' `control_image_processor`: converted to RGB, not normalised to [-1, 1]. Unlike it, never resized:
    the picture must be `height` x `width`. A picture that is mostly light (dark lines on white paper) is refused,
    because an edge ControlNet reads light pixels as lines.

    Args:
        image: a PIL image (any mode), a uint8 array (H, W) or (H, W, 3), a float array in [0, 1], or a list.
        height, width: the size of the images to generate.
    """
    if isinstance(image, np.ndarray) and image.ndim == 4:
        image = list(image)
    images = image if isinstance(image, (list, tuple)) else [image]
    arrays = []
    for im in images:
        if isinstance(im, torch.Tensor):
            raise TypeError("pass the outline as a PIL image or a numpy array (H, W) or (H, W, 3), not a tensor.")
        if not isinstance(im, Image.Image):
            a = np.asarray(im)
            if a.dtype != np.uint8:
                if not (np.issubdtype(a.dtype, np.floating) or a.dtype == bool) or a.min() < 0 or a.max() > 1:
                    raise ValueError("a float or bool outline must hold values in [0, 1]; a uint8 one 0-255.")
                a = to_uint8(a)
            if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (1, 3, 4)):
                raise ValueError(f"the outline must be (H, W) or (H, W, 3), got shape {a.shape}.")
            im = Image.fromarray(a[..., 0] if a.ndim == 3 and a.shape[-1] == 1 else a)
        arrays.append(np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0)
    for a in arrays:
        h, w = a.shape[:2]
        if (h, w) != (height, width):
            raise ValueError(f"the outline is {w}x{h} but the images will be {width}x{height}; resize it first "
                             f"(e.g. image.resize(({width}, {height}))) or pass height and width.")
        if a.mean() > 0.5:
            raise ValueError("the outline is mostly light: an edge ControlNet reads light pixels as lines, so give "
                             "white lines on black (invert a drawing on white paper: PIL.ImageOps.invert(image), "
                             "or 255 - array).")
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
