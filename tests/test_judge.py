import numpy as np
import pytest

from sdlearn.data import COLOURS, SHAPES, World, make_scene
from sdlearn.judge import judge, parse_prompt


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("colour", list(COLOURS))
def test_judge_reads_clean_scenes(colour, shape):
    for size, position, bg in (("large", "center", "white"), ("small", "left", "black"), ("large", "bottom", "gray")):
        v = judge(make_scene(colour, shape, size=size, position=position, background=bg).image)
        assert (v.colour, v.shape, v.position, v.background) == (colour, shape, position, bg)
        assert set(v.scores) == set(SHAPES) and v.scores[shape] == v.iou == max(v.scores.values())


def test_judge_on_random_single_object_scenes_and_blur():
    from PIL import Image, ImageFilter

    world = World(seed=7, p_two=0.0, split="all")
    right = 0
    for i in range(100):
        s = world[i]
        blurred = np.asarray(Image.fromarray(s.image).filter(ImageFilter.GaussianBlur(1.0)))
        v = judge(blurred)
        o = s.objects[0]
        right += (v.colour, v.shape, v.position) == (o.colour, o.shape, o.position)
    assert right >= 95


def test_judge_finds_nothing_in_a_blank_image_and_rejects_bad_shapes():
    assert judge(np.full((64, 64, 3), 245, np.uint8)).colour is None
    with pytest.raises(ValueError, match="RGB"):
        judge(np.zeros((64, 64), np.uint8))


def test_parse_prompt_understands_synonyms():
    assert parse_prompt("a big violet disc on the left") == {"colour": "purple", "shape": "circle", "position": "left"}
    assert parse_prompt("a picture of a tiny red box") == {"colour": "red", "shape": "square", "position": None}
