"""Stage 1: CLIP, trained contrastively on (image, caption) pairs; its text tower becomes the frozen text encoder."""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from .. import tinysd
from ..data import COLOURS, SHAPES
from ..images import to_pixels
from .captions import swap_attribute, swap_colours
from .config import ClipStage, Run
from .data import make_scenes, tokenize
from .grounding import object_words
from .loop import final_folder, final_loss, log_time, run_stage
from .losses import clip_loss, word_identity_loss

__all__ = ["train_clip", "hard_negative", "ClipWithWordHead", "word_classes", "attribute_labels"]


class ClipWithWordHead(torch.nn.Module):
    """CLIP and the linear heads of the word terms, trained together (the heads are thrown away).

    `head` names each word from its output state (the word-identity term); `attribute_head` names, from the
    state of every word that describes an object, that object's colour and shape (the attribute term). The
    text encoder is causal, so a shape word can see its own object's colour before it; the attribute term asks
    it to keep that colour, and not the other object's.
    """

    def __init__(self, clip, n_words: int):
        super().__init__()
        width = clip.config.text_config.hidden_size
        self.clip = clip
        self.head = torch.nn.Linear(width, n_words)
        self.attribute_head = torch.nn.Linear(width, len(COLOURS) + len(SHAPES))

    def forward(self, pixels, input_ids, negative_ids, word_index, colour_of, shape_of):
        """(contrastive, word-identity, attribute) losses of a batch; through `forward` so that Accelerate sees it.

        colour_of, shape_of: (B, 77) the colour / shape index of the object each word describes, -100 elsewhere.
        """
        loss, states = clip_loss(self.clip, pixels, input_ids, negative_ids, return_text_states=True)
        a = self.attribute_head(states)
        attributes = (F.cross_entropy(a[..., : len(COLOURS)].flatten(0, 1), colour_of.flatten(), ignore_index=-100)
                      + F.cross_entropy(a[..., len(COLOURS) :].flatten(0, 1), shape_of.flatten(), ignore_index=-100))
        return loss, word_identity_loss(states, input_ids, self.head, word_index), attributes


def attribute_labels(scenes, captions, tokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 77) colour and shape indices of the object each caption word describes (-100 where none)."""
    colour_of = torch.full((len(scenes), tokenizer.model_max_length), -100, dtype=torch.long)
    shape_of = colour_of.clone()
    for i, (scene, caption) in enumerate(zip(scenes, captions)):
        for obj, positions in zip(scene.objects, object_words(caption, scene.objects, scene.relation, tokenizer)):
            colour_of[i, positions] = list(COLOURS).index(obj.colour)
            shape_of[i, positions] = SHAPES.index(obj.shape)
    return colour_of, shape_of


def word_classes(ids: torch.Tensor, tokenizer) -> tuple[torch.Tensor, int]:
    """Each token id's class among the words the captions use (-100 for start, end, padding and unused ids)."""
    words = sorted(set(ids.flatten().tolist()) - {tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id})
    index = torch.full((len(tokenizer),), -100, dtype=torch.long)
    index[words] = torch.arange(len(words))
    return index, len(words)


def hard_negative(caption: str, rng: np.random.Generator, colour_swap: float = 0.0) -> str:
    """A caption's hard negative: with probability `colour_swap` (for captions with two different colours) the
    caption with the colours exchanged (`swap_colours`), otherwise one shape or colour word changed
    (`swap_attribute`). With colour_swap 0 the generator is used exactly as before the option existed."""
    if colour_swap > 0:
        swapped = swap_colours(caption)
        if swapped is not None and rng.random() < colour_swap:
            return swapped
    return swap_attribute(caption, rng)


def train_clip(run: Run, stage: ClipStage, accelerator, tokenizer) -> None:
    """Train TinySD's CLIP with in-batch negatives and one hard negative per image, and with `stage.identity_weight`
    / `stage.attribute_weight` the word terms of `ClipWithWordHead`; save it to `<out>/clip/final`."""
    words_on = stage.identity_weight > 0 or stage.attribute_weight > 0
    scenes = make_scenes(stage.n_scenes, seed=run.seed + stage.data_seed)
    images, captions = np.stack([s.image for s in scenes]), [s.caption for s in scenes]
    ids = tokenize(tokenizer, captions)
    colour_of, shape_of = attribute_labels(scenes, captions, tokenizer) if words_on else (None, None)
    del scenes
    rng = np.random.default_rng(run.seed + stage.negatives_seed)
    negative_ids = tokenize(tokenizer, [hard_negative(c, rng, stage.colour_swap) for c in captions])
    torch.manual_seed(run.seed + stage.init_seed)
    model = tinysd.make_clip()
    word_index, n_words = word_classes(ids, tokenizer)
    if words_on:
        model = ClipWithWordHead(model, n_words)
    g = torch.Generator().manual_seed(run.seed + stage.generator_seed + accelerator.process_index)

    def step_fn(m, step):
        idx = torch.randint(0, len(images), (stage.batch,), generator=g)
        pixels = to_pixels(images[idx.numpy()])
        if not words_on:
            loss = clip_loss(m, pixels, ids[idx], negative_ids[idx])
            return loss, loss.item()
        loss, identity, attributes = m(pixels, ids[idx], negative_ids[idx], word_index, colour_of[idx], shape_of[idx])
        return loss + stage.identity_weight * identity + stage.attribute_weight * attributes, loss.item()

    t0 = time.time()
    model, losses = run_stage(stage, run, accelerator, model, step_fn)
    if isinstance(model, ClipWithWordHead):
        model = model.clip
    model.save_pretrained(final_folder(run.out, stage.name))
    log_time(run.out, stage.name, time.time() - t0, final_loss=final_loss(losses, stage.loss_window))
