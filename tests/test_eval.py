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


def test_inpaint_case_holes_cover_the_object_and_ask_for_something_else():
    import dataclasses

    import numpy as np
    import pytest

    from sdlearn.data import World
    from sdlearn.eval import inpaint_case

    world = World(seed=6262, split="all")
    asked = set()
    for i in range(10):
        s = world[i]
        hole, colour, shape = inpaint_case(s, i)
        assert hole[s.masks[0]].all() and hole.sum() > s.masks[0].sum()  # the object, grown by a margin
        assert colour != s.objects[0].colour and shape != s.objects[0].shape
        asked.add((colour, shape))
    assert len(asked) > 3  # requests vary across scenes
    hidden = dataclasses.replace(s, masks=np.zeros_like(s.masks))
    with pytest.raises(ValueError, match="first object is visible"):
        inpaint_case(hidden, 0)


def test_latent_cells_marks_every_cell_a_mask_touches():
    import numpy as np
    import pytest

    from sdlearn.eval import latent_cells

    hole = np.zeros((64, 64), bool)
    hole[7:9, 16:17] = True  # straddles rows 0 and 1 of cells, inside column 2
    cells = latent_cells(hole)
    assert cells.shape == (8, 8) and cells.sum() == 2 and cells[0, 2] and cells[1, 2]
    with pytest.raises(ValueError, match="multiples"):
        latent_cells(np.zeros((60, 64), bool))
