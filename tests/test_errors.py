"""Bad input gets a clear error that says what to do; odd but valid input is converted."""
import pathlib

import numpy as np
import pytest
import torch
from PIL import Image

import sdlearn
from sdlearn import pipelines
from sdlearn.latents import decode_latents
from sdlearn.loading import ModelNotAvailableError
from tiny_models import write_tiny_sd


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return sdlearn.load(write_tiny_sd(tmp_path_factory.mktemp("tiny-sd")))


@pytest.fixture(scope="module")
def tiny_depth(tmp_path_factory):
    return sdlearn.load(write_tiny_sd(tmp_path_factory.mktemp("tiny-depth"), unet_in_channels=5, with_depth=True))


IMG = Image.fromarray(np.full((32, 32, 3), 200, np.uint8))
FAST = dict(num_inference_steps=2, progress=False)


@pytest.mark.parametrize("kwargs,match", [
    (dict(height=30, width=32), "multiples of 8"),
    (dict(num_inference_steps=0), "num_inference_steps"),
    (dict(guidance_scale=-1.0), "guidance_scale"),
    (dict(guidance_scale=float("nan")), "guidance_scale"),
])
def test_text_to_image_rejects(tiny, kwargs, match):
    args = dict(height=32, width=32, progress=False, num_inference_steps=2) | kwargs
    with pytest.raises(ValueError, match=match):
        pipelines.text_to_image(tiny, "a red circle", **args)


def test_prompt_type_and_generator_count(tiny):
    with pytest.raises(TypeError, match="prompt"):
        pipelines.text_to_image(tiny, 42, height=32, width=32, **FAST)
    with pytest.raises(ValueError, match="generators"):
        pipelines.text_to_image(tiny, ["a", "b"], height=32, width=32, generator=[torch.Generator()], **FAST)


@pytest.mark.parametrize("strength", [-0.1, 1.5])
def test_strength_outside_unit_interval(tiny, strength):
    with pytest.raises(ValueError, match="strength"):
        pipelines.image_to_image(tiny, "a red circle", IMG, strength=strength, **FAST)


def test_image_and_prompt_batches_must_agree(tiny):
    with pytest.raises(ValueError, match="2 images for 3 prompts"):
        pipelines.image_to_image(tiny, ["a", "b", "c"], [IMG, IMG], **FAST)


def test_image_not_multiple_of_vae_factor(tiny):
    with pytest.raises(ValueError, match="multiple of 8"):
        pipelines.image_to_image(tiny, "a", Image.new("RGB", (30, 30)), **FAST)


def test_mask_of_wrong_size(tiny):
    with pytest.raises(ValueError, match="mask is 16x16"):
        pipelines.inpaint(tiny, "a", IMG, Image.new("L", (16, 16)), **FAST)


def test_depth_map_of_wrong_shape_and_wrong_unet(tiny, tiny_depth):
    with pytest.raises(ValueError, match="depth_map must be"):
        pipelines.depth_to_image(tiny_depth, "a", IMG, depth_map=torch.zeros(2, 3, 8, 8), **FAST)
    with pytest.raises(ValueError, match="5 input channels"):
        pipelines.depth_to_image(tiny, "a", IMG, **FAST)


def test_rgba_and_greyscale_images_are_converted(tiny):
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    rgba = rgb.convert("RGBA")
    grey = rgb.convert("L")
    kw = dict(strength=0.5, **FAST)
    a = pipelines.image_to_image(tiny, "a", rgb, generator=torch.Generator().manual_seed(0), **kw).images
    b = pipelines.image_to_image(tiny, "a", rgba, generator=torch.Generator().manual_seed(0), **kw).images
    c = pipelines.image_to_image(tiny, "a", grey, generator=torch.Generator().manual_seed(0), **kw).images
    assert np.array_equal(a, b)
    assert c.shape == a.shape


def test_nan_latents_name_the_usual_cause(tiny):
    with pytest.raises(FloatingPointError, match="float16"):
        decode_latents(tiny.vae, torch.full((1, 4, 4, 4), float("nan")))


def test_fp16_on_cpu_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="float16 was asked for on the CPU"):
        sdlearn.load(dtype=torch.float16)


def test_unknown_model_gives_one_clear_message():
    with pytest.raises(ModelNotAvailableError) as info:
        sdlearn.load("no-such-user/no-such-model")
    text = str(info.value)
    assert "no-such-user/no-such-model" in text and "SDLEARN_MODEL" in text and "tinysd" in text


def test_cli_same_seed_same_image_and_no_overwrite(tiny, tmp_path, monkeypatch, capsys):
    from sdlearn.__main__ import main

    model = str(tiny.name)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    common = ["--model", model, "--steps", "2", "--height", "32", "--width", "32", "--seed", "3"]
    assert main(["generate", "a red circle", *common, "-o", str(a)]) == 0
    assert main(["generate", "a red circle", *common, "-o", str(b)]) == 0
    assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))
    before = a.read_bytes()
    assert main(["generate", "a blue box", *common, "-o", str(a)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert a.read_bytes() == before
    assert main(["generate", "a red circle", *common, "--steps", "0", "-o", str(tmp_path / "c.png")]) == 2
    assert "num_inference_steps" in capsys.readouterr().err


def test_cli_inpaint_guidance_outside(tmp_path, capsys, tmp_path_factory):
    from sdlearn.__main__ import main
    from sdlearn.data import make_scene

    model = write_tiny_sd(tmp_path_factory.mktemp("tiny-inp-cli"), unet_in_channels=9)
    scene = make_scene("red", "circle", size_px=32)
    image, mask = tmp_path / "scene.png", tmp_path / "mask.png"
    Image.fromarray(scene.image).save(image)
    Image.fromarray((scene.masks[0] * 255).astype(np.uint8)).save(mask)
    common = ["--model", str(model), "--steps", "2", "--seed", "1", "--image", str(image), "--mask", str(mask)]
    outs = [tmp_path / f"{k}.png" for k in ("same", "one", "default")]
    assert main(["inpaint", "a blue box", *common, "--guidance-outside", "7.5", "-o", str(outs[0])]) == 0
    assert main(["inpaint", "a blue box", *common, "--guidance-outside", "1", "-o", str(outs[1])]) == 0
    assert main(["inpaint", "a blue box", *common, "-o", str(outs[2])]) == 0
    same, one, default = (np.asarray(Image.open(o)) for o in outs)
    assert np.array_equal(same, default) and not np.array_equal(one, default)
    assert main(["inpaint", "a blue box", *common, "--guidance-outside", "-1", "-o", str(tmp_path / "bad.png")]) == 2
    assert "guidance_outside" in capsys.readouterr().err
    pasted = tmp_path / "pasted.png"
    assert main(["inpaint", "a blue box", *common, "--paste-back", "-o", str(pasted)]) == 0
    outside = scene.masks[0] < 0.5
    assert np.array_equal(np.asarray(Image.open(pasted))[outside], scene.image[outside])
    assert not np.array_equal(default[outside], scene.image[outside])


@pytest.mark.parametrize("module", ["sdlearn.__main__", "sdlearn.train", "sdlearn.eval"])
def test_every_command_line_prints_its_help(module, capsys):
    # argparse formats help strings with %, so a stray "%" in one breaks --help for the whole command.
    import importlib

    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_cli_bad_paths_and_damaged_models_get_one_line_messages(tmp_path, capsys, tmp_path_factory):
    from sdlearn.__main__ import main

    model = write_tiny_sd(tmp_path_factory.mktemp("tiny-cli-bad"))
    common = ["--model", str(model), "--steps", "1"]
    # an output path in a folder that does not exist
    assert main(["generate", "a red circle", *common, "-o", str(tmp_path / "no" / "such" / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "mkdir -p" in err and "Traceback" not in err
    # an input that is not an image
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    assert main(["img2img", "a red circle", *common, "--image", str(text), "-o", str(tmp_path / "a.png")]) == 2
    err = capsys.readouterr().err
    assert "is not an image" in err and "PNG" in err
    assert main(["img2img", "a red circle", *common, "--image", str(tmp_path / "missing.png"),
                 "-o", str(tmp_path / "a.png")]) == 2
    assert "no such file" in capsys.readouterr().err
    # a model folder with a damaged weights file
    weights = pathlib.Path(model) / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    assert main(["generate", "a red circle", *common, "-o", str(tmp_path / "b.png")]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "damaged" in errors[0] and "save_pretrained" in errors[0] and "Traceback" not in err
    assert not (tmp_path / "a.png").exists() and not (tmp_path / "b.png").exists()


def test_cli_loads_embeddings_loras_and_vaes_and_refuses_wrong_ones(tiny, tmp_path, capsys):
    from sdlearn.__main__ import main
    from sdlearn.finetune import add_lora, add_token, decoder_fine_tune, save_embedding, save_lora

    model = str(tiny.name)
    common = ["--model", model, "--steps", "2", "--height", "32", "--width", "32", "--seed", "3"]
    parts = sdlearn.load(model)
    token_id = add_token(parts, "<thing>", "circle")
    with torch.no_grad():
        parts.text_encoder.get_input_embeddings().weight[token_id] += 3.0  # a vector unlike the init word's
    save_embedding(parts, "<thing>", tmp_path / "thing.safetensors")
    torch.manual_seed(0)
    add_lora(parts.unet, rank=2)
    with torch.no_grad():
        for name, p in parts.unet.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)  # a LoRA that changes the output (a fresh one starts at zero)
    save_lora(parts.unet, tmp_path / "lora")
    vae = decoder_fine_tune(parts.vae)
    with torch.no_grad():
        vae.decoder.conv_out.bias += 0.3
    vae.save_pretrained(tmp_path / "vae")

    def run(name, *extra):
        assert main(["generate", "a <thing>" if "--embedding" in extra else "a red circle", *common, *extra,
                     "-o", str(tmp_path / name)]) == 0, capsys.readouterr().err
        return np.asarray(Image.open(tmp_path / name)).astype(int)

    base = run("base.png")
    thing = run("thing.png", "--embedding", str(tmp_path / "thing.safetensors"))
    assert "'<thing>'" in capsys.readouterr().out
    assert np.abs(thing - base).max() > 0
    lora = run("lora.png", "--lora", str(tmp_path / "lora"))
    off = run("off.png", "--lora", str(tmp_path / "lora"), "--lora-scale", "0")
    assert np.abs(lora - base).max() > 0 and np.abs(off - base).max() <= 1  # scale 0 is the base model
    painted = run("vae.png", "--vae", str(tmp_path / "vae"))
    assert painted.mean() > base.mean() + 5  # the same latents, painted brighter by the new decoder
    for flag, value, match in (("--embedding", tmp_path / "missing.safetensors", "no such file"),
                               ("--lora", tmp_path / "nowhere", "no such file"),
                               ("--vae", tmp_path / "lora", "No VAE at")):
        assert main(["generate", "a red circle", *common, flag, str(value), "-o", str(tmp_path / "x.png")]) == 2
        err = capsys.readouterr().err
        said = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(said) == 1 and match in said[0] and "Traceback" not in err, err
    assert main(["generate", "a red circle", "--steps", "2", "--lora", str(tmp_path / "lora"), "-o",
                 str(tmp_path / "y.png")]) == 2  # TinySD with a LoRA made for the tiny test model
    assert "another model" in capsys.readouterr().err


def test_eval_on_a_folder_without_tinysds_clip_skips_the_clip_rows(tmp_path, capsys):
    # a real SD folder ships only the text half of CLIP; the eval must still finish and say what it skipped
    from sdlearn.eval import main

    model = write_tiny_sd(tmp_path / "sd")
    assert not (model / "clip").exists()
    main(["--model", str(model), "--n", "2", "--steps", "1"])
    out = capsys.readouterr().out
    assert "no clip/ folder" in out and "VAE PSNR" in out and "CLIP caption" not in out
