"""The classroom demo's logic, kernel side (the browser side is in tests/browser/test_demo.py)."""
import numpy as np
import pytest

import sdlearn
from sdlearn.classroom import MASKS, OUTLINES, SOURCES, ClassroomApp
from sdlearn.controlnet import make_controlnet
from sdlearn.schedulers import swap_scheduler
from tiny_models import write_tiny_sd


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    parts = swap_scheduler(sdlearn.load(write_tiny_sd(tmp_path_factory.mktemp("tiny-sd"))), "ddim")
    inpaint = swap_scheduler(sdlearn.load(write_tiny_sd(tmp_path_factory.mktemp("tiny-inp"), unet_in_channels=9)),
                             "ddim")
    a = ClassroomApp(parts, inpaint, controlnet=make_controlnet(parts.unet).eval())
    a.steps.value = 3
    return a


def test_inputs_come_at_the_model_size(app):
    for name, make in SOURCES.items():
        assert make(app.size).shape == (app.size, app.size, 3), name
    for name, make in OUTLINES.items():
        o = make(app.size)
        assert o.shape == (app.size, app.size, 3) and o.dtype == np.uint8 and 0 < (o > 127).mean() < 0.5, name
    for name, make in MASKS.items():
        m = make(app.size)
        assert m.shape == (app.size, app.size) and 0 < (m > 0).mean() < 1, name


@pytest.mark.parametrize("field, value, words", [
    ("prompt", "   ", "Type a prompt"),
    ("prompt", "red " * 80, "75 usable tokens"),
    ("seed", -1, "seed must be"),
])
def test_bad_input_gets_a_message_and_no_generation(app, field, value, words):
    old = getattr(app, field).value
    getattr(app, field).value = value
    try:
        assert app.generate() is None
        assert words in app.message.value
    finally:
        getattr(app, field).value = old


@pytest.mark.parametrize("mode", ["text to image", "image to image", "inpainting", "ControlNet"])
def test_generate_records_every_step_and_moves_the_progress_bar(app, mode):
    app.mode.value = mode
    app.prompt.value = "a red circle"
    result = app.generate()
    assert result is not None, app.message.value
    assert "Done" in app.message.value
    assert len(result.steps) == app.progress.value == app.progress.max
    assert result.images.shape == (1, app.size, app.size, 3)
    assert not app.button.disabled
    app.mode.value = "text to image"


def test_inpainting_uses_the_nine_channel_model(app):
    app.mode.value = "inpainting"
    app.generate()
    assert "9-channel" in app.message.value
    app.mode.value = "text to image"


def test_paste_back_box_shows_in_inpainting_and_keeps_the_input_outside_the_mask(app):
    app.mode.value = "inpainting"
    assert app.paste_back.layout.display is None
    app.prompt.value = "a red circle"
    app.paste_back.value = True
    try:
        result = app.generate()
    finally:
        app.paste_back.value = False
        app.mode.value = "text to image"
    assert result is not None, app.message.value
    assert app.paste_back.layout.display == "none"
    image = SOURCES[app.source.value](app.size)
    outside = np.asarray(MASKS[app.mask.value](app.size)) < 128
    assert ((result.images[0] * 255).round().astype(np.uint8)[outside] == np.asarray(image)[outside]).all()


def _png(array) -> dict:
    import datetime
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return {"name": "mine.png", "type": "image/png", "size": buf.tell(), "content": memoryview(buf.getvalue()),
            "last_modified": datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)}


def test_controlnet_mode_takes_an_upload_and_says_what_is_wrong_with_a_bad_one(app):
    app.mode.value = "ControlNet"
    assert app.control_controls.layout.display is None and app.image_controls.layout.display == "none"
    app.prompt.value = "a red circle"
    try:
        app.upload.value = (_png(np.zeros((app.size * 2, app.size * 2, 3), np.uint8)),)  # the wrong size
        assert app.generate() is None and "Upload an outline of that size" in app.message.value
        photo = np.full((app.size * 2, app.size * 2, 3), 255, np.uint8)
        photo[10:40, 10:40] = (200, 30, 30)
        app.upload.value = (_png(photo),)
        app.use_edges.value = True  # a picture of any size: its edges at the model's size
        assert app.outline_image().shape == (app.size, app.size, 3) and app.outline_image().max() == 255
        assert app.generate() is not None and "Done" in app.message.value
        app.use_edges.value = False  # the light picture itself is refused: outlines are white on black
        app.upload.value = (_png(np.full((app.size, app.size, 3), 255, np.uint8)),)
        assert app.generate() is None and "white lines on black" in app.message.value
        app.upload.value = (dict(_png(photo), content=memoryview(b"not a picture")),)
        assert app.generate() is None and "not a picture" in app.message.value
        app.outline.value = list(OUTLINES)[1]  # choosing a bundled outline drops the upload
        assert app.upload.value == () and app.generate() is not None
    finally:
        app.upload.value = ()
        app.use_edges.value = False
        app.mode.value = "text to image"


def test_an_addon_is_shown_without_and_with_and_leaves_the_model_alone(app, tmp_path):
    import torch

    from sdlearn.classroom import Addon, ClassroomApp
    from sdlearn.finetune import add_lora, save_lora

    parts = app.parts
    unet = __import__("copy").deepcopy(parts.unet)
    torch.manual_seed(0)
    add_lora(unet, rank=2)
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)  # a LoRA that changes the picture (a fresh one starts at zero)
    save_lora(unet, tmp_path / "lora")
    demo = ClassroomApp(parts, app.inpaint_parts, addons={"test LoRA": Addon("lora", tmp_path / "lora", "a red box")})
    demo.steps.value = 3
    assert demo.addon.layout.display is None  # offered in text-to-image mode
    demo.addon.value = "test LoRA"
    assert demo.prompt.value == "a red box"  # choosing an add-on fills in a prompt that shows it
    result = demo.generate()
    without, with_ = demo.last_comparison
    assert np.abs(without - with_).max() > 1e-3  # the add-on changes the picture
    assert np.allclose(with_, result.images[0])
    demo.addon.value = "none"
    plain = demo.generate()
    assert np.allclose(plain.images[0], without, atol=1e-5)  # the base model was not changed by loading it
    demo.mode.value = "inpainting"
    assert demo.addon.layout.display == "none"
    assert ClassroomApp(parts, app.inpaint_parts).addon.options == ("none",)  # shipped files fit TinySD only


def test_controlnet_mode_draws_on_the_sketch_pad(app):
    from sdlearn.classroom import DRAW

    app.mode.value = "ControlNet"
    app.prompt.value = "a red circle"
    pad = app.pad
    try:
        app.outline.value = DRAW
        assert pad.view.layout.display is None  # the pad shows only when picked
        assert app.generate() is None and "sketch pad is empty" in app.message.value
        d = pad.DISPLAY
        pad.pen_down(d * 0.25, d * 0.5)  # a horizontal stroke across the middle, in canvas pixels
        for x in np.linspace(0.25, 0.75, 20)[1:]:
            pad.pen_move(d * x, d * 0.5)
        pad.pen_up(d * 0.75, d * 0.5)
        pad.pen_move(d * 0.9, d * 0.9)  # the pen is up: moving draws nothing
        outline = app.outline_image()
        assert outline.shape == (app.size, app.size, 3) and outline.dtype == np.uint8
        row = app.size // 2
        assert outline[row, app.size // 4 + 1 : 3 * app.size // 4 - 1].min() == 255  # the stroke, at the model's size
        assert outline[: row - 3].max() == 0 and outline[row + 3 :].max() == 0  # and nothing else
        assert app.generate() is not None and "Done" in app.message.value
        pad.clear()
        assert pad.segments == [] and app.generate() is None and "sketch pad is empty" in app.message.value
        app.outline.value = list(OUTLINES)[0]
        assert pad.view.layout.display == "none" and app.generate() is not None
    finally:
        pad.clear()
        app.outline.value = list(OUTLINES)[0]
        app.mode.value = "text to image"
