"""Edges: the outline a ControlNet is conditioned on, read from a picture, and how well two outlines agree.

The ControlNet "canny" models of Stable Diffusion take white edges on black, as OpenCV's Canny detector
draws them. Here scikit-image's Canny does the same on each colour channel (two colours of the same
brightness still have an edge between them), and `edge_f1` scores a generated picture's edges against the
condition's, with a tolerance of a pixel or so, as edge detection benchmarks (BSDS) do.
"""
from __future__ import annotations

import numpy as np

from .images import to_uint8

__all__ = ["canny_edges", "edge_condition", "edge_f1", "dilate", "edges_of"]


def canny_edges(image, sigma: float = 1.0, low: float = 0.1, high: float = 0.2) -> np.ndarray:
    """Canny edges of a picture: (H, W) bool, the union of the edges of its three colour channels.

    Args:
        image: uint8 (H, W, 3), or float (H, W, 3) in [0, 1] (a pipeline's output).
        sigma: the Gaussian blur before the gradient, in pixels.
        low, high: Canny's hysteresis thresholds on the gradient of a [0, 1] channel.
    """
    # imported on use: scikit-image takes about a second to import, and only edge reading needs it here
    from skimage.feature import canny

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"canny_edges takes one RGB picture (H, W, 3), got shape {image.shape}.")
    channels = image.astype(np.float32) / 255 if image.dtype == np.uint8 else image.astype(np.float32)
    return np.any([canny(channels[..., c], sigma=sigma, low_threshold=low, high_threshold=high) for c in range(3)],
                  axis=0)


def edge_condition(edges: np.ndarray) -> np.ndarray:
    """(H, W) bool or [0, 1] edges -> the ControlNet's condition picture: (H, W, 3) uint8, white edges on black."""
    edges = np.asarray(edges, np.float32)
    if edges.ndim != 2:
        raise ValueError(f"edges must be one (H, W) map, got shape {edges.shape}.")
    return np.repeat(to_uint8(np.clip(edges, 0, 1))[..., None], 3, axis=-1)


def edges_of(condition) -> np.ndarray:
    """The edge pixels of a condition picture (white on black, (H, W, 3) or (H, W)): (H, W) bool, > half white."""
    c = np.asarray(condition)
    c = c.astype(np.float32) / 255 if c.dtype == np.uint8 else c.astype(np.float32)
    return (c.max(-1) if c.ndim == 3 else c) > 0.5


def dilate(mask: np.ndarray, radius: int = 1) -> np.ndarray:
    """Every pixel within `radius` pixels (a (2r+1)-square) of a True pixel of `mask` (H, W)."""
    out = np.zeros_like(mask, dtype=bool)
    h, w = mask.shape
    padded = np.pad(mask.astype(bool), radius)
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            out |= padded[dy : dy + h, dx : dx + w]
    return out


def edge_f1(target: np.ndarray, found: np.ndarray, tolerance: int = 1) -> tuple[float, float, float]:
    """How well `found` edges (H, W) bool match `target` edges, each pixel allowed `tolerance` pixels off.

    Precision: the share of found edge pixels within `tolerance` of a target edge; recall: the share of target
    edge pixels within `tolerance` of a found one; F1 their harmonic mean. Returns (precision, recall, f1);
    0 where a share has nothing to count (no found edges: precision 0).
    """
    target, found = np.asarray(target, bool), np.asarray(found, bool)
    if target.shape != found.shape or target.ndim != 2:
        raise ValueError(f"edge_f1 compares two (H, W) maps of one size, got {target.shape} and {found.shape}.")
    precision = float((found & dilate(target, tolerance)).sum() / max(found.sum(), 1))
    recall = float((target & dilate(found, tolerance)).sum() / max(target.sum(), 1))
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1
