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
from .losses import clip_loss

__all__ = ["train_clip"]


def train_clip(run: Run, stage: ClipStage, accelerator, tokenizer) -> None:
    """Train TinySD's CLIP with in-batch negatives and one hard negative per image; save it to `<out>/clip/final`."""
    images, captions = make_dataset(stage.n_scenes, seed=run.seed + stage.data_seed)
    ids = tokenize(tokenizer, captions)
    rng = np.random.default_rng(run.seed + stage.negatives_seed)
    negative_ids = tokenize(tokenizer, [swap_attribute(c, rng) for c in captions])
    torch.manual_seed(run.seed + stage.init_seed)
    model = tinysd.make_clip()
    g = torch.Generator().manual_seed(run.seed + stage.generator_seed + accelerator.process_index)

    def step_fn(m, step):
        idx = torch.randint(0, len(images), (stage.batch,), generator=g)
        loss = clip_loss(m, to_pixels(images[idx.numpy()]), ids[idx], negative_ids[idx])
        return loss, loss.item()

    t0 = time.time()
    model, losses = run_stage(stage, run, accelerator, model, step_fn)
    model.save_pretrained(final_folder(run.out, stage.name))
    log_time(run.out, stage.name, time.time() - t0, final_loss=final_loss(losses, stage.loss_window))
