"""The lessons' step scrubber: a slider over denoising steps, and the same content as a static figure.

For step i the scrubber shows the 4 latent channels going into the step, the decoded x0
prediction (what the model currently thinks the final image is) and, when attention was
recorded, the cross-attention map of a chosen prompt token. Where widgets are not rendered
(GitHub, plain nbconvert), `steps_figure` draws a few steps of the same content.
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import display

from .attention import heatmaps
from .latents import decode

__all__ = ["decoded_x0", "step_panel", "steps_figure", "step_scrubber"]


def decoded_x0(parts, result, cache: dict | None = None) -> list[np.ndarray]:
    """The decoded x0 prediction of every recorded step (uint8 images of the first prompt), decoded once."""
    if cache is not None and "x0" in cache:
        return cache["x0"]
    if not result.steps:
        raise ValueError("the result has no recorded steps; run the pipeline with record=True.")
    with torch.no_grad():
        images = [decode(parts.vae, s.x0_pred[:1])[0] for s in result.steps]
    if cache is not None:
        cache["x0"] = images
    return images


def _token_index(parts, prompt: str, token: str | None):
    if token is None:
        return None
    ids = parts.tokenizer(prompt).input_ids
    toks = [t.replace("</w>", "") for t in parts.tokenizer.convert_ids_to_tokens(ids)]
    if token not in toks:
        raise ValueError(f"{token!r} is not a token of {prompt!r}; its tokens are {toks[1:-1]}.")
    return toks.index(token)


def step_panel(parts, result, step: int, prompt: str | None = None, token: str | None = None, x0_images=None):
    """One matplotlib figure for one step: latent channels, decoded x0, optional attention map."""
    s = result.steps[step]
    z = s.latents[0]
    show_attn = token is not None and result.attention is not None
    ncols = z.shape[0] + 1 + int(show_attn)
    fig, axes = plt.subplots(1, ncols, figsize=(1.9 * ncols, 2.3))
    for c in range(z.shape[0]):
        axes[c].imshow(z[c].numpy(), cmap="RdBu_r")
        axes[c].set_title(f"latent ch {c}", fontsize=8)
    x0 = (x0_images or decoded_x0(parts, result))[step]
    axes[z.shape[0]].imshow(x0)
    axes[z.shape[0]].set_title(f"x0 guess, t={s.t}", fontsize=8)
    if show_attn:
        k = _token_index(parts, prompt, token)
        size = x0.shape[:2]
        m = heatmaps(result.attention, size=size, steps=[step])[0, k]
        axes[-1].imshow(x0)
        axes[-1].imshow(m.numpy(), cmap="jet", alpha=0.5)
        axes[-1].set_title(f"attention: {token!r}", fontsize=8)
    for ax in axes:
        ax.axis("off")
    fig.suptitle(f"step {step + 1} of {len(result.steps)}", fontsize=9)
    fig.tight_layout()
    return fig


def steps_figure(parts, result, every: int | None = None):
    """Static version of the scrubber: the decoded x0 prediction at several steps, in one row."""
    images = decoded_x0(parts, result)
    n = len(images)
    every = every or max(1, n // 6)
    picks = list(range(0, n, every))
    if picks[-1] != n - 1:
        picks.append(n - 1)
    fig, axes = plt.subplots(1, len(picks), figsize=(1.6 * len(picks), 1.9))
    for ax, i in zip(np.atleast_1d(axes), picks):
        ax.imshow(images[i])
        ax.set_title(f"step {i + 1}, t={result.steps[i].t}", fontsize=7)
        ax.axis("off")
    fig.tight_layout()
    return fig


def step_scrubber(parts, result, prompt: str | None = None, tokens: list[str] | None = None):
    """An ipywidgets slider over the recorded steps (plus a token chooser when attention was recorded)."""
    cache: dict = {}
    x0 = decoded_x0(parts, result, cache)
    slider = widgets.IntSlider(value=len(result.steps) - 1, min=0, max=len(result.steps) - 1, description="step",
                               continuous_update=False)
    controls = [slider]
    chooser = None
    if tokens and result.attention is not None:
        chooser = widgets.Dropdown(options=tokens, value=tokens[0], description="token")
        controls.append(chooser)
    out = widgets.Output()

    def redraw(*_):
        with out:
            out.clear_output(wait=True)
            fig = step_panel(parts, result, slider.value, prompt, chooser.value if chooser else None, x0)
            display(fig)
            plt.close(fig)

    slider.observe(redraw, names="value")
    if chooser is not None:
        chooser.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox(controls), out])
