"""Stage 4: the depth estimator of depth-to-image, a small DPT trained on the world's depths."""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from .. import tinysd
from ..depth import nearness
from ..images import to_pixels
from .config import DepthStage, Run
from .data import scenes
from .loop import final_folder, final_loss, log_time, run_stage

__all__ = ["train_depth_estimator"]


def train_depth_estimator(run: Run, stage: DepthStage, accelerator) -> None:
    """Train the DPT to predict the world's inverse depth (larger = nearer, as MiDaS); save it and its image
    processor to `<out>/depth/final`."""
    batch = scenes(stage.n_scenes, run.seed + stage.data_seed)
    images = np.stack([s.image for s in batch])
    targets = torch.from_numpy(np.stack([nearness(s.depth) for s in batch]))
    torch.manual_seed(run.seed + stage.init_seed)
    model = tinysd.make_depth_estimator()
    g = torch.Generator().manual_seed(run.seed + stage.generator_seed + accelerator.process_index)

    def step_fn(m, step):
        idx = torch.randint(0, len(images), (stage.batch,), generator=g)
        pred = m(pixel_values=to_pixels(images[idx.numpy()])).predicted_depth[:, None]
        pred = F.interpolate(pred, size=targets.shape[-2:], mode="area")[:, 0]
        loss = F.mse_loss(pred, targets[idx])
        return loss, loss.item()

    t0 = time.time()
    model, losses = run_stage(stage, run, accelerator, model, step_fn)
    model.save_pretrained(final_folder(run.out, stage.name))
    tinysd.make_depth_processor().save_pretrained(final_folder(run.out, stage.name))
    log_time(run.out, stage.name, time.time() - t0, final_loss=final_loss(losses, stage.loss_window))
