"""Measuring TinySD and its variants; `python -m sdlearn.eval [--variants]` prints the model cards' tables.

One job per file:

- `prompts`  the prompts asked for: single-object world captions, two-object binding prompts, the depth
             and inpainting requests.
- `judged`   generated images read by the judge (`sdlearn.judge`): how often the colour, shape and
             position asked for are drawn (`generate`, `judge_prompts`), per guidance scale (`guidance_sweep`).
- `two_objects` two-object prompts: each object its own colour and shape (binding), and where each
             word's cross-attention map lands on the image being drawn.
- `localisation` where words are read: a word's mean cross-attention map on its own object vs the other
             (also on noised world scenes with their captions).
- `vae`      the VAE alone: PSNR of round trips, and how often a round trip keeps a shape readable.
- `clip`     CLIP alone: caption -> image retrieval, synonyms against other words of the same kind.
- `depth`    TinySD-depth: the depth estimator against true depth and a photo's disparity, and
             depth-to-image (layout kept, colour changed).
- `inpaint`  inpainting: pixels outside the hole kept (and the latent cells the hole touches), the
             hole repainted as asked.
- `controlnet` a ControlNet for outlines: edge F1 between the outline and the picture, colours kept.
- `report`   the command line: runs the above and prints the tables.

A benchmark, not a test: the full run takes minutes on a CPU.
"""
from .clip import caption_fits, clip_binding, clip_retrieval, synonym_similarities
from .controlnet import controlnet_cases, controlnet_metrics
from .depth import depth_estimator_metrics, depth_to_image_metrics
from .inpaint import inpaint_case, inpaint_metrics, latent_cells
from .judged import generate, guidance_sweep, image_size, judge_prompts
from .localisation import localises, noised_scene_localisation, object_word_positions
from .prompts import TwoObjectPrompt, blue_squares_prompt, inpaint_prompt, single_object_prompts, two_object_prompts
from .two_objects import two_object_metrics
from .report import main, variants_main
from .vae import vae_psnr, vae_shape_kept

__all__ = [
    "single_object_prompts", "TwoObjectPrompt", "two_object_prompts", "blue_squares_prompt", "inpaint_prompt",
    "two_object_metrics", "object_word_positions", "localises", "noised_scene_localisation",
    "image_size", "generate", "judge_prompts", "guidance_sweep",
    "vae_psnr", "vae_shape_kept",
    "caption_fits", "clip_retrieval", "clip_binding", "synonym_similarities",
    "depth_estimator_metrics", "depth_to_image_metrics",
    "latent_cells", "inpaint_case", "inpaint_metrics", "controlnet_cases", "controlnet_metrics",
    "main", "variants_main",
]
