"""The classroom demo's logic, kernel side (the browser side is in tests/browser/test_demo.py)."""
import numpy as np
import pytest

import sdlearn
from sdlearn.classroom import MASKS, SOURCES, ClassroomApp
from sdlearn.schedulers import swap_scheduler
from tiny_models import write_tiny_sd


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    parts = swap_scheduler(sdlearn.load(write_tiny_sd(tmp_path_factory.mktemp("tiny-sd"))), "ddim")
    inpaint = swap_scheduler(sdlearn.load(write_tiny_sd(tmp_path_factory.mktemp("tiny-inp"), unet_in_channels=9)),
                             "ddim")
    a = ClassroomApp(parts, inpaint)
    a.steps.value = 3
    return a


def test_inputs_come_at_the_model_size(app):
    for name, make in SOURCES.items():
        assert make(app.size).shape == (app.size, app.size, 3), name
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


@pytest.mark.parametrize("mode", ["text to image", "image to image", "inpainting"])
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
