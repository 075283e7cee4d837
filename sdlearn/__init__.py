"""sdlearn: learn how Stable Diffusion works by running every stage of it.

One module per stage, bottom-up (sdlearn/README.md has the full map and what each may import):

- foundations: `images` (pixel conversions), `noising` (the forward process), `data` (the world of
  captioned shapes, sketches, photos), `tinysd` (TinySD's untrained parts), `plotting`
- stages: `latents` (the VAE), `text` (tokenizer, text encoder), `unet` (the noise predictor),
  `attention` (cross-attention maps), `schedulers` (samplers), `depth`, `judge` (reading pictures),
  `loading` (`load()`: TinySD, or real Stable Diffusion via $SDLEARN_MODEL), `denoiser` (lesson 02)
- guidance: `guidance` (classifier-free), `classifier_guidance`
- pipelines: `pipelines` (text-to-image, image-to-image, inpainting, depth-to-image by hand), `controlnet`
  (text-to-image steered by an outline), with `edges` (Canny outlines, edge F1) below them
- applications: `widgets` (the step scrubber), `classroom` (the Voila demo), `eval` (quality tables),
  `train` (training TinySD), `python -m sdlearn` (the command line)
"""
__version__ = "0.1.0"
__all__ = ["load", "load_controlnet"]


def load(model=None, **kwargs):
    """Load a Stable Diffusion's parts; see `sdlearn.loading.load`."""
    from .loading import load as _load  # imported on use, so `import sdlearn.noising` does not load diffusers

    return _load(model, **kwargs)


def load_controlnet(controlnet="tinysd-controlnet-edges", **kwargs):
    """Load a ControlNet; see `sdlearn.loading.load_controlnet`."""
    from .loading import load_controlnet as _load  # imported on use, as `load`

    return _load(controlnet, **kwargs)
