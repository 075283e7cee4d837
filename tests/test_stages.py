"""The stage modules: text, VAE, U-Net anatomy."""
import warnings

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline

import sdlearn
from sdlearn import latents, text, unet
from sdlearn.guidance import classifier_free_guidance
from tiny_models import write_tiny_sd


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return sdlearn.load(write_tiny_sd(tmp_path_factory.mktemp("tiny-sd")))


def test_token_table_marks_start_end_padding_and_word_ends(tiny):
    rows = text.token_table("a dreambeach", tiny.tokenizer)
    assert len(rows) == 77
    assert [r.kind for r in rows[:5]] == ["start", "word", "word", "word", "end"]
    assert [r.token for r in rows[1:4]] == ["a</w>", "dream", "beach</w>"]
    assert rows[1].id == 320 and rows[0].id == 49406 and rows[4].id == 49407
    assert all(r.kind == "padding" and r.id == 49407 for r in rows[5:])


def test_long_prompt_warns_naming_the_dropped_words(tiny):
    prompt = " ".join(["red"] * 74 + ["blue", "green", "purple"])
    with pytest.warns(UserWarning, match="green purple"):
        rows = text.token_table(prompt, tiny.tokenizer)
    assert text.dropped_words(prompt, tiny.tokenizer) == ["green", "purple"]
    assert sum(r.kind == "word" and r.kept for r in rows) == 75
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        text.token_table("a red circle", tiny.tokenizer)  # short prompts do not warn


def test_encode_prompt_equals_diffusers(tiny):
    pipe = StableDiffusionPipeline(**tiny.as_kwargs(), safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    ours, ours_neg = text.encode_prompt(["a red circle", "a box"], tiny.tokenizer, tiny.text_encoder, "blue")
    theirs, theirs_neg = pipe.encode_prompt(["a red circle", "a box"], "cpu", 1, True, ["blue", "blue"])
    assert torch.allclose(ours, theirs, atol=1e-6) and torch.allclose(ours_neg, theirs_neg, atol=1e-6)
    _, empty = text.encode_prompt("x", tiny.tokenizer, tiny.text_encoder)
    assert torch.allclose(empty, text.encode_prompt("", tiny.tokenizer, tiny.text_encoder, do_classifier_free_guidance=False)[0])


def test_token_embeddings_and_cosine(tiny):
    e = text.token_embeddings(["red", "blue", "red"], tiny.tokenizer, tiny.text_encoder)
    assert e.shape == (3, 32)
    c = text.cosine_matrix(e)
    assert torch.allclose(c.diagonal(), torch.ones(3), atol=1e-5) and c[0, 2] == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="tokens"):
        text.token_embeddings(["dreambeach"], tiny.tokenizer, tiny.text_encoder)


def test_vae_round_trip_shapes_ratio_and_psnr(tiny):
    img = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    z, recon = latents.round_trip(tiny.vae, img)
    assert z.shape == (1, 4, 4, 4) and recon.shape == (1, 32, 32, 3) and recon.dtype == np.uint8
    assert latents.compression_ratio(img.shape, z.shape) == 48.0
    assert latents.compression_ratio((512, 512, 3), (4, 64, 64)) == 48.0
    assert latents.psnr(img, img) == float("inf")
    noisy = np.clip(img.astype(int) + 10, 0, 255).astype(np.uint8)
    assert 25 < latents.psnr(img, noisy) < 30


def test_real_sd_unet_sizes_from_config():
    info15 = unet.anatomy(unet.real_unet("v1.5"))
    assert info15["total_params"] == 859_520_964
    assert info15["latent"] == (4, 64, 64) and info15["cross_attention_dim"] == 768
    assert [b.resolution for b in info15["blocks"]] == [64, 32, 16, 8, 8, 8, 16, 32, 64]
    assert sum(b.attention_layers for b in info15["blocks"]) == 16
    info21 = unet.anatomy(unet.real_unet("v2.1"))
    assert info21["cross_attention_dim"] == 1024 and info21["latent"] == (4, 96, 96)
    assert "ResNet" in unet.format_anatomy(info15) or "resnets" in unet.format_anatomy(info15)


def test_predict_noise_checks_channels(tiny):
    states = torch.zeros(1, 77, 32)
    eps = unet.predict_noise(tiny.unet, torch.randn(1, 4, 4, 4), 500, states)
    assert eps.shape == (1, 4, 4, 4)
    with pytest.raises(ValueError, match="input channels"):
        unet.predict_noise(tiny.unet, torch.randn(1, 3, 4, 4), 500, states)


def test_cfg_formula():
    u, t = torch.tensor([1.0]), torch.tensor([3.0])
    assert classifier_free_guidance(u, t, 0.0) == u and classifier_free_guidance(u, t, 1.0) == t
    assert classifier_free_guidance(u, t, 7.5) == 1.0 + 7.5 * 2.0


def test_guidance_zero_ignores_the_prompt_only_with_the_formula(tiny):
    from sdlearn import pipelines

    kw = dict(height=32, width=32, num_inference_steps=3, progress=False)
    a = pipelines.text_to_image(tiny, "a red circle", guidance_scale=0.0, cfg_always=True,
                                generator=torch.Generator().manual_seed(0), **kw).images
    b = pipelines.text_to_image(tiny, "a blue box", guidance_scale=0.0, cfg_always=True,
                                generator=torch.Generator().manual_seed(0), **kw).images
    assert np.abs(a - b).max() <= 1e-6
    # diffusers' rule: guidance <= 1 skips the formula, so 0 behaves like 1 (text-conditioned only)
    c = pipelines.text_to_image(tiny, "a red circle", guidance_scale=0.0, generator=torch.Generator().manual_seed(0), **kw).images
    d = pipelines.text_to_image(tiny, "a red circle", guidance_scale=1.0, generator=torch.Generator().manual_seed(0), **kw).images
    assert np.abs(c - d).max() <= 1e-6 and np.abs(a - c).max() > 1e-4


def test_guided_predictions_match_the_pipeline_step_and_refuse_sigma_schedulers(tiny):
    import dataclasses

    from sdlearn import pipelines
    from sdlearn.guidance import guided_predictions
    from sdlearn.schedulers import make_scheduler

    parts = dataclasses.replace(tiny, scheduler=make_scheduler("ddim", tiny.scheduler.config))
    res = pipelines.text_to_image(parts, "a red box", height=32, width=32, num_inference_steps=4, guidance_scale=5.0,
                                  generator=torch.Generator().manual_seed(0), record=True, progress=False)
    step = res.steps[2]
    x0 = guided_predictions(parts, step.latents, step.t, "a red box", guidance_scale=5.0)
    assert torch.allclose(x0["guided"], step.x0_pred, atol=1e-4)  # the scheduler's own x0 of the guided step
    assert torch.allclose(x0["guided"], x0["uncond"] + 5.0 * (x0["text"] - x0["uncond"]), atol=1e-4)
    assert (x0["text"] - x0["uncond"]).abs().max() > 1e-4  # the prompt changes the prediction
    with pytest.raises(ValueError, match="one prompt per latent"):
        guided_predictions(parts, torch.cat([step.latents] * 2), step.t, "a red box")
    with pytest.raises(ValueError, match="input channels"):
        guided_predictions(parts, step.latents[:, :3], step.t, "a red box")
    euler = dataclasses.replace(tiny, scheduler=make_scheduler("euler", tiny.scheduler.config))
    with pytest.raises(ValueError, match="swap_scheduler"):
        guided_predictions(euler, step.latents, step.t, "a red box")
