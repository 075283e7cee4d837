import numpy as np
import pytest

from sdlearn.data import (BACKGROUNDS, COLOURS, HELD_OUT, SYNONYMS, World, load_motorcycle, load_photo,
                          make_scene, render_sketch)


def _words(canonical):
    return SYNONYMS.get(canonical, (canonical,))


def test_same_seed_same_sample_and_different_seed_differs():
    a, b = World(seed=3)[17], World(seed=3)[17]
    assert np.array_equal(a.image, b.image) and a.caption == b.caption
    assert np.array_equal(a.masks, b.masks) and np.array_equal(a.depth, b.depth)
    c = World(seed=4)[17]
    assert not np.array_equal(a.image, c.image) or a.caption != c.caption


def test_captions_name_the_drawn_objects():
    world = World(seed=0)
    for i in range(300):
        s = world[i]
        text = " " + s.caption + " "
        for o in s.objects:
            assert any(f" {w} " in text for w in _words(o.colour)), (s.caption, o)
            assert any(f" {w} " in text or f" {w}s " in text for w in _words(o.shape)), (s.caption, o)
        if s.relation is not None:
            # "A <relation> B": the part before the relation phrase names objects[0], the rest objects[1]
            phrase = " to the left of " if " to the left of " in text else (" left of " if s.relation == "left of" else " above ")
            assert (s.relation == "left of") == ("left of" in text)
            before, after = text.split(phrase, 1)
            for part, o in ((before, s.objects[0]), (after, s.objects[1])):
                assert any(f" {w} " in part + " " for w in _words(o.colour)), (s.caption, o)
                assert any(f" {w} " in part + " " for w in _words(o.shape)), (s.caption, o)


def test_relations_match_geometry():
    world = World(seed=1, p_two=1.0)
    for i in range(100):
        s = world[i]
        (ax, ay), (bx, by) = s.objects[0].center, s.objects[1].center
        if s.relation == "left of":
            assert ax < bx
        else:
            assert ay < by


def _erode(m):
    """Drop every pixel that has a pixel outside m among its 8 neighbours."""
    out = m.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            out &= np.roll(np.roll(m, dy, 0), dx, 1)
    return out


def test_masks_match_pixels():
    world = World(seed=2)
    for i in range(100):
        s = world[i]
        for o, m in zip(s.objects, s.masks):
            assert m.sum() > 10
            # away from the anti-aliased rim, masked pixels have exactly the object's colour
            inner = _erode(m)
            assert np.all(np.abs(s.image[inner].astype(int) - COLOURS[o.colour]) <= 1)
        bg = ~s.masks.any(0)
        far = _erode(bg)
        assert np.all(np.abs(s.image[far].astype(int) - BACKGROUNDS[s.background]) <= 1)


def test_depth_agrees_with_occlusion():
    world = World(seed=5, p_two=1.0)
    overlaps = 0
    for i in range(400):
        s = world[i]
        for o, m in zip(s.objects, s.masks):
            assert np.allclose(s.depth[m], o.depth)
        assert np.all(s.depth[~s.masks.any(0)] == 1.0)
        # where the two shapes overlap, the visible one is the nearer one
        near = int(np.argmin([o.depth for o in s.objects]))
        far = 1 - near
        from sdlearn.data.world import render
        alone, masks_alone, _ = render([s.objects[far]], s.background, s.image.shape[0])
        overlap = masks_alone[0] & s.masks[near]
        if overlap.sum() > 0:
            overlaps += 1
            assert not (s.masks[far] & overlap).any()
    assert overlaps > 5, "the test should see some occluded scenes"


def test_held_out_pairs_never_in_train_and_always_in_heldout():
    train = World(seed=0)
    for i in range(1000):
        for o in train[i].objects:
            assert (o.colour, o.shape) not in HELD_OUT
    held = World(seed=0, split="heldout")
    for i in range(50):
        o = held[i].objects[0]
        assert (o.colour, o.shape) in HELD_OUT


def test_synonyms_occur():
    text = " ".join(World(seed=0)[i].caption for i in range(2000))
    for word in ("box", "square", "disc", "circle", "big", "large", "tiny", "small", "violet", "purple"):
        assert f" {word}" in text, word


def test_image_size_is_configurable():
    s = World(size=32, seed=0)[0]
    assert s.image.shape == (32, 32, 3) and s.depth.shape == (32, 32) and s.masks.shape[1:] == (32, 32)


def test_make_scene_and_errors():
    s = make_scene("red", "square", position="left")
    assert s.objects[0].center[0] < 32
    assert s.masks[0][32, int(s.objects[0].center[0])]
    with pytest.raises(ValueError, match="Unknown colour"):
        make_scene("pink", "square")
    with pytest.raises(ValueError, match="split"):
        World(split="test")


def test_sketch_is_rough_but_keeps_colour_and_place():
    s = make_scene("blue", "circle", background="white")
    sk = render_sketch(s, seed=1)
    assert sk.shape == s.image.shape and sk.dtype == np.uint8
    m = s.masks[0]
    # the fill is blueish where the object is, and uneven (strokes), unlike the flat original
    inside = sk[m].astype(float)
    assert inside[:, 2].mean() > inside[:, 0].mean() + 40
    assert inside.std(0).mean() > 10 and s.image[m].std(0).mean() < 10
    assert not np.array_equal(render_sketch(s, seed=1), render_sketch(s, seed=2))


def test_bundled_photos_load_offline():
    cat = load_photo("chelsea", size=64)
    assert cat.shape == (64, 64, 3) and cat.dtype == np.uint8
    left, disp = load_motorcycle(size=64)
    assert left.shape == (64, 64, 3) and disp.shape == (64, 64)
    assert np.isfinite(disp).mean() > 0.5
    with pytest.raises(ValueError, match="Unknown photo"):
        load_photo("dog")


def test_nearer_objects_are_drawn_larger():
    # perspective: the same object covers more pixels near the camera than far from it
    near = make_scene("red", "square", depth=0.2)
    far = make_scene("red", "square", depth=0.8)
    ratio = near.masks[0].sum() / far.masks[0].sum()
    assert 1.6 < ratio < 2.0, ratio  # (1.15 / 0.85) ** 2 = 1.83 in area
    # and size classes stay apart: the nearest small object is smaller than the farthest large one
    small_near = make_scene("red", "circle", size="small", depth=0.2).masks[0].sum()
    large_far = make_scene("red", "circle", size="large", depth=0.8).masks[0].sum()
    assert small_near < 0.7 * large_far


def test_repaint_object_changes_only_that_object():
    from sdlearn.data import repaint_object
    from sdlearn.judge import judge

    s = make_scene("red", "circle", second={"colour": "blue", "shape": "square", "depth": 0.4}, relation="left of")
    r = repaint_object(s, 0, colour="yellow", shape="triangle")
    assert (r.objects[0].colour, r.objects[0].shape) == ("yellow", "triangle")
    assert r.objects[1] == s.objects[1] and r.background == s.background
    assert "yellow triangle" in r.caption and "blue" in r.caption
    changed = (r.image != s.image).any(-1)
    assert changed.any() and not changed[s.masks[1]].any()  # the other object is untouched
    near = s.masks[0] | r.masks[0]
    near = np.any([np.roll(near, (dy, dx), (0, 1)) for dy in range(-2, 3) for dx in range(-2, 3)], axis=0)
    assert not changed[~near].any()  # and so is the background beyond either shape's (anti-aliased) outline
    left = r.image.copy(); left[:, 32:] = r.image[0, 0]
    assert judge(left).colour == "yellow" and judge(left).shape == "triangle"
    with pytest.raises(ValueError, match="out of range"):
        repaint_object(s, 2, colour="red")
    with pytest.raises(ValueError, match="Unknown shape"):
        repaint_object(s, 0, shape="star")
