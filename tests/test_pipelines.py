"""The hand-built pipelines produce the same images as diffusers' pipelines (max abs difference <= 1e-4)."""
import numpy as np
import pytest
import torch
from diffusers.image_processor import VaeImageProcessor
from diffusers import (StableDiffusionDepth2ImgPipeline, StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline,
                       StableDiffusionPipeline)
from PIL import Image

import sdlearn
from sdlearn import pipelines
from sdlearn.images import prepare_mask
from sdlearn.schedulers import swap_scheduler
from sdlearn.data import make_scene
from tiny_models import write_tiny_sd

TOL = 1e-4


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return sdlearn.load(write_tiny_sd(tmp_path_factory.mktemp("tiny-sd")))


@pytest.fixture(scope="module")
def tiny_inpaint(tmp_path_factory):
    return sdlearn.load(write_tiny_sd(tmp_path_factory.mktemp("tiny-inpaint"), unet_in_channels=9))


@pytest.fixture(scope="module")
def tiny_depth(tmp_path_factory):
    return sdlearn.load(write_tiny_sd(tmp_path_factory.mktemp("tiny-depth"), unet_in_channels=5, with_depth=True))


def _pipe(cls, parts, **extra):
    kw = parts.as_kwargs()
    if cls is not StableDiffusionDepth2ImgPipeline:
        kw.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe = cls(**kw, **extra)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _image(seed=0):
    scene = make_scene("red", "circle", size_px=32, second={"colour": "blue", "shape": "square", "depth": 0.3},
                       relation="left of", seed=seed)
    return Image.fromarray(scene.image), Image.fromarray((scene.masks[0] * 255).astype(np.uint8))


@pytest.mark.parametrize("scheduler", ["pndm", "ddim", "euler", "dpm++", "ddpm"])
@pytest.mark.parametrize("prompt,seed,steps,guidance", [
    ("a red circle", 0, 4, 7.5),
    (["a blue box", "a tiny green disc on the left"], 1, 3, 1.0),
    ("a purple triangle above a yellow square", 2, 5, 3.0),
])
def test_text_to_image_matches_diffusers(tiny, scheduler, prompt, seed, steps, guidance):
    swap_scheduler(tiny, scheduler)
    ours = pipelines.text_to_image(tiny, prompt, height=32, width=32, num_inference_steps=steps,
                                   guidance_scale=guidance, generator=torch.Generator().manual_seed(seed), progress=False)
    theirs = _pipe(StableDiffusionPipeline, tiny)(prompt, height=32, width=32, num_inference_steps=steps,
                                                  guidance_scale=guidance, output_type="np",
                                                  generator=torch.Generator().manual_seed(seed)).images
    assert ours.images.shape == theirs.shape
    assert np.abs(ours.images - theirs).max() <= TOL


def test_negative_prompt_matches_diffusers(tiny):
    kw = dict(height=32, width=32, num_inference_steps=3, guidance_scale=5.0)
    ours = pipelines.text_to_image(tiny, "a red circle", negative_prompt="a blue square",
                                   generator=torch.Generator().manual_seed(0), progress=False, **kw)
    theirs = _pipe(StableDiffusionPipeline, tiny)("a red circle", negative_prompt="a blue square", output_type="np",
                                                  generator=torch.Generator().manual_seed(0), **kw).images
    assert np.abs(ours.images - theirs).max() <= TOL


@pytest.mark.parametrize("strength,steps,guidance,seed", [(0.3, 5, 7.5, 0), (0.75, 4, 1.0, 1), (1.0, 3, 4.0, 2)])
@pytest.mark.parametrize("scheduler", ["pndm", "ddim", "euler"])
def test_image_to_image_matches_diffusers(tiny, strength, steps, guidance, seed, scheduler):
    swap_scheduler(tiny, scheduler)
    image, _ = _image(seed)
    ours = pipelines.image_to_image(tiny, "a blue square", image, strength=strength, num_inference_steps=steps,
                                    guidance_scale=guidance, generator=torch.Generator().manual_seed(seed), progress=False)
    theirs = _pipe(StableDiffusionImg2ImgPipeline, tiny)("a blue square", image=image, strength=strength,
                                                         num_inference_steps=steps, guidance_scale=guidance,
                                                         output_type="np", generator=torch.Generator().manual_seed(seed)).images
    assert np.abs(ours.images - theirs).max() <= TOL


@pytest.mark.parametrize("which", ["blend-4ch", "inpaint-9ch"])
@pytest.mark.parametrize("strength,steps,guidance,seed", [(1.0, 4, 7.5, 0), (0.6, 5, 1.0, 1)])
def test_inpaint_matches_diffusers(tiny, tiny_inpaint, which, strength, steps, guidance, seed):
    parts = tiny if which == "blend-4ch" else tiny_inpaint
    swap_scheduler(parts, "ddim")
    image, mask = _image(seed)
    ours = pipelines.inpaint(parts, "a green triangle", image, mask, strength=strength, num_inference_steps=steps,
                             guidance_scale=guidance, generator=torch.Generator().manual_seed(seed), progress=False)
    theirs = _pipe(StableDiffusionInpaintPipeline, parts)("a green triangle", image=image, mask_image=mask, height=32,
                                                          width=32, strength=strength, num_inference_steps=steps,
                                                          guidance_scale=guidance, output_type="np",
                                                          generator=torch.Generator().manual_seed(seed)).images
    assert np.abs(ours.images - theirs).max() <= TOL


@pytest.mark.parametrize("strength,steps,guidance,seed", [(0.8, 4, 7.5, 0), (1.0, 3, 1.0, 1)])
def test_depth_to_image_matches_diffusers(tiny_depth, strength, steps, guidance, seed):
    swap_scheduler(tiny_depth, "ddim")
    image, _ = _image(seed)
    ours = pipelines.depth_to_image(tiny_depth, "blue squares", image, strength=strength, num_inference_steps=steps,
                                    guidance_scale=guidance, generator=torch.Generator().manual_seed(seed), progress=False)
    theirs = _pipe(StableDiffusionDepth2ImgPipeline, tiny_depth)("blue squares", image=image, strength=strength,
                                                                 num_inference_steps=steps, guidance_scale=guidance,
                                                                 output_type="np",
                                                                 generator=torch.Generator().manual_seed(seed)).images
    assert np.abs(ours.images - theirs).max() <= TOL


def test_recording_gives_one_entry_per_step(tiny):
    swap_scheduler(tiny, "ddim")
    r = pipelines.text_to_image(tiny, "a red circle", height=32, width=32, num_inference_steps=4, record=True,
                                generator=torch.Generator().manual_seed(0), progress=False)
    assert [s.index for s in r.steps] == [0, 1, 2, 3]
    assert r.steps[0].latents.shape == (1, 4, 4, 4) and r.steps[-1].x0_pred.shape == (1, 4, 4, 4)
    # the timesteps run downwards and the last x0 prediction is close to the final latents
    assert r.steps[0].t > r.steps[-1].t
    assert torch.allclose(r.steps[-1].x0_pred, r.latents, atol=0.2)


def test_guidance_outside_changes_the_guidance_only_outside_the_mask(tiny_inpaint):
    parts = swap_scheduler(tiny_inpaint, "ddim")
    image, mask = _image(0)
    run = lambda **kw: pipelines.inpaint(parts, "a green triangle", image, mask, num_inference_steps=3, record=True,
                                         generator=torch.Generator().manual_seed(0), progress=False, **kw)
    default, same, one = run(), run(guidance_outside=7.5), run(guidance_outside=1.0)
    assert torch.equal(default.latents, same.latents)
    small = torch.nn.functional.interpolate(prepare_mask(mask, 32, 32), size=(4, 4))[0, 0] > 0.5
    assert small.any() and (~small).any()
    first = (default.steps[0].noise_pred - one.steps[0].noise_pred).abs().amax(1)[0]  # same input at step 0
    assert first[small].max() == 0 and first[~small].min() > 0
    with pytest.raises(ValueError, match="guidance_outside"):
        run(guidance_outside=-1.0)


def test_paste_back_keeps_the_original_outside_as_diffusers_overlay_does(tiny_inpaint):
    parts = swap_scheduler(tiny_inpaint, "ddim")
    image, mask = _image(0)
    run = lambda **kw: pipelines.inpaint(parts, "a green triangle", image, mask, num_inference_steps=3,
                                         generator=torch.Generator().manual_seed(0), progress=False, **kw)
    plain, pasted = run(), run(paste_back=True)
    torch.testing.assert_close(plain.latents, pasted.latents)  # only the decoded pixels change
    outside = np.asarray(mask) < 128
    original = np.asarray(image)
    ours = (pasted.images[0] * 255).round().astype(np.uint8)
    assert (ours[outside] == original[outside]).all()
    assert np.abs(plain.images[0][outside] * 255 - original[outside]).max() > 1  # without it the outside moves
    assert np.array_equal(pasted.images[0][~outside], plain.images[0][~outside])
    overlay = VaeImageProcessor().apply_overlay(mask, image, plain.pil[0])  # diffusers' own paste-back
    assert np.abs(np.asarray(overlay).astype(int) - ours.astype(int)).max() <= 1


def test_prompt_embeds_work_as_in_diffusers(tiny):
    """prompt may be None when prompt_embeds are given; with guidance on and no negative embeddings the empty
    prompt is encoded; the result equals passing the prompt, and diffusers' pipeline given the same embeddings."""
    from sdlearn.text import encode_prompt

    swap_scheduler(tiny, "ddim")
    kw = dict(height=32, width=32, num_inference_steps=3, guidance_scale=5.0, progress=False)
    embeds, _ = encode_prompt(["a red circle", "a blue box"], tiny.tokenizer, tiny.text_encoder,
                              do_classifier_free_guidance=False)
    by_prompt = pipelines.text_to_image(tiny, ["a red circle", "a blue box"],
                                        generator=torch.Generator().manual_seed(0), **kw)
    by_embeds = pipelines.text_to_image(tiny, prompt_embeds=embeds, generator=torch.Generator().manual_seed(0), **kw)
    assert np.abs(by_prompt.images - by_embeds.images).max() <= TOL
    theirs = _pipe(StableDiffusionPipeline, tiny)(prompt_embeds=embeds, height=32, width=32, num_inference_steps=3,
                                                  guidance_scale=5.0, output_type="np",
                                                  generator=torch.Generator().manual_seed(0)).images
    assert np.abs(by_embeds.images - theirs).max() <= TOL
    # a negative prompt given as embeddings equals giving it as text
    negative, _ = encode_prompt(["a green square"] * 2, tiny.tokenizer, tiny.text_encoder,
                                do_classifier_free_guidance=False)
    a = pipelines.text_to_image(tiny, prompt_embeds=embeds, negative_prompt_embeds=negative,
                                generator=torch.Generator().manual_seed(0), **kw)
    b = pipelines.text_to_image(tiny, ["a red circle", "a blue box"], negative_prompt="a green square",
                                generator=torch.Generator().manual_seed(0), **kw)
    assert np.abs(a.images - b.images).max() <= TOL
    assert np.abs(a.images - by_prompt.images).max() > 1e-3  # the negative prompt does change the images


def test_prompt_and_prompt_embeds_exactly_one(tiny):
    from sdlearn.text import encode_prompt

    embeds, _ = encode_prompt("a red circle", tiny.tokenizer, tiny.text_encoder, do_classifier_free_guidance=False)
    with pytest.raises(ValueError, match="either prompt or prompt_embeds"):
        pipelines.text_to_image(tiny, height=32, width=32, num_inference_steps=2, progress=False)
    with pytest.raises(ValueError, match="either prompt or prompt_embeds"):
        pipelines.text_to_image(tiny, "a red circle", prompt_embeds=embeds, height=32, width=32, num_inference_steps=2,
                                progress=False)
    with pytest.raises(ValueError, match="same shape"):
        pipelines.text_to_image(tiny, prompt_embeds=embeds, negative_prompt_embeds=embeds[:, :5], height=32, width=32,
                                num_inference_steps=2, progress=False)
