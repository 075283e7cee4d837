"""The shipped TinySD loads offline in diffusers' own pipelines and draws what it is asked for."""
import json
import logging

import pytest
import torch
from diffusers import DDIMScheduler, StableDiffusionImg2ImgPipeline, StableDiffusionPipeline

import sdlearn
from sdlearn import tinysd
from sdlearn.data import make_scene
from sdlearn.images import to_uint8
from sdlearn.judge import judge
from tiny_models import write_tiny_sd

FOLDER = tinysd.DEFAULT_FOLDER


def test_folder_layout_and_sizes():
    index = json.loads((FOLDER / "model_index.json").read_text())
    assert index["safety_checker"] == [None, None] and index["feature_extractor"] == [None, None]
    weights = [p for p in FOLDER.parent.rglob("*.safetensors")]
    assert weights and not list(FOLDER.parent.rglob("*.bin")) and not list(FOLDER.parent.rglob("*.pt"))
    main = sum(p.stat().st_size for p in FOLDER.rglob("*.safetensors"))
    assert main <= 40 * 2**20
    vae_cfg = json.loads((FOLDER / "vae" / "config.json").read_text())
    assert vae_cfg["latent_channels"] == 4 and len(vae_cfg["block_out_channels"]) == 4
    assert 0.2 < vae_cfg["scaling_factor"] < 5 and vae_cfg["scaling_factor"] != 1.0  # measured, not the default
    sched = json.loads((FOLDER / "scheduler" / "scheduler_config.json").read_text())
    assert (sched["beta_schedule"], sched["beta_start"], sched["beta_end"], sched["num_train_timesteps"]) == \
        ("scaled_linear", 0.00085, 0.012, 1000)


@pytest.fixture(scope="module")
def pipe():
    records = []

    class Catch(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Catch(level=logging.WARNING)
    logging.getLogger("diffusers").addHandler(handler)
    try:
        p = StableDiffusionPipeline.from_pretrained(FOLDER)
    finally:
        logging.getLogger("diffusers").removeHandler(handler)
    p.scheduler = DDIMScheduler.from_config(p.scheduler.config, clip_sample=False)
    p.set_progress_bar_config(disable=True)
    p.load_warnings = records
    return p


def test_loads_offline_in_fp32_without_warnings_about_missing_parts(pipe):
    assert pipe.unet.dtype == torch.float32 and pipe.text_encoder.dtype == torch.float32
    assert not [m for m in pipe.load_warnings if "safety" in m.lower() or "missing" in m.lower()]


@pytest.mark.parametrize("prompt,colour", [("a red circle", "red"), ("a blue square", "blue"),
                                           ("a big yellow triangle", "yellow")])
def test_generates_the_prompted_colour(pipe, prompt, colour):
    images = pipe([prompt] * 3, num_inference_steps=20, guidance_scale=7.5, height=64, width=64, output_type="np",
                  generator=[torch.Generator().manual_seed(s) for s in range(3)]).images
    verdicts = [judge(to_uint8(im)).colour for im in images]
    assert verdicts.count(colour) >= 2, verdicts


def test_img2img_pipeline_loads_and_keeps_the_layout():
    p = StableDiffusionImg2ImgPipeline.from_pretrained(FOLDER)
    p.set_progress_bar_config(disable=True)
    scene = make_scene("green", "square", position="left")
    from PIL import Image

    # moderate guidance: at 7.5, TinySD's guidance overshoots on in-distribution images at low noise
    out = p("a green square on the left", image=Image.fromarray(scene.image), strength=0.5, guidance_scale=2.0,
            num_inference_steps=20, output_type="np", generator=torch.Generator().manual_seed(0)).images[0]
    v = judge(to_uint8(out))
    assert (v.colour, v.position) == ("green", "left")


def test_load_defaults_to_tinysd_and_follows_sdlearn_model(monkeypatch, tmp_path):
    monkeypatch.delenv("SDLEARN_MODEL", raising=False)
    parts = sdlearn.load()
    assert parts.is_tinysd and parts.vae_scale_factor == 8 and parts.unet.config.in_channels == 4
    folder = write_tiny_sd(tmp_path / "other")  # a folder written with save_pretrained, like a real SD download
    monkeypatch.setenv("SDLEARN_MODEL", str(folder))
    other = sdlearn.load()
    assert not other.is_tinysd and other.text_encoder.config.hidden_size == 32


SWAP_PROMPTS = [f"a {c} {s}" for c, s in [("red", "circle"), ("blue", "square"), ("yellow", "triangle"),
                                          ("green", "circle"), ("purple", "square"), ("orange", "circle"),
                                          ("red", "square"), ("blue", "triangle"), ("yellow", "circle"),
                                          ("green", "square"), ("purple", "triangle"), ("red", "triangle"),
                                          ("blue", "circle"), ("yellow", "square"), ("green", "circle"),
                                          ("orange", "triangle")]]


def _colours_right(p) -> int:
    p.set_progress_bar_config(disable=True)
    out = p(SWAP_PROMPTS, num_inference_steps=tinysd.RECOMMENDED_STEPS, guidance_scale=tinysd.RECOMMENDED_GUIDANCE,
            output_type="np", generator=[torch.Generator().manual_seed(s) for s in range(len(SWAP_PROMPTS))]).images
    return sum(judge(im).colour == prompt.split()[1] for im, prompt in zip(to_uint8(out), SWAP_PROMPTS))


@pytest.fixture(scope="module")
def shipped():
    """The folder as diffusers loads it, with nothing changed: its own scheduler and config."""
    return StableDiffusionPipeline.from_pretrained(FOLDER)


@pytest.mark.parametrize("name", ["DDIMScheduler", "EulerDiscreteScheduler", "DPMSolverMultistepScheduler",
                                  "PNDMScheduler", "LMSDiscreteScheduler"])
def test_the_tutorial_scheduler_swap_works(shipped, name):
    """`pipe.scheduler = X.from_config(pipe.scheduler.config)`, as every tutorial swaps schedulers."""
    import copy

    import diffusers

    p = copy.copy(shipped)
    p.scheduler = getattr(diffusers, name).from_config(shipped.scheduler.config)
    assert _colours_right(p) >= 13


def test_ddim_with_sample_clipping_would_fail_the_swap_test(shipped):
    """What the shipped `clip_sample: false` prevents: DDIM clipping the unbounded latents to [-1, 1]."""
    import copy

    assert shipped.scheduler.config.clip_sample is False
    p = copy.copy(shipped)
    p.scheduler = DDIMScheduler.from_config(shipped.scheduler.config, clip_sample=True)
    assert _colours_right(p) < 13


def test_the_folder_with_only_the_prompt_draws_what_is_asked(shipped):
    """diffusers' defaults except for the model card's recommended guidance and steps."""
    assert _colours_right(shipped) >= 13


def test_cli_and_classroom_default_to_the_model_cards_guidance_and_steps(tmp_path, tmp_path_factory):
    from sdlearn.__main__ import main
    from sdlearn.classroom import ClassroomApp

    args = ["generate", "a red circle", "--seed", "4"]
    assert main([*args, "-o", str(tmp_path / "default.png")]) == 0
    assert main([*args, "--guidance", str(tinysd.RECOMMENDED_GUIDANCE), "--steps", str(tinysd.RECOMMENDED_STEPS),
                 "-o", str(tmp_path / "recommended.png")]) == 0
    assert main([*args, "--guidance", "7.5", "--steps", str(tinysd.RECOMMENDED_STEPS),
                 "-o", str(tmp_path / "diffusers.png")]) == 0
    read = lambda name: (tmp_path / name).read_bytes()
    assert read("default.png") == read("recommended.png") != read("diffusers.png")
    parts = sdlearn.load()
    assert (parts.recommended_guidance, parts.recommended_steps) == (tinysd.RECOMMENDED_GUIDANCE,
                                                                      tinysd.RECOMMENDED_STEPS)
    other = sdlearn.load(write_tiny_sd(tmp_path_factory.mktemp("other")))
    assert (other.recommended_guidance, other.recommended_steps) == (7.5, 50)  # diffusers' defaults elsewhere
    app = ClassroomApp(parts, None)
    assert (app.guidance.value, app.steps.value) == (tinysd.RECOMMENDED_GUIDANCE, tinysd.RECOMMENDED_STEPS)
