"""Customising techniques: each trains only its own numbers, and each saved file loads where users load it
(diffusers' `load_textual_inversion`, `load_lora_weights` / `fuse_lora`, `AutoencoderKL` as `vae=`)."""
import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, StableDiffusionPipeline
from safetensors.torch import save_file

import sdlearn
from sdlearn.data.concepts import concept_images
from sdlearn.eval import image_size
from sdlearn.finetune import (LORA_FILE, add_hypernetwork, add_lora, add_token, check_lora_file, class_pictures,
                              decoder_fine_tune, encode_concept, full_fine_tune, load_embedding, load_hypernetwork, load_lora,
                              lora_scale, remove_hypernetwork, save_embedding, save_hypernetwork, save_lora,
                              train_decoder, train_textual_inversion, train_unet)
from sdlearn.pipelines import text_to_image
from tiny_models import write_tiny_sd


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_tiny_sd(tmp_path_factory.mktemp("tiny-sd"))


def _pipe(parts):
    pipe = StableDiffusionPipeline(**parts.as_kwargs(), safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _images(pipe_or_parts, prompt, seed=0, steps=3, **kw):
    g = torch.Generator().manual_seed(seed)
    if isinstance(pipe_or_parts, StableDiffusionPipeline):
        return pipe_or_parts([prompt] * 2, num_inference_steps=steps, generator=g, output_type="np", **kw).images
    return text_to_image(pipe_or_parts, [prompt] * 2, num_inference_steps=steps, generator=g, progress=False).images


def _data(parts, concept="wide", n=8, **kw):
    d = concept_images(concept, n, seed=0, size_px=image_size(parts)[0], **kw)
    return encode_concept(parts, d.images, d.captions)


def test_textual_inversion_trains_one_row_and_loads_in_diffusers(folder, tmp_path):
    parts = sdlearn.load(folder)
    tid = add_token(parts, "<star>", "star")
    table = parts.text_encoder.get_input_embeddings().weight
    before = table.detach().clone()
    fit = train_textual_inversion(parts, _data(parts, "star", word="<star>"), tid, steps=5, lr=0.5, progress=False)
    changed = (table.detach() != before).any(dim=1)
    assert fit.trained == table.shape[1] and changed.sum() == 1 and changed[tid]
    path = save_embedding(parts, "<star>", tmp_path / "star.safetensors")
    fresh = _pipe(sdlearn.load(folder))
    base = _images(fresh, "a red <star>")  # before loading, "<star>" is three ordinary tokens
    fresh.load_textual_inversion(str(path))
    loaded = _images(fresh, "a red <star>")
    ours = _images(parts, "a red <star>")
    assert np.abs(loaded - ours).max() < 1e-4  # diffusers draws what the trained model draws
    assert np.abs(loaded - base).max() > 1e-3  # and the word changed the picture


def test_textual_inversion_refuses_bad_tokens_and_files(folder, tmp_path):
    parts = sdlearn.load(folder)
    with pytest.raises(ValueError, match="already in the tokenizer's vocabulary"):
        add_token(parts, "circle", "star")
    with pytest.raises(ValueError, match="single token"):
        add_token(parts, "<x>", "a red")
    width = parts.text_encoder.get_input_embeddings().weight.shape[1]
    save_file({"<wide>": torch.zeros(width + 1)}, str(tmp_path / "w.safetensors"))
    with pytest.raises(ValueError, match=f"{width} wide"):
        load_embedding(parts, tmp_path / "w.safetensors")
    save_file({"<ok>": torch.zeros(width)}, str(tmp_path / "ok.safetensors"))
    with pytest.raises(ValueError, match="already in the tokenizer"):
        load_embedding(parts, tmp_path / "ok.safetensors", token="circle")
    assert load_embedding(parts, tmp_path / "ok.safetensors") == len(parts.tokenizer) - 1
    with pytest.raises(ValueError, match="must contain the new token"):
        tid = add_token(parts, "<y>", "circle")
        train_textual_inversion(parts, _data(parts), tid, steps=1, progress=False)


@pytest.mark.parametrize("targets,layers", [("cross", ("attn2",)), ("all", ("attn1", "attn2"))])
def test_lora_adapts_only_its_targets(folder, targets, layers):
    parts = sdlearn.load(folder)
    params = add_lora(parts.unet, rank=2, targets=targets)
    names = [n for n, p in parts.unet.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n and any(f".{l}." in n for l in layers) for n in names)
    assert {l for l in ("attn1", "attn2") if any(f".{l}." in n for n in names)} == set(layers)
    assert sum(p.numel() for p in params) == sum(p.numel() for n, p in parts.unet.named_parameters() if "lora_" in n)


def test_lora_file_loads_in_diffusers_with_scale_fuse_and_unfuse(folder, tmp_path):
    parts = sdlearn.load(folder)
    base = _images(parts, "a wide red circle")
    params = add_lora(parts.unet, rank=2, targets="cross")
    fit = train_unet(parts, _data(parts), params, steps=5, lr=0.05, progress=False)
    assert fit.trained == sum(p.numel() for p in params)
    ours = _images(parts, "a wide red circle")
    assert np.abs(ours - base).max() > 1e-3
    lora_scale(parts.unet, 0.0)
    assert np.abs(_images(parts, "a wide red circle") - base).max() < 1e-5  # scale 0: the base model
    lora_scale(parts.unet, 1.0)
    path = save_lora(parts.unet, tmp_path / "lora")
    assert path.name == LORA_FILE
    check_lora_file(path, sdlearn.load(folder).unet)  # made for this U-Net: no error
    fresh = sdlearn.load(folder)
    load_lora(fresh.unet, tmp_path / "lora")  # the hand-built pipelines' (and the command line's) way in
    assert np.abs(_images(fresh, "a wide red circle") - ours).max() < 1e-4
    with pytest.raises(ValueError, match="already holds a LoRA"):
        load_lora(fresh.unet, path)
    pipe = _pipe(sdlearn.load(folder))
    pipe.load_lora_weights(str(tmp_path / "lora"))
    loaded = _images(pipe, "a wide red circle")
    assert np.abs(loaded - ours).max() < 1e-4
    half = _images(pipe, "a wide red circle", cross_attention_kwargs={"scale": 0.5})
    assert 1e-4 < np.abs(half - base).max() < np.abs(loaded - base).max() + 1e-6
    pipe.fuse_lora()
    assert np.abs(_images(pipe, "a wide red circle") - ours).max() < 1e-3
    pipe.unfuse_lora()
    pipe.unload_lora_weights()
    assert np.abs(_images(pipe, "a wide red circle") - base).max() < 1e-4


def test_a_lora_for_another_unet_is_refused_with_a_clear_error(folder, tmp_path):
    parts = sdlearn.load(folder)
    add_lora(parts.unet, rank=2)
    save_lora(parts.unet, tmp_path / "lora")
    other = sdlearn.load("tinysd")  # 64-wide text, other block widths
    with pytest.raises(ValueError, match="another model"):
        check_lora_file(tmp_path / "lora", other.unet)
    with pytest.raises(FileNotFoundError, match="save one"):
        check_lora_file(tmp_path / "nothing", other.unet)
    with pytest.raises(ValueError, match="no LoRA layers"):
        save_lora(other.unet, tmp_path / "empty")


def test_full_fine_tune_trains_every_weight_of_a_copy(folder):
    parts = sdlearn.load(folder)
    keep = {n: p.detach().clone() for n, p in parts.unet.named_parameters()}
    tuned, params = full_fine_tune(parts.unet)
    assert sum(p.numel() for p in params) == sum(p.numel() for p in parts.unet.parameters())
    parts_tuned = sdlearn.load(folder)
    parts_tuned.unet = tuned
    train_unet(parts_tuned, _data(parts), params, steps=2, lr=1e-3, progress=False)
    assert all(torch.equal(p, keep[n]) for n, p in parts.unet.named_parameters())  # the base did not move
    assert any(not torch.equal(p, keep[n]) for n, p in tuned.named_parameters())


def test_hypernetwork_starts_as_the_identity_trains_saves_and_detaches(folder, tmp_path):
    parts = sdlearn.load(folder)
    base = _images(parts, "a wide red circle")
    hyper = add_hypernetwork(parts.unet)
    assert np.abs(_images(parts, "a wide red circle") - base).max() < 1e-5  # zero-initialised last layers
    assert list(hyper.layers) == [str(parts.text_encoder.config.hidden_size)]
    train_unet(parts, _data(parts), list(hyper.parameters()), steps=5, lr=0.05, progress=False)
    trained = _images(parts, "a wide red circle")
    assert np.abs(trained - base).max() > 1e-3
    assert not any(p.requires_grad for p in parts.unet.parameters())
    path = save_hypernetwork(hyper, tmp_path / "hyper.safetensors")
    remove_hypernetwork(parts.unet)
    assert np.abs(_images(parts, "a wide red circle") - base).max() < 1e-5
    fresh = sdlearn.load(folder)
    load_hypernetwork(fresh.unet, path)
    assert np.abs(_images(fresh, "a wide red circle") - trained).max() < 1e-5
    with pytest.raises(ValueError, match="another model"):
        load_hypernetwork(sdlearn.load("tinysd").unet, path)


def test_dreambooth_prior_pictures_come_from_the_model_and_change_training(folder):
    parts = sdlearn.load(folder)
    prior, images = class_pictures(parts, "a circle", 3, guidance_scale=2.0, steps=2, seed=5)
    assert len(prior) == 3 and prior.captions == ["a circle"] * 3 and images.dtype == np.uint8
    g = [torch.Generator().manual_seed(5 + i) for i in range(3)]
    again = text_to_image(parts, ["a circle"] * 3, num_inference_steps=2, guidance_scale=2.0, generator=g, progress=False)
    assert np.abs(images.astype(int) - np.rint(again.images * 255).astype(int)).max() <= 1
    results = []
    for weight in (0.0, 1.0):
        p = sdlearn.load(folder)
        params = add_lora(p.unet, rank=2, targets="all")
        fit = train_unet(p, _data(p, "badge", n=3), params, steps=3, lr=0.01, prior=prior, prior_weight=weight,
                         progress=False)
        results.append((fit.losses, torch.cat([x.detach().flatten() for x in params])))
    assert not torch.equal(results[0][1], results[1][1])


def test_vae_file_changes_the_decoder_only_and_loads_as_vae(folder, tmp_path):
    parts = sdlearn.load(folder)
    tuned = decoder_fine_tune(parts.vae)
    images = concept_images("striped", 8, size_px=image_size(parts)[0]).images
    fit = train_decoder(tuned, images, steps=3, batch_size=4, progress=False)
    assert fit.trained == sum(p.numel() for p in tuned.decoder.parameters()) + sum(
        p.numel() for p in tuned.post_quant_conv.parameters())
    for (n, a), b in zip(parts.vae.encoder.named_parameters(), tuned.encoder.parameters()):
        assert torch.equal(a, b), n
    assert any(not torch.equal(a, b) for a, b in zip(parts.vae.decoder.parameters(), tuned.decoder.parameters()))
    tuned.save_pretrained(tmp_path / "vae")
    pipe = StableDiffusionPipeline.from_pretrained(folder, vae=AutoencoderKL.from_pretrained(tmp_path / "vae"),
                                                   safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    latents = pipe(["a red circle"], num_inference_steps=3, generator=torch.Generator().manual_seed(0),
                   output_type="latent").images
    decoded = pipe.image_processor.postprocess(
        pipe.vae.decode(latents / pipe.vae.config.scaling_factor).sample.detach(), output_type="np")
    with torch.no_grad():
        ours = tuned.decode(torch.as_tensor(latents) / tuned.config.scaling_factor).sample
        theirs = pipe.vae.decode(torch.as_tensor(latents) / pipe.vae.config.scaling_factor).sample
    assert torch.allclose(ours, theirs, atol=1e-5)
    full = pipe(["a red circle"], num_inference_steps=3, generator=torch.Generator().manual_seed(0),
                output_type="np").images
    assert np.abs(full - decoded).max() < 1e-5  # the pipeline paints with the new decoder
    with pytest.raises(ValueError, match="encoder must stay frozen"):
        train_decoder(parts.vae.requires_grad_(True), images, steps=1, progress=False)
