"""TinySD-depth, TinySD-inpaint and the depth estimator: load offline in diffusers' pipelines and do their job."""
import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, StableDiffusionDepth2ImgPipeline, StableDiffusionInpaintPipeline
from PIL import Image

from sdlearn import tinysd
from sdlearn.data import make_scene
from sdlearn.images import to_uint8

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


# The world draws nearer objects larger (perspective, `sdlearn.data.world.perspective`), the one cue besides
# occlusion that says which of two separate shapes is nearer. Before it had that cue, the estimator ordered two
# objects at chance. Fixed scenes: several colour / shape / relation / background pairs, each drawn both ways round.
_PAIRS = [(dict(colour="red", shape="circle", background="gray"), dict(colour="blue", shape="square"), "left of"),
          (dict(colour="yellow", shape="square", background="black"), dict(colour="green", shape="circle"), "above"),
          (dict(colour="purple", shape="triangle", background="white"), dict(colour="orange", shape="triangle"), "left of"),
          (dict(colour="green", shape="square", background="white", size="small"),
           dict(colour="red", shape="square", size="small"), "above")]


def test_depth_estimator_orders_near_and_far(depth_pipe):
    results = []
    for first, second, relation in _PAIRS:
        for first_near in (True, False):  # the same two objects, once with the first one near, once the second one
            near, far = (0.25, 0.75) if first_near else (0.75, 0.25)
            s = make_scene(**first, depth=near, second=dict(second, depth=far), relation=relation)
            a, b = _nearness_of(depth_pipe, s.image, s.masks[0]), _nearness_of(depth_pipe, s.image, s.masks[1])
            results.append(((a > b) == first_near, first["colour"], second["colour"], first_near))
    misses = [r[1:] for r in results if not r[0]]
    # Measured with the shipped estimator: 7 of 8 (it misses the two triangles on white with the purple one far);
    # 72% of two-object world scenes (python -m sdlearn.eval --variants). Before the world had perspective: chance.
    assert len(misses) <= 1, misses


def test_depth_to_image_follows_the_depth_ordering(depth_pipe):
    s = _scene(near_left=True)
    out = depth_pipe("a blue square to the left of a blue square", image=Image.fromarray(s.image), strength=1.0,
                     num_inference_steps=20, output_type="np", generator=torch.Generator().manual_seed(0)).images[0]
    out = to_uint8(out)
    assert _nearness_of(depth_pipe, out, s.masks[0]) > _nearness_of(depth_pipe, out, s.masks[1])


@pytest.mark.xfail(strict=True, reason="known weakness of TinySD-inpaint since v0.4: at guidance 7.5 it repaints the "
                   "outside (mean abs. difference 12.6 / 255 over 200 scenes in v1.0, 10.7 in v0.9, 14.0 in v0.6, "
                   "17-18 in v0.4-v0.5, 8-9.5 in v0.3); see its model card")
def test_inpaint_pipeline_keeps_the_unmasked_region():
    p = StableDiffusionInpaintPipeline.from_pretrained(INPAINT)
    p.scheduler = DDIMScheduler.from_config(p.scheduler.config, clip_sample=False)
    p.set_progress_bar_config(disable=True)
    assert p.unet.config.in_channels == 9 and p.unet.dtype == torch.float32
    s = _scene(near_left=True)
    mask = np.zeros((64, 64), bool)
    mask[:, :32] = True
    # Like SD's inpainting model, TinySD-inpaint was trained mostly on captions of the whole picture, so the
    # prompt describes the whole picture.
    out = p("a yellow triangle to the left of a blue square", image=Image.fromarray(s.image),
            mask_image=Image.fromarray(mask), height=64, width=64, num_inference_steps=20, output_type="np",
            generator=torch.Generator().manual_seed(0)).images[0]
    out = to_uint8(out).astype(float)
    outside = np.abs(out - s.image)[~mask].mean()
    inside = np.abs(out - s.image)[mask].mean()
    square = s.masks[1] & ~mask
    assert outside < 15, outside
    assert np.abs(out[square] - s.image[square]).mean() < 40  # the blue square outside the mask survives
    assert inside > 2 * outside  # the masked half was repainted


def test_variants_share_parts_and_fit_the_budget():
    for folder in (DEPTH, INPAINT):
        for part in ("vae", "tokenizer"):
            assert (folder / part).is_symlink()
        # the text encoder is shared too, or (while a variant still holds an older TinySD's U-Net) a copy of the
        # text encoder that U-Net was trained on
        own = sum(p.stat().st_size for p in folder.rglob("*.safetensors")
                  if not any((folder / part).is_symlink() and part in p.parts for part in ("vae", "text_encoder",
                                                                                         "tokenizer")))
        assert own <= 30 * 2**20, (folder, own)
