"""One training step of each TinySD component runs, and a few steps on one tiny batch lower its loss."""
import numpy as np
import pytest
import torch

from sdlearn import tinysd, train
from sdlearn.images import to_pixels
from sdlearn.train.exporting import fresh_folder


def _images_and_ids(n=8):
    images, captions = train.make_dataset(n, seed=0)
    return to_pixels(images), train.tokenize(tinysd.build_tokenizer(), captions)


def _fit(model, loss_fn, steps=8, lr=2e-3):
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = loss_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_clip_step_lowers_contrastive_loss():
    torch.manual_seed(0)
    pixels, ids = _images_and_ids()
    clip = tinysd.make_clip()
    # a small learning rate: on 8 pairs a large one collapses all embeddings to the chance loss ln 8
    losses = _fit(clip, lambda: train.clip_loss(clip, pixels, ids), steps=12, lr=1e-4)
    assert losses[-1] < 0.7 * losses[0]


def test_swap_attribute_changes_exactly_one_shape_or_colour():
    import numpy as np

    from sdlearn.data.world import COLOURS, SHAPES, SYNONYMS

    kind = {w: c for c in (*SHAPES, *COLOURS) for w in SYNONYMS.get(c, (c,))}
    rng = np.random.default_rng(0)
    _, captions = train.make_dataset(64, seed=1)
    for caption in captions:
        swapped = train.swap_attribute(caption, rng)
        a, b = caption.split(), swapped.split()
        changed = [(x, y) for x, y in zip(a, b) if x != y and x not in ("a", "an")]
        assert len(a) == len(b) and len(changed) == 1, (caption, swapped)
        (x, y), = changed
        assert kind[x] != kind[y] and (kind[x] in SHAPES) == (kind[y] in SHAPES)



def test_swap_colours_exchanges_the_two_objects_colours():
    import numpy as np

    from sdlearn.train.captions import KIND_OF_WORD
    from sdlearn.train.clip import hard_negative

    assert train.swap_colours("a red circle left of a blue box") == "a blue circle left of a red box"
    assert train.swap_colours("a big orange disc above a red square") == "a big red disc above an orange square"
    assert train.swap_colours("a violet box above a purple circle") is None  # same colour, two words
    assert train.swap_colours("a drawing of a red triangle") is None
    _, captions = train.make_dataset(64, seed=1)
    two = [c for c in captions if train.swap_colours(c) is not None]
    assert two, "the dataset should hold two-colour captions"
    for c in two:
        swapped = train.swap_colours(c)
        colours = lambda t: [KIND_OF_WORD[w][1] for w in t.split() if KIND_OF_WORD.get(w, ("",))[0] == "colour"]
        assert colours(swapped) == colours(c)[::-1] and swapped != c
        assert hard_negative(c, np.random.default_rng(0), colour_swap=1.0) == swapped
    # off: exactly the old negatives, drawn from the same generator
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    assert [hard_negative(c, a) for c in captions] == [train.swap_attribute(c, b) for c in captions]

def test_clip_loss_with_hard_negatives():
    torch.manual_seed(0)
    pixels, ids = _images_and_ids(4)
    clip = tinysd.make_clip()
    negatives = ids.flip(0)
    plain, hard = train.clip_loss(clip, pixels, ids), train.clip_loss(clip, pixels, ids, negatives)
    # more captions to choose from: the image->text half of the loss can only grow
    assert hard > plain


def test_vae_step_lowers_reconstruction_loss():
    torch.manual_seed(0)
    pixels, _ = _images_and_ids(4)
    vae = tinysd.make_vae()
    losses = _fit(vae, lambda: train.vae_loss(vae, pixels, torch.Generator().manual_seed(0))[1], steps=10)
    assert losses[-1] < 0.7 * losses[0]


def test_edge_weights_mark_only_the_outline():
    from sdlearn.data import make_scene

    scene = make_scene("red", "square", size="large", background="white")
    pixels = to_pixels(scene.image[None])
    w = train.edge_weights(pixels, 20.0)[0, 0].numpy()
    assert w.min() == 1.0 and w.max() == 21.0
    edge = w > 1
    # the outline of the square is weighted, its inside and the far background are not
    cx, cy = (int(v) for v in scene.objects[0].center)
    assert not edge[cy, cx] and not edge[0, 0]
    assert edge[scene.masks[0]].mean() < 0.5 and edge.any(axis=0).sum() > 10
    assert edge.sum() < 0.25 * edge.size


def test_edge_weighted_vae_loss_counts_a_wrong_outline_more():
    torch.manual_seed(0)
    pixels, _ = _images_and_ids(2)
    vae = tinysd.make_vae()
    plain, plain_mse = train.vae_loss(vae, pixels, torch.Generator().manual_seed(0))
    weighted, weighted_mse = train.vae_loss(vae, pixels, torch.Generator().manual_seed(0), edge_weight=20.0)
    assert torch.allclose(plain_mse, weighted_mse)  # the reported MSE stays the plain one
    assert not torch.allclose(plain, weighted)


def test_locality_gap_measures_what_a_hole_does_outside_it_and_training_shrinks_it():
    torch.manual_seed(0)
    pixels, _ = _images_and_ids(4)
    vae = tinysd.make_vae()
    holes = torch.zeros(4, 1, 64, 64)
    with torch.no_grad():
        z = vae.encode(pixels).latent_dist.mean
        assert train.locality_gap(vae, pixels, holes, z).item() < 1e-10  # no hole, nothing moves
    holes[:, :, 8:40, 16:48] = 1
    gap = lambda: train.locality_gap(vae, pixels, holes, vae.encode(pixels).latent_dist.mean.detach())
    losses = _fit(vae, gap, steps=10)
    assert losses[0] > 1e-3
    assert losses[-1] < 0.5 * losses[0]
    with pytest.raises(ValueError, match="holes"):
        train.vae_loss(vae, pixels, torch.Generator(), local_weight=0.1)
    loss, mse = train.vae_loss(vae, pixels, torch.Generator().manual_seed(0), holes=holes, local_weight=0.1)
    plain, plain_mse = train.vae_loss(vae, pixels, torch.Generator().manual_seed(0))
    assert torch.allclose(mse, plain_mse) and loss > plain


def test_unet_step_lowers_noise_prediction_loss():
    torch.manual_seed(0)
    unet = tinysd.make_unet()
    latents = torch.randn(4, 4, 8, 8)
    states = torch.randn(4, 77, tinysd.TEXT_DIM)
    abar = tinysd.shipped_scheduler().alphas_cumprod
    # the same noise and timesteps every step, so the loss is comparable across steps
    losses = _fit(unet, lambda: train.unet_loss(unet, latents, states, abar, torch.Generator().manual_seed(0)))
    assert losses[-1] < 0.8 * losses[0]


def test_weight_map_restricts_the_loss_to_the_weighted_positions():
    torch.manual_seed(0)
    unet = tinysd.make_unet().eval()
    latents = torch.randn(2, 4, 8, 8)
    states = torch.randn(2, 77, tinysd.TEXT_DIM)
    abar = tinysd.shipped_scheduler().alphas_cumprod
    loss = lambda **kw: train.unet_loss(unet, latents, states, abar, torch.Generator().manual_seed(1),
                                        min_snr_gamma=None, **kw)
    with torch.no_grad():
        plain, ones = loss(), loss(weight_map=torch.ones(2, 1, 8, 8))
        right = torch.zeros(2, 1, 8, 8)
        right[..., 4:] = 1
        only_right = loss(weight_map=right)
        # the same draws by hand: the squared error on the right half only
        g = torch.Generator().manual_seed(1)
        noise = torch.randn(latents.shape, generator=g)
        t = torch.randint(0, len(abar), (2,), generator=g)
        a = abar[t].view(-1, 1, 1, 1)
        pred = unet(a.sqrt() * latents + (1 - a).sqrt() * noise, t, encoder_hidden_states=states).sample
        by_hand = ((pred - noise) ** 2)[..., 4:].mean()
    assert torch.allclose(plain, ones)
    assert torch.allclose(only_right, by_hand, rtol=1e-5)


def test_min_snr_weighting_only_lowers_the_weight_of_nearly_clean_steps():
    torch.manual_seed(0)
    unet = tinysd.make_unet()
    latents, states = torch.randn(64, 4, 8, 8), torch.randn(64, 77, tinysd.TEXT_DIM)
    abar = tinysd.shipped_scheduler().alphas_cumprod
    with torch.no_grad():
        plain = train.unet_loss(unet, latents, states, abar, torch.Generator().manual_seed(1), min_snr_gamma=None)
        huge = train.unet_loss(unet, latents, states, abar, torch.Generator().manual_seed(1), min_snr_gamma=1e9)
        weighted = train.unet_loss(unet, latents, states, abar, torch.Generator().manual_seed(1), min_snr_gamma=5.0)
        # only noisy steps (SNR < 1, weight 1) in the schedule's tail: the weighting changes nothing there
        noisy = abar.clone()
        noisy[:] = abar[-1]
        tail_plain = train.unet_loss(unet, latents, states, noisy, torch.Generator().manual_seed(2), min_snr_gamma=None)
        tail_weighted = train.unet_loss(unet, latents, states, noisy, torch.Generator().manual_seed(2), min_snr_gamma=5.0)
    assert torch.isclose(plain, huge)  # a gamma above every SNR is the plain mean
    assert weighted < plain  # weights are at most 1, below 1 for nearly clean latents
    assert torch.isclose(tail_plain, tail_weighted)


def test_caption_states_encoded_once_equal_encoding_per_batch():
    from transformers import CLIPTextModel

    tokenizer = tinysd.build_tokenizer()
    text_encoder = CLIPTextModel(tinysd.clip_config().text_config).eval()
    captions = ["a red circle", "a big violet disc on the left", "", "a blue box above a green square", "a red circle"]
    ids = train.tokenize(tokenizer, captions)
    once = train.encode_captions(text_encoder, ids, batch=3)
    with torch.no_grad():
        direct = text_encoder(ids[[3, 1, 0]]).last_hidden_state
    assert once.shape == (5, 77, tinysd.TEXT_DIM)
    assert torch.allclose(once[[3, 1, 0]], direct, atol=1e-5)
    assert torch.equal(once[4], once[0])  # a repeated caption gets its first copy's states


def test_export_refuses_to_overwrite(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    try:
        train.export(tmp_path / "run", target)
    except FileExistsError as e:
        assert "--overwrite" in str(e)
    else:
        raise AssertionError("export overwrote a non-empty folder")
    assert (target / "keep.txt").read_text() == "mine"


def test_overwriting_export_keeps_the_model_card(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "README.md").write_text("# my card")
    (target / "old.bin").write_text("stale")
    fresh_folder(target, overwrite=True)
    assert sorted(p.name for p in target.iterdir()) == ["README.md"]
    assert (target / "README.md").read_text() == "# my card"


def test_drop_attribute_leaves_out_exactly_one_word_of_the_kind():
    import numpy as np

    from sdlearn.data.world import COLOURS, SHAPES, SYNONYMS

    words_of = {kind: {w for c in names for w in SYNONYMS.get(c, (c,))} for kind, names in (("colour", COLOURS), ("shape", SHAPES))}
    rng = np.random.default_rng(0)
    _, captions = train.make_dataset(64, seed=2)
    for caption in captions:
        for kind in ("colour", "shape"):
            dropped = train.drop_attribute(caption, rng, kind).split()
            before = caption.split()
            assert len(dropped) == len(before) - 1
            count = lambda ws: sum(w in words_of[kind] for w in ws)
            assert count(dropped) == count(before) - 1
            other = "shape" if kind == "colour" else "colour"
            assert count(dropped) >= 0 and sum(w in words_of[other] for w in dropped) == sum(w in words_of[other] for w in before)
    assert train.drop_attribute("an orange square", rng, "colour") == "a square"
    assert train.drop_attribute("a big red circle on the left", rng, "colour") == "a big circle on the left"


def test_colour_boost_replaces_the_last_share_with_scenes_holding_that_colour():
    from sdlearn.data.world import HELD_OUT

    scenes = train.make_scenes(200, seed=4, p_two=0.5)
    boosted = train.with_colour_boost(scenes, "orange", 0.25, seed=4, p_two=0.5, chunk=50)
    assert len(boosted) == 200 and all(a is b for a, b in zip(boosted[:150], scenes[:150]))
    assert all(any(o.colour == "orange" for o in s.objects) for s in boosted[150:])
    assert not any((o.colour, o.shape) in HELD_OUT for s in boosted for o in s.objects)
    has = lambda ss: sum(any(o.colour == "orange" for o in s.objects) for s in ss)
    assert has(boosted) > has(scenes) + 25  # some of the replaced scenes held orange already
    assert train.with_colour_boost(scenes, "orange", 0.0, seed=4) is scenes
    with pytest.raises(ValueError, match="colour must be one of"):
        train.with_colour_boost(scenes, "teal", 0.2, seed=4)


def test_bad_weights_get_a_clear_error():
    with pytest.raises(ValueError, match="must be >= 0"):
        train.edge_weights(torch.zeros(1, 3, 8, 8), -1.0)
    unet = tinysd.make_unet()
    abar = tinysd.shipped_scheduler().alphas_cumprod
    with pytest.raises(ValueError, match="weight_map must have shape"):
        train.unet_loss(unet, torch.randn(2, 4, 8, 8), torch.randn(2, 77, tinysd.TEXT_DIM), abar,
                        torch.Generator().manual_seed(0), weight_map=torch.ones(2, 8, 8))


def test_hole_captions_name_only_the_masked_object():
    from sdlearn.data import World
    from sdlearn.judge import parse_prompt
    from sdlearn.train import hole_captions, random_masks

    scenes = World(seed=5, split="train", p_two=1.0).batch(0, 40)
    masks, which = random_masks(scenes, torch.Generator().manual_seed(0))
    assert len(which) == len(scenes) and -1 in which and 0 in which and 1 in which
    captions = hole_captions(scenes, which, seed=0)
    for s, k, m, caption in zip(scenes, which, masks, captions):
        if k < 0:
            assert caption is None
            continue
        assert m[0][torch.from_numpy(s.masks[k])].all()  # the hole covers the named object
        asked = parse_prompt(caption)
        assert (asked["colour"], asked["shape"]) == (s.objects[k].colour, s.objects[k].shape)
        assert " of " not in caption and " above " not in caption  # no relation, so no second object


def test_x0_term_counts_only_the_marked_positions_and_grows_with_noise():
    from types import SimpleNamespace

    abar = tinysd.shipped_scheduler().alphas_cumprod
    latents = torch.randn(4, 4, 8, 8)

    def half_right_unet(noisy, t, encoder_hidden_states):
        """Predicts the noise exactly in the left half of each latent, zero in the right half."""
        a = abar[t].view(-1, 1, 1, 1)
        eps = (noisy - a.sqrt() * latents) / (1 - a).sqrt()
        eps[..., 4:] = 0
        return SimpleNamespace(sample=eps)

    left, right = torch.zeros(4, 1, 8, 8), torch.zeros(4, 1, 8, 8)
    left[..., :4], right[..., 4:] = 1, 1
    loss = lambda **kw: train.unet_loss(half_right_unet, latents, None, abar, torch.Generator().manual_seed(0), **kw)
    plain = loss()
    assert torch.allclose(loss(x0_map=left, x0_weight=1.0), plain)  # exact where marked: adds nothing
    assert loss(x0_map=right, x0_weight=1.0) > plain + 0.1
    assert torch.allclose(loss(x0_map=right, x0_weight=0.0), plain)
    # the same noise error is a larger x0 error the noisier the step: err / SNR
    at = lambda t: train.unet_loss(half_right_unet, latents, None, abar[[t]].expand(1000), torch.Generator().manual_seed(0),
                                   x0_map=right, x0_weight=1.0) - train.unet_loss(half_right_unet, latents, None,
                                   abar[[t]].expand(1000), torch.Generator().manual_seed(0))
    assert at(990) > 50 * at(100)


def test_object_words_finds_each_objects_own_size_colour_and_shape_words():
    from sdlearn.data import World
    from sdlearn.train.grounding import object_words

    tok = tinysd.build_tokenizer()
    scene = next(s for s in World(seed=5, p_two=1.0).batch(0, 20) if "big" in s.caption or "large" in s.caption)
    ids = tok(scene.caption).input_ids
    found = object_words(scene.caption, scene.objects, scene.relation, tok)
    for obj, positions in zip(scene.objects, found):
        words = {tok.decode([ids[i]]).strip() for i in positions}
        assert len(positions) == 3 and any(w in words for w in ("big", "large", "small", "tiny")), (scene.caption, words)
    assert not set(found[0]) & set(found[1])
    # a partial caption (a word left out) simply lacks it
    partial = scene.caption.replace(" " + scene.caption.split()[-1], "")
    assert sum(map(len, object_words(partial, scene.objects, scene.relation, tok))) <= 6


def test_grounding_loss_is_zero_for_attention_on_the_right_words_and_teaches_it():
    from sdlearn.train.grounding import grounding_loss

    class Store:
        probs = []

    coverage = torch.zeros(1, 2, 4, 4)
    coverage[0, 0, :, :2], coverage[0, 1, :, 3] = 1.0, 1.0  # background: column 2
    words = torch.zeros(1, 2, 6)
    words[0, 0, 1], words[0, 1, 3] = 1, 1
    right = torch.zeros(1, 16, 6)
    grid = right.view(1, 4, 4, 6)
    grid[:, :, :2, 1], grid[:, :, 3, 3], grid[:, :, 2, 0] = 1, 1, 1
    Store.probs = [(right, 1)]
    assert grounding_loss(Store, coverage, words, torch.ones(1)).item() == 0
    logits = torch.zeros(1, 16, 6, requires_grad=True)
    flat = grounding_loss(type("S", (), {"probs": [(logits.softmax(-1), 1)]}), coverage, words, torch.ones(1))
    assert flat.item() > 0.5
    flat.backward()
    assert logits.grad.view(4, 4, 6)[0, 0, 1] < 0  # more attention on the object's own word lowers the loss
    none = grounding_loss(type("S", (), {"probs": [(logits.softmax(-1), 1)]}), coverage, words, torch.zeros(1))
    assert none.item() == 0  # empty-prompt samples are left out


def test_word_terms_teach_the_states_to_name_their_words_and_their_objects():
    from sdlearn.train.clip import ClipWithWordHead, attribute_labels, word_classes

    torch.manual_seed(0)
    tok = tinysd.build_tokenizer()
    scenes = train.make_scenes(8, seed=0, p_two=1.0)
    captions = [s.caption for s in scenes]
    pixels, ids = to_pixels(np.stack([s.image for s in scenes])), train.tokenize(tok, captions)
    index, n_words = word_classes(ids, tok)
    colour_of, shape_of = attribute_labels(scenes, captions, tok)
    assert 5 < n_words < 60 and (index[ids[:, 0]] == -100).all()
    # the second object's colour word is labelled with the second object's colour
    second = scenes[0].objects[1]
    from sdlearn.data import COLOURS

    assert (colour_of[0] == list(COLOURS).index(second.colour)).sum() >= 2
    model = ClipWithWordHead(tinysd.make_clip(), n_words)
    for k in (1, 2):
        losses = _fit(model, lambda: model(pixels, ids, None, index, colour_of, shape_of)[k], steps=10, lr=5e-3)
        assert losses[-1] < 0.6 * losses[0], (k, losses)


def test_pickers_say_which_caption_each_sample_got():
    from sdlearn.train.unet import ALTERNATIVE, CAPTION, EMPTY, partial_or_empty

    text, partial, empty = torch.zeros(100, 2, 3), torch.ones(100, 2, 3), torch.full((2, 3), 7.0)
    states, which = partial_or_empty(text, partial, empty, 0.3)(torch.arange(100), torch.Generator().manual_seed(0))
    for value, kind in ((0.0, CAPTION), (1.0, ALTERNATIVE), (7.0, EMPTY)):
        assert ((states[:, 0, 0] == value) == (which == kind)).all() and (which == kind).any()


def test_vae_decoder_stage_trains_only_the_decoder_and_exports_a_vae_diffusers_loads(tmp_path):
    import dataclasses

    from diffusers import AutoencoderKL

    from sdlearn.train.cli import make_parser, new_accelerator, stages_from_args
    from sdlearn.train.config import Run
    from sdlearn.train.exporting import export_vae_decoder
    from sdlearn.train.vae_decoder import train_vae_decoder

    torch.manual_seed(0)
    start = tinysd.make_vae()
    start.save_pretrained(tmp_path / "start")
    args = make_parser().parse_args(["--stages", "vae_decoder", "--vae-decoder-steps", "6", "--vae-decoder-lr", "1e-3",
                                     "--vae-decoder-init", str(tmp_path / "start")])
    stage = dataclasses.replace(stages_from_args(args)["vae_decoder"], n_scenes=8, n_per_concept=2, batch=4)
    assert (stage.steps, stage.lr, stage.init) == (6, 1e-3, str(tmp_path / "start"))  # the flags reach the stage
    run = Run(out=str(tmp_path / "run"))
    train_vae_decoder(run, stage, new_accelerator())
    assert export_vae_decoder(run.out, tmp_path / "tinysd") == [tmp_path / "tinysd-vae-ft"]
    tuned = AutoencoderKL.from_pretrained(tmp_path / "tinysd-vae-ft")
    for a, b in zip(start.encoder.parameters(), tuned.encoder.parameters()):
        assert torch.equal(a, b)  # the latents the U-Net learned on stay what they were
    moved = [not torch.equal(a, b) for a, b in zip(start.decoder.parameters(), tuned.decoder.parameters())]
    assert sum(moved) > 0.5 * len(moved)
    assert (tmp_path / "run" / "vae_decoder" / "checkpoint" / "step.json").exists()  # resumable


def test_vae_decoder_stage_without_a_vae_says_where_to_start(tmp_path):
    from sdlearn.train.cli import main

    with pytest.raises(FileNotFoundError, match="--vae-decoder-init"):
        main(["--out", str(tmp_path / "run"), "--stages", "vae_decoder", "--vae-decoder-steps", "2"])


def test_controlnet_stage_trains_beside_a_frozen_unet_and_exports_a_folder_diffusers_loads(tmp_path):
    import dataclasses
    import json

    from diffusers import ControlNetModel
    from tiny_models import write_tiny_sd

    from sdlearn.train.cli import make_parser, new_accelerator, stages_from_args
    from sdlearn.train.config import Run
    from sdlearn.train.controlnet import train_controlnet
    from sdlearn.train.exporting import export_controlnet, unet_hash

    base = write_tiny_sd(tmp_path / "base")
    before = (base / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    args = make_parser().parse_args(["--stages", "controlnet", "--controlnet-steps", "4", "--controlnet-lr", "1e-2",
                                     "--controlnet-base", str(base)])
    stage = dataclasses.replace(stages_from_args(args)["controlnet"], n_scenes=6, batch=2, warmup=1)
    assert (stage.steps, stage.lr, stage.base) == (4, 1e-2, str(base))  # the flags reach the stage
    run = Run(out=str(tmp_path / "run"), ckpt_every=2)
    train_controlnet(run, stage, new_accelerator(), tinysd.build_tokenizer())
    assert export_controlnet(run.out, tmp_path / "tinysd", base=base) == [tmp_path / "tinysd-controlnet-edges"]
    cn = ControlNetModel.from_pretrained(tmp_path / "tinysd-controlnet-edges")
    assert all(float(c.weight.detach().abs().max()) > 0 for c in cn.controlnet_down_blocks)  # the zero convolutions moved
    assert (base / "unet" / "diffusion_pytorch_model.safetensors").read_bytes() == before  # the U-Net did not
    recorded = json.loads((tmp_path / "tinysd-controlnet-edges" / "base.json").read_text())
    assert recorded["base_unet_sha256"] == unet_hash(base)
    assert json.loads((tmp_path / "run" / "controlnet" / "checkpoint" / "step.json").read_text())["step"] == 4


def test_controlnet_stage_without_a_model_says_what_to_pass(tmp_path):
    from sdlearn.train.cli import main

    with pytest.raises(FileNotFoundError, match="--controlnet-base"):
        main(["--out", str(tmp_path / "run"), "--stages", "controlnet", "--controlnet-steps", "2"])


def test_curriculum_moves_the_two_object_share_and_the_weight_from_start_to_end():
    from sdlearn.train.unet import curriculum_draw, ramp

    w = ramp(0.2, 0.8, 101)
    assert w(0) == 0.2 and abs(w(50) - 0.5) < 1e-9 and abs(w(100) - 0.8) < 1e-9 and abs(w(500) - 0.8) < 1e-9
    is_two = [i % 4 == 0 for i in range(400)]  # a quarter of the scenes hold two objects
    draw = curriculum_draw(is_two, batch=2000, p_two=ramp(0.1, 0.9, 11))
    g = torch.Generator().manual_seed(0)
    share = [float(torch.tensor(is_two)[draw(step, g)].float().mean()) for step in (0, 5, 10)]
    assert abs(share[0] - 0.1) < 0.03 and abs(share[1] - 0.5) < 0.04 and abs(share[2] - 0.9) < 0.03, share
    with pytest.raises(ValueError, match="both one- and two-object"):
        curriculum_draw([True] * 10, batch=4, p_two=ramp(0.5, 0.9, 10))


def test_the_defaults_are_the_v1_recipe_and_the_curriculum_flags_reach_the_unet_stage():
    from sdlearn.train.cli import make_parser, stages_from_args

    stages = stages_from_args(make_parser().parse_args([]))
    unet, clip = stages["unet"], stages["clip"]
    assert (unet.steps, unet.p_two, unet.p_two_end) == (10000, 0.5, 0.9)
    assert (unet.grounding_weight, unet.grounding_weight_end, unet.boost_share, unet.boost_colour) == (0.2, 0.8, 0.2, "orange")
    assert (clip.steps, clip.identity_weight, clip.attribute_weight, clip.colour_swap) == (1800, 1.0, 1.0, 0.0)
    assert (stages["unet_depth"].steps, stages["unet_inpaint"].steps) == (1800, 3600)  # v1.0's variants
    both = stages_from_args(make_parser().parse_args(["--variant-unet-steps", "7"]))
    assert (both["unet_depth"].steps, both["unet_inpaint"].steps) == (7, 7)
    args = make_parser().parse_args(["--p-two", "0.3", "--p-two-end", "0.3", "--grounding-weight", "0",
                                     "--grounding-weight-end", "0"])
    unet = stages_from_args(args)["unet"]
    assert (unet.p_two, unet.p_two_end, unet.grounding_weight, unet.grounding_weight_end) == (0.3, 0.3, 0.0, 0.0)
    assert unet.ramp_fraction == 1.0
    assert stages_from_args(make_parser().parse_args(["--ramp-fraction", "0.6"]))["unet"].ramp_fraction == 0.6


def test_a_ramp_over_part_of_the_run_holds_its_end_value_and_a_bad_fraction_is_refused(tmp_path):
    import dataclasses

    from sdlearn.train.config import Run, UNetStage
    from sdlearn.train.unet import ramp, train_unet

    w = ramp(0.2, 0.8, 60)  # what a 100-step run with --ramp-fraction 0.6 uses
    assert w(0) == pytest.approx(0.2) and w(59) == pytest.approx(0.8)
    assert w(80) == pytest.approx(0.8) and w(99) == pytest.approx(0.8)
    for bad in (0.0, 1.5):
        stage = dataclasses.replace(UNetStage(), p_two_end=0.9, ramp_fraction=bad)
        with pytest.raises(ValueError, match="ramp-fraction"):
            train_unet(Run(out=str(tmp_path / "run")), stage, None, None)


def test_unet_stage_runs_with_a_curriculum_and_saves_a_unet_diffusers_loads(tmp_path):
    import dataclasses

    from diffusers import UNet2DConditionModel

    from sdlearn.train.cli import make_parser, new_accelerator, stages_from_args
    from sdlearn.train.config import Run
    from sdlearn.train.loop import final_folder
    from sdlearn.train.unet import train_unet

    torch.manual_seed(0)
    run = Run(out=str(tmp_path / "run"))
    tinysd.make_vae().save_pretrained(final_folder(run.out, "vae"))
    tinysd.make_clip().save_pretrained(final_folder(run.out, "clip"))
    args = make_parser().parse_args(["--unet-steps", "2", "--p-two", "0.3", "--p-two-end", "0.9",
                                     "--grounding-weight", "0.1", "--grounding-weight-end", "0.5"])
    stage = dataclasses.replace(stages_from_args(args)["unet"], n_scenes=40, batch=2, warmup=1)
    train_unet(run, stage, new_accelerator(), tinysd.build_tokenizer())
    unet = UNet2DConditionModel.from_pretrained(final_folder(run.out, "unet"))
    assert unet.config.cross_attention_dim == tinysd.make_unet().config.cross_attention_dim


def test_end_values_equal_to_the_start_train_exactly_as_without_a_curriculum(tmp_path):
    import dataclasses

    from safetensors.torch import load_file

    from sdlearn.train.cli import new_accelerator
    from sdlearn.train.config import Run, UNetStage
    from sdlearn.train.loop import final_folder
    from sdlearn.train.unet import train_unet

    torch.manual_seed(0)
    vae, clip = tinysd.make_vae(), tinysd.make_clip()
    base = dataclasses.replace(UNetStage(), steps=2, n_scenes=40, batch=2, warmup=1, p_two=0.3, grounding_weight=0.1)
    weights = []
    for name, ends in (("none", dict(p_two_end=None, grounding_weight_end=None)),
                       ("equal", dict(p_two_end=0.3, grounding_weight_end=0.1))):
        run = Run(out=str(tmp_path / name))
        vae.save_pretrained(final_folder(run.out, "vae"))
        clip.save_pretrained(final_folder(run.out, "clip"))
        train_unet(run, dataclasses.replace(base, **ends), new_accelerator(), tinysd.build_tokenizer())
        weights.append(load_file(str(final_folder(run.out, "unet") / "diffusion_pytorch_model.safetensors")))
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
