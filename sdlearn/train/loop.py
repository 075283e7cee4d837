"""The training loop every stage shares, the U-Nets' weight average, and the run folder's bookkeeping."""
from __future__ import annotations

import copy
import json
import math
import pathlib

import numpy as np
import torch
from tqdm.auto import tqdm

from .config import Run, Stage

__all__ = ["run_stage", "EMA", "stage_done", "final_folder", "final_loss", "log_time"]

PROGRESS_EVERY = 20  # steps between updates of the progress bar's loss
PROGRESS_WINDOW = 50  # ... which is the mean over this many last steps


def run_stage(stage: Stage, run: Run, accelerator, model, step_fn, extra_state=()):
    """Train `model` for `stage.steps` steps: AdamW, linear warmup then cosine decay, gradient clipping.

    `step_fn(model, step)` returns (loss to backpropagate, number to show). Every `run.ckpt_every` steps and at
    the end, the model, optimiser, schedule and `extra_state` (objects with `state_dict`, e.g. an `EMA`) are saved
    through Accelerate into `<out>/<stage>/checkpoint`; a later run resumes from there.

    Give every stage its own `accelerator` (a fresh `accelerate.Accelerator`): the objects registered for
    checkpointing stay registered on it, and the next stage's checkpoints must hold only its own.

    Returns:
        (the trained model, unwrapped; the list of shown numbers, one per step this call ran).
    """
    steps, warmup = stage.steps, stage.warmup
    opt = torch.optim.AdamW(model.parameters(), lr=stage.lr, weight_decay=stage.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    model, opt, sched = accelerator.prepare(model, opt, sched)
    for obj in extra_state:
        accelerator.register_for_checkpointing(obj)
    ckpt = pathlib.Path(run.out, stage.name, "checkpoint")
    start = 0
    if (ckpt / "step.json").exists():
        accelerator.load_state(str(ckpt))
        start = json.loads((ckpt / "step.json").read_text())["step"]
        accelerator.print(f"[{stage.name}] resuming at step {start}")
    losses = []
    bar = tqdm(range(start, steps), desc=stage.name, initial=start, total=steps, disable=not accelerator.is_main_process)
    for step in bar:
        loss, shown = step_fn(model, step)
        opt.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), stage.grad_clip)
        opt.step()
        sched.step()
        losses.append(shown)
        if step % PROGRESS_EVERY == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-PROGRESS_WINDOW:]):.4f}")
        if (step + 1) % run.ckpt_every == 0 or step + 1 == steps:
            accelerator.save_state(str(ckpt))
            (ckpt / "step.json").write_text(json.dumps({"step": step + 1}))
    model = accelerator.unwrap_model(model)
    accelerator.free_memory()
    return model, losses


class EMA(torch.nn.Module):
    """An exponential moving average of a model's weights (the U-Net Stable Diffusion ships is one)."""

    def __init__(self, model, decay: float = 0.999):
        super().__init__()
        self.shadow = copy.deepcopy(model).requires_grad_(False)
        self.decay = decay

    @torch.no_grad()
    def update(self, model, step):
        """Move the average towards `model`; early steps use a smaller decay, (1 + step) / (10 + step)."""
        d = min(self.decay, (1 + step) / (10 + step))
        for s, p in zip(self.shadow.parameters(), model.parameters()):
            s.lerp_(p.detach(), 1 - d)


def final_folder(out, name: str) -> pathlib.Path:
    """Where a finished stage keeps its model: `<out>/<name>/final`."""
    return pathlib.Path(out, name, "final")


def stage_done(out, name: str) -> bool:
    """Whether the stage has finished in this run folder (its `final/` exists)."""
    return final_folder(out, name).exists()


def final_loss(losses: list[float], window: int) -> float | None:
    """The mean of the last `window` losses (None if the stage ran no step, e.g. when resumed at its end)."""
    return float(np.mean(losses[-window:])) if losses else None


def log_time(out, name: str, seconds: float, **extra) -> None:
    """Add `seconds` to the stage's time in `<out>/times.json`, and record `extra` as `<name>_<key>`."""
    path = pathlib.Path(out, "times.json")
    times = json.loads(path.read_text()) if path.exists() else {}
    times[name] = times.get(name, 0.0) + seconds
    times.update({f"{name}_{k}": v for k, v in extra.items()})
    path.write_text(json.dumps(times, indent=2))
