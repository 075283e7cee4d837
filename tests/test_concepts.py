"""The customising lessons' new concepts: kept out of TinySD's world, drawn as asked, read by the judge."""
import hashlib

import numpy as np
import pytest

from sdlearn.data import World
from sdlearn.data.concepts import CONCEPTS, concept_images, draw
from sdlearn.judge import judge_concept

# sha256 of images, captions and masks of World(seed=3, split, p_two=0.5)[0:200], taken before the concepts
# existed: adding them must not change a single sample TinySD was trained or measured on.
WORLD_HASHES = {
    "train": "b789517ffe5f0f0c3c12c4b6c6dca1144d2c0dd29f8e82d81a9d13546be3793c",
    "heldout": "dd62a00c97e590baad6e82dd30d04a9e22b9956fc5efe4883d26e1c8c53e65f6",
    "all": "c0116f319976b60a013b8afc2d63927e1f34c3a25b4e88edf28edd9c676c89a4",
}


@pytest.mark.parametrize("split", sorted(WORLD_HASHES))
def test_world_samples_are_unchanged(split):
    h = hashlib.sha256()
    world = World(seed=3, split=split, p_two=0.5)
    for i in range(200):
        s = world[i]
        h.update(s.image.tobytes())
        h.update(s.caption.encode())
        h.update(s.masks.tobytes())
    assert h.hexdigest() == WORLD_HASHES[split]


def test_the_world_never_shows_a_concept():
    world = World(seed=11, split="all", p_two=0.5)
    words = {"star", "wide", "outlined", "striped", "sks", "badge"}
    for i in range(3000):
        s = world[i]
        assert not words & set(s.caption.split()), s.caption
        assert all(o.shape in ("circle", "square", "triangle") for o in s.objects)
    # and the judge finds none of them in the world's pictures
    verdicts = [judge_concept(world[i].image) for i in range(300)]
    assert not any(v.shape == "star" or v.outlined or v.badge or v.wide for v in verdicts)


@pytest.mark.parametrize("concept,check", [
    ("star", lambda v, o: v.shape == "star" and v.colour == o.colour),
    ("wide", lambda v, o: v.wide and v.shape == o.shape and v.colour == o.colour),
    ("outlined", lambda v, o: v.outlined and v.shape == o.shape and v.colour == o.colour),
    ("badge", lambda v, o: v.badge),
    ("filled", lambda v, o: not (v.wide or v.outlined or v.badge) and v.shape == o.shape and v.colour == o.colour),
])
def test_the_judge_reads_each_concept_on_ground_truth(concept, check):
    d = concept_images(concept, 300, seed=1)
    hits = np.mean([check(judge_concept(im), o) for im, o in zip(d.images, d.objects)])
    assert hits >= 0.97, hits


def test_concept_images_are_seeded_and_captioned():
    a, b = concept_images("star", 5, seed=4, word="<star>"), concept_images("star", 5, seed=4, word="<star>")
    assert np.array_equal(a.images, b.images) and a.captions == b.captions
    assert all(c.endswith(" <star>") for c in a.captions)
    assert concept_images("badge", 3).captions == ["a sks circle"] * 3
    assert concept_images("wide", 3, caption="a <thing>").captions == ["a <thing>"] * 3
    assert concept_images("wide", 2, size_px=96).images.shape == (2, 96, 96, 3)
    assert set(CONCEPTS) >= {"star", "wide", "badge"}


def test_bad_concepts_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="choose one of"):
        concept_images("hexagon", 3)
    with pytest.raises(ValueError, match="choose one of"):
        draw("pink", "star")
    with pytest.raises(ValueError, match="at least 1"):
        concept_images("star", 0)
