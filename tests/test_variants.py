"""TinySD-depth, TinySD-inpaint and the depth estimator: load offline in diffusers' pipelines and do their job."""
import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, StableDiffusionDepth2ImgPipeline, StableDiffusionInpaintPipeline
from PIL import Image

from sdlearn import tinysd
from sdlearn.data import make_scene

DEPTH = tinysd.DEFAULT_FOLDER.parent / "tinysd-depth"
INPAINT = tinysd.DEFAULT_FOLDER.parent / "tinysd-inpaint"

pytestmark = pytest.mark.skipif(not (DEPTH / "model_index.json").exists() or not (INPAINT / "model_index.json").exists(),
                                reason="TinySD-depth / TinySD-inpaint are not trained and shipped yet (issue 4)")


def _scene(near_left: bool):
    return make_scene("red", "circle", depth=0.25 if near_left else 0.75, background="gray",
                      second={"colour": "blue", "shape": "square", "depth": 0.75 if near_left else 0.25},
                      relation="left of")


@pytest.fixture(scope="module")
def depth_pipe():
    p = StableDiffusionDepth2ImgPipeline.from_pretrained(DEPTH)
    p.scheduler = DDIMScheduler.from_config(p.scheduler.config, clip_sample=False)
    p.set_progress_bar_config(disable=True)
    return p


def _nearness_of(pipe, image, mask):
    pixel_values = pipe.feature_extractor(images=Image.fromarray(image), return_tensors="pt").pixel_values
    with torch.no_grad():
        d = pipe.depth_estimator(pixel_values).predicted_depth
    d = torch.nn.functional.interpolate(d[:, None], size=(64, 64), mode="area")[0, 0].numpy()
    return float(d[mask].mean())


def test_depth_estimator_puts_objects_in_front_of_the_background(depth_pipe):
    for near_left in (True, False):
        s = _scene(near_left)
        background = ~(s.masks[0] | s.masks[1])
        for m in s.masks:
            assert _nearness_of(depth_pipe, s.image, m) > _nearness_of(depth_pipe, s.image, background) + 0.1


# Known failure: the procedural world draws an object the same whatever its depth, so apart from occlusion
# nothing in a single image tells which of two separate objects is nearer; the estimator learned object vs
# background (r = 0.91) but orders two objects at chance (measured: 12 of 24 fixed scenes, 22 of 42 world scenes;
# 70% when they overlap). The fix is a depth cue in the world (size or height in the frame), then retraining.
@pytest.mark.xfail(strict=True, reason="the world has no monocular depth cue besides occlusion (see comment)")
def test_depth_estimator_orders_near_and_far(depth_pipe):
    for near_left in (True, False):  # the same two objects, once with the left one near, once the right one
        s = _scene(near_left)
        left, right = _nearness_of(depth_pipe, s.image, s.masks[0]), _nearness_of(depth_pipe, s.image, s.masks[1])
        assert (left > right) == near_left


def test_depth_to_image_follows_the_depth_ordering(depth_pipe):
    s = _scene(near_left=True)
    out = depth_pipe("a blue square to the left of a blue square", image=Image.fromarray(s.image), strength=1.0,
                     num_inference_steps=20, output_type="np", generator=torch.Generator().manual_seed(0)).images[0]
    out = (out * 255).round().astype(np.uint8)
    assert _nearness_of(depth_pipe, out, s.masks[0]) > _nearness_of(depth_pipe, out, s.masks[1])


def test_inpaint_pipeline_keeps_the_unmasked_region():
    p = StableDiffusionInpaintPipeline.from_pretrained(INPAINT)
    p.scheduler = DDIMScheduler.from_config(p.scheduler.config, clip_sample=False)
    p.set_progress_bar_config(disable=True)
    assert p.unet.config.in_channels == 9 and p.unet.dtype == torch.float32
    s = _scene(near_left=True)
    mask = np.zeros((64, 64), bool)
    mask[:, :32] = True
    # Like SD's inpainting model, TinySD-inpaint was trained on captions of the whole picture, so the prompt
    # describes the whole picture; with "a yellow triangle" alone it also paints the blue square away.
    out = p("a yellow triangle to the left of a blue square", image=Image.fromarray(s.image),
            mask_image=Image.fromarray(mask), height=64, width=64, num_inference_steps=20, output_type="np",
            generator=torch.Generator().manual_seed(0)).images[0]
    out = (out * 255).round().astype(np.uint8).astype(float)
    outside = np.abs(out - s.image)[~mask].mean()
    inside = np.abs(out - s.image)[mask].mean()
    square = s.masks[1] & ~mask
    assert outside < 15, outside
    assert np.abs(out[square] - s.image[square]).mean() < 40  # the blue square outside the mask survives
    assert inside > 2 * outside  # the masked half was repainted


def test_variants_share_parts_and_fit_the_budget():
    for folder in (DEPTH, INPAINT):
        for part in ("vae", "text_encoder", "tokenizer"):
            assert (folder / part).is_symlink()
    new = sum(p.stat().st_size for folder in (DEPTH, INPAINT) for p in folder.rglob("*.safetensors")
              if not any(part in p.parts for part in ("vae", "text_encoder", "tokenizer")))
    assert new <= 30 * 2**20
