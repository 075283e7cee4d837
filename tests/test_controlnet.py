"""ControlNet: the hand-built pipeline equals diffusers', the zero convolutions, the shipped folder, edges, errors."""
import json

import numpy as np
import pytest
import torch

from sdlearn.controlnet import controlnet_to_image, make_controlnet, zero_convolutions
from sdlearn.data import World, make_scene, render_outline, render_sketch
from sdlearn.edges import canny_edges, dilate, edge_condition, edge_f1, edges_of
from sdlearn.loading import SHIPPED, SHIPPED_CONTROLNETS, ModelNotAvailableError, load, load_controlnet

from tiny_models import write_tiny_sd

SHIPPED_CN = SHIPPED_CONTROLNETS["tinysd-controlnet-edges"]


@pytest.fixture(scope="module")
def tinysd():
    return load("tinysd")


@pytest.fixture(scope="module")
def shipped_controlnet():
    return load_controlnet("tinysd-controlnet-edges")


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    """A tiny random Stable Diffusion of other sizes (32-pixel images, 16-32 channels) and a ControlNet for it
    whose zero convolutions are made non-zero, so that its residuals count."""
    parts = load(write_tiny_sd(tmp_path_factory.mktemp("foreign") / "sd"))
    torch.manual_seed(0)
    cn = make_controlnet(parts.unet)
    with torch.no_grad():
        for conv in zero_convolutions(cn):
            conv.weight.normal_(0, 0.1)
    return parts, cn.eval()


def diffusers_pipe(parts, controlnet):
    from diffusers import StableDiffusionControlNetPipeline

    pipe = StableDiffusionControlNetPipeline(vae=parts.vae, text_encoder=parts.text_encoder, tokenizer=parts.tokenizer,
                                             unet=parts.unet, controlnet=controlnet, scheduler=parts.scheduler,
                                             safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def outline(size=64, seed=0):
    scene = World(size=size, seed=seed, p_two=1.0)[0]
    return edge_condition(canny_edges(scene.image))


CASES = [  # prompts, seed, steps, guidance, conditioning scale, start, end
    (["a red circle"], 0, 4, 3.0, 1.0, 0.0, 1.0),
    (["a blue square on the left", "a green triangle above a yellow circle"], 1, 6, 7.5, 0.5, 0.0, 1.0),
    (["a purple square"], 2, 5, 1.0, 1.0, 0.0, 1.0),  # guidance off: one batch half
    (["a yellow triangle", "a red square"], 3, 8, 3.0, 1.7, 0.25, 0.75),  # the ControlNet only mid-schedule
]


@pytest.mark.parametrize("prompts,seed,steps,guidance,scale,start,end", CASES)
def test_controlnet_to_image_equals_diffusers_on_tinysd(tinysd, shipped_controlnet, prompts, seed, steps, guidance,
                                                        scale, start, end):
    from PIL import Image

    cond = outline(seed=seed)
    kw = dict(num_inference_steps=steps, guidance_scale=guidance, controlnet_conditioning_scale=scale,
              control_guidance_start=start, control_guidance_end=end)
    ours = controlnet_to_image(tinysd, shipped_controlnet, prompts, cond, generator=torch.Generator().manual_seed(seed),
                               progress=False, **kw).images
    theirs = diffusers_pipe(tinysd, shipped_controlnet)(prompts, image=Image.fromarray(cond), output_type="np",
                                                        generator=torch.Generator().manual_seed(seed), **kw).images
    assert ours.shape == theirs.shape == (len(prompts), 64, 64, 3)
    assert np.abs(ours - theirs).max() < 1e-4


def test_controlnet_to_image_equals_diffusers_on_other_sizes(foreign):
    from PIL import Image

    parts, cn = foreign
    size = parts.unet.config.sample_size * parts.vae_scale_factor
    conds = [outline(size=size, seed=0), outline(size=size, seed=1)]  # one outline per prompt
    gens = lambda: [torch.Generator().manual_seed(k) for k in (5, 6)]  # noqa: E731 - one per prompt, twice
    kw = dict(num_inference_steps=3, guidance_scale=5.0, controlnet_conditioning_scale=0.8)
    ours = controlnet_to_image(parts, cn, ["a red circle", "a blue square"], conds, generator=gens(), progress=False,
                               **kw).images
    theirs = diffusers_pipe(parts, cn)(["a red circle", "a blue square"], image=[Image.fromarray(c) for c in conds],
                                       output_type="np", generator=gens(), **kw).images
    assert ours.shape == theirs.shape == (2, size, size, 3)
    assert np.abs(ours - theirs).max() < 1e-4


def test_an_untrained_controlnet_leaves_the_unet_bit_equal(foreign, tinysd):
    for parts in (foreign[0], tinysd):
        cn = make_controlnet(parts.unet)
        assert all(float(c.weight.detach().abs().max()) == 0 for c in zero_convolutions(cn))
        size = parts.unet.config.sample_size  # the latents' side; the condition is the image's
        x = torch.randn(2, 4, size, size, generator=torch.Generator().manual_seed(0))
        states = torch.randn(2, 77, parts.unet.config.cross_attention_dim, generator=torch.Generator().manual_seed(1))
        side = size * parts.vae_scale_factor
        cond = torch.rand(2, 3, side, side, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            down, mid = cn(x, 500, encoder_hidden_states=states, controlnet_cond=cond, return_dict=False)
            plain = parts.unet(x, 500, encoder_hidden_states=states).sample
            steered = parts.unet(x, 500, encoder_hidden_states=states, down_block_additional_residuals=down,
                                 mid_block_additional_residual=mid).sample
        assert all(float(d.abs().max()) == 0 for d in [*down, mid])
        assert torch.equal(plain, steered)


def test_scale_zero_is_plain_text_to_image_and_residuals_are_recorded(tinysd, shipped_controlnet):
    from sdlearn.pipelines import text_to_image

    cond = outline()
    kw = dict(num_inference_steps=4, guidance_scale=3.0, progress=False)
    off = controlnet_to_image(tinysd, shipped_controlnet, "a red circle", cond, controlnet_conditioning_scale=0.0,
                              generator=torch.Generator().manual_seed(0), **kw)
    plain = text_to_image(tinysd, "a red circle", generator=torch.Generator().manual_seed(0), **kw)
    assert np.array_equal(off.images, plain.images) and off.residuals == []
    on = controlnet_to_image(tinysd, shipped_controlnet, "a red circle", cond, record_residuals=True,
                             generator=torch.Generator().manual_seed(0), control_guidance_end=0.5, **kw)
    assert [r.index for r in on.residuals] == [0, 1]  # only the first half of the schedule
    n_skips = len(shipped_controlnet.controlnet_down_blocks)
    assert all(len(r.down) == n_skips and r.down[0].shape[0] == 1 for r in on.residuals)
    assert float(on.residuals[0].down[0].abs().max()) > 0  # the trained ControlNet adds something


def test_shipped_controlnet_loads_in_diffusers_pipeline_offline_and_records_its_base():
    from diffusers import ControlNetModel, StableDiffusionControlNetPipeline

    from sdlearn.train.exporting import unet_hash

    cn = ControlNetModel.from_pretrained(SHIPPED_CN)
    pipe = StableDiffusionControlNetPipeline.from_pretrained(SHIPPED["tinysd"], controlnet=cn, safety_checker=None)
    assert pipe.controlnet.dtype == torch.float32
    size = sum(p.stat().st_size for p in SHIPPED_CN.rglob("*") if p.is_file())
    assert size <= 10 * 2**20
    # the U-Net it was trained to steer is the shipped one: retrain the ControlNet when TinySD changes
    assert json.loads((SHIPPED_CN / "base.json").read_text())["base_unet_sha256"] == unet_hash(SHIPPED["tinysd"])


def test_bad_controlnet_input_gets_clear_errors(tinysd, shipped_controlnet, foreign):
    cond = outline()
    run = lambda **kw: controlnet_to_image(tinysd, kw.pop("cn", shipped_controlnet), "a red circle",  # noqa: E731
                                           kw.pop("image", cond), num_inference_steps=2, progress=False, **kw)
    with pytest.raises(ValueError, match="outline is 128x128 but the images will be 64x64; resize"):
        run(image=np.zeros((128, 128, 3), np.uint8))
    with pytest.raises(ValueError, match="white lines on black"):
        run(image=255 - cond)
    with pytest.raises(ValueError, match="must be .H, W. or .H, W, 3."):
        run(image=np.zeros((64, 64, 5), np.uint8))
    with pytest.raises(ValueError, match="in \\[0, 2\\]"):
        run(controlnet_conditioning_scale=3.0)
    with pytest.raises(ValueError, match="control_guidance_start < control_guidance_end"):
        run(control_guidance_start=0.8, control_guidance_end=0.2)
    with pytest.raises(ValueError, match="made for another U-Net"):
        run(cn=foreign[1])
    with pytest.raises(ModelNotAvailableError, match="tinysd-controlnet-edges"):
        load_controlnet("no/such/folder")
    # a greyscale outline (mode L, or a 2-D array) is fine: converted to RGB as diffusers does
    grey = run(image=cond[..., 0], generator=torch.Generator().manual_seed(0)).images
    rgb = run(image=cond, generator=torch.Generator().manual_seed(0)).images
    assert np.array_equal(grey, rgb)


def test_edge_f1_counts_matches_within_the_tolerance():
    a = np.zeros((16, 16), bool)
    a[4, 2:12] = True
    assert edge_f1(a, a) == (1.0, 1.0, 1.0)
    shifted = np.roll(a, 1, axis=0)
    assert edge_f1(a, shifted, tolerance=1)[2] == 1.0 and edge_f1(a, shifted, tolerance=0)[2] == 0.0
    half = a.copy()
    half[4, 7:] = False  # finds half the edge, nothing wrong: precision 1, recall about a half
    p, r, f = edge_f1(a, half, tolerance=0)
    assert p == 1.0 and r == 0.5 and f == pytest.approx(2 / 3)
    assert edge_f1(a, np.zeros_like(a)) == (0.0, 0.0, 0.0)
    assert dilate(a, 2).sum() == 5 * 14


def test_canny_edges_outline_the_objects_and_outlines_follow_the_sketch():
    scene = make_scene("red", "square", background="white")
    edges = canny_edges(scene.image)
    inside = scene.masks[0] > 0.5
    border = dilate(inside, 1) & ~inside
    assert edges.sum() > 20 and (edges & dilate(border, 2)).sum() / edges.sum() > 0.95  # all on the square's border
    assert (border & dilate(edges, 2)).sum() / border.sum() > 0.95  # all the border found
    drawn = render_outline(scene, seed=3)
    assert drawn.dtype == np.uint8 and drawn.shape == (64, 64, 3) and (drawn[..., 0] == drawn[..., 2]).all()
    exact = render_outline(scene, seed=3, wobble=0.0)
    assert edge_f1(edges, edges_of(exact))[2] > 0.8  # without wobble, the outline is the picture's edge
    # the outline wobbles as the sketch of the same seed does: its line lies on the sketch's darker outline
    sketch = render_sketch(scene, seed=3).astype(float).sum(-1)
    assert sketch[edges_of(drawn)].mean() < sketch[~dilate(edges_of(drawn), 2)].mean()
    with pytest.raises(ValueError, match="width"):
        render_outline(scene, width=0)


def test_cli_controlnet_on_an_outline_or_a_pictures_edges_and_its_errors(tmp_path, capsys):
    from PIL import Image

    from sdlearn.__main__ import main

    common = ["--steps", "2", "--seed", "1"]
    Image.fromarray(outline()).save(tmp_path / "outline.png")
    big = np.full((200, 160, 3), 255, np.uint8)
    big[50:150, 40:120] = (30, 60, 220)  # a blue box on white, not the model's size
    Image.fromarray(big).save(tmp_path / "photo.png")

    def run(name, *extra):
        code = main(["controlnet", "a red square", *common, *extra, "-o", str(tmp_path / name)])
        return code, capsys.readouterr()

    code, said = run("a.png", "--edges", str(tmp_path / "outline.png"))
    assert code == 0, said.err
    code, said = run("b.png", "--edges", str(tmp_path / "outline.png"), "--scale", "0")
    assert code == 0
    plain = main(["generate", "a red square", *common, "-o", str(tmp_path / "plain.png")])
    assert plain == 0 and np.array_equal(np.asarray(Image.open(tmp_path / "b.png")),
                                         np.asarray(Image.open(tmp_path / "plain.png")))  # scale 0: no ControlNet
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(tmp_path / "b.png")))
    code, said = run("c.png", "--edges", str(tmp_path / "photo.png"), "--canny")
    assert code == 0, said.err
    for extra, words in ((["--edges", str(tmp_path / "photo.png")], "resize it first"),
                         (["--edges", str(tmp_path / "outline.png"), "--scale", "3"], "in [0, 2]"),
                         (["--edges", str(tmp_path / "nope.png")], "no such file"),
                         (["--edges", str(tmp_path / "outline.png"), "--controlnet", str(tmp_path)], "No ControlNet at")):
        code, said = run("x.png", *extra)
        errors = [line for line in said.err.splitlines() if line.startswith("error:")]
        assert code == 2 and len(errors) == 1 and words in errors[0] and "Traceback" not in said.err, said.err
    Image.fromarray(np.full((64, 64, 3), 255, np.uint8)).save(tmp_path / "white.png")
    code, said = run("y.png", "--edges", str(tmp_path / "white.png"))
    assert code == 2 and "white lines on black" in said.err and "--canny" in said.err
