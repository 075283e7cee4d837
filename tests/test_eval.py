"""The eval's VAE shape check, on stand-in VAEs whose effect on the pixels is known."""
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from sdlearn.eval import vae_shape_kept


class _StandInVAE:
    """encode/decode with the diffusers interface; `blur` averages over blur x blur blocks."""

    dtype = torch.float32
    config = SimpleNamespace(block_out_channels=(8, 8, 8, 8), scaling_factor=1.0)

    def __init__(self, blur: int = 1):
        self.blur = blur

    def encode(self, x):
        return SimpleNamespace(latent_dist=SimpleNamespace(mode=lambda: x))

    def decode(self, z):
        if self.blur > 1:
            z = F.interpolate(F.avg_pool2d(z, self.blur), scale_factor=self.blur, mode="bilinear")
        return SimpleNamespace(sample=z)


def test_a_lossless_round_trip_keeps_every_shape():
    assert vae_shape_kept(_StandInVAE(), n=100) == {"all": 1.0, "small": 1.0}


def test_a_blurry_round_trip_loses_small_shapes_first():
    kept = vae_shape_kept(_StandInVAE(blur=8), n=100)
    assert kept["small"] < 0.7
    assert kept["small"] < kept["all"]
