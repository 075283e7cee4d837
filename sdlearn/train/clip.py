"""Stage 1: CLIP, trained contrastively on (image, caption) pairs; its text tower becomes the frozen text encoder."""
from __future__ import annotations

import time

import numpy as np
import torch

from .. import tinysd
from ..images import to_pixels
from .captions import swap_attribute
from .config import ClipStage, Run
from .data import make_dataset, tokenize
from .loop import final_folder, final_loss, log_time, run_stage
from .losses import clip_loss, word_identity_loss

__all__ = ["train_clip", "ClipWithWordHead", "word_classes"]


class ClipWithWordHead(torch.nn.Module):
    """CLIP and the linear head of the word-identity term, trained together (the head is thrown away)."""

    def __init__(self, clip, n_words: int):
        super().__init__()
        self.clip = clip
        self.head = torch.nn.Linear(clip.config.text_config.hidden_size, n_words)

    def forward(self, pixels, input_ids, negative_ids, word_index):
        """(contrastive loss, word-identity loss) of a batch; through `forward` so that Accelerate sees it."""
        loss, states = clip_loss(self.clip, pixels, input_ids, negative_ids, return_text_states=True)
        return loss, word_identity_loss(states, input_ids, self.head, word_index)


def word_classes(ids: torch.Tensor, tokenizer) -> tuple[torch.Tensor, int]:
    """Each token id's class among the words the captions use (-100 for start, end, padding and unused ids)."""
    words = sorted(set(ids.flatten().tolist()) - {tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id})
    index = torch.full((len(tokenizer),), -100, dtype=torch.long)
    index[words] = torch.arange(len(words))
    return index, len(words)


def train_clip(run: Run, stage: ClipStage, accelerator, tokenizer) -> None:
    """Train TinySD's CLIP with in-batch negatives and one hard negative per image, and with `stage.identity_weight`
    the word-identity term (`word_identity_loss`); save it to `<out>/clip/final`."""
    images, captions = make_dataset(stage.n_scenes, seed=run.seed + stage.data_seed)
    ids = tokenize(tokenizer, captions)
    rng = np.random.default_rng(run.seed + stage.negatives_seed)
    negative_ids = tokenize(tokenizer, [swap_attribute(c, rng) for c in captions])
    torch.manual_seed(run.seed + stage.init_seed)
    model = tinysd.make_clip()
    word_index, n_words = word_classes(ids, tokenizer)
    if stage.identity_weight > 0:
        model = ClipWithWordHead(model, n_words)
    g = torch.Generator().manual_seed(run.seed + stage.generator_seed + accelerator.process_index)

    def step_fn(m, step):
        idx = torch.randint(0, len(images), (stage.batch,), generator=g)
        pixels = to_pixels(images[idx.numpy()])
        if stage.identity_weight == 0:
            loss = clip_loss(m, pixels, ids[idx], negative_ids[idx])
            return loss, loss.item()
        loss, identity = m(pixels, ids[idx], negative_ids[idx], word_index)
        return loss + stage.identity_weight * identity, loss.item()

    t0 = time.time()
    model, losses = run_stage(stage, run, accelerator, model, step_fn)
    if isinstance(model, ClipWithWordHead):
        model = model.clip
    model.save_pretrained(final_folder(run.out, stage.name))
    log_time(run.out, stage.name, time.time() - t0, final_loss=final_loss(losses, stage.loss_window))
