"""sdlearn: learn how Stable Diffusion works by running every stage of it.

One module per stage:

- `sdlearn.noising`     the forward process: beta schedules and q(x_t | x_0)
- `sdlearn.denoiser`    training a noise predictor from scratch; the reverse step
- `sdlearn.data`        a procedural world of captioned shapes, sketches, bundled photos
- `sdlearn.tinysd`      TinySD's parts (CLIP tokenizer, text encoder, VAE, U-Net, scheduler)
- `sdlearn.train`       training TinySD, its depth estimator and its depth / inpainting U-Nets
- `sdlearn.loading`     `load()`: TinySD by default, real Stable Diffusion via $SDLEARN_MODEL
- `sdlearn.text`        tokens, embeddings, `encode_prompt`
- `sdlearn.attention`   capturing cross-attention maps
- `sdlearn.guidance`    classifier-free guidance
- `sdlearn.pipelines`   text-to-image, image-to-image, inpainting, depth-to-image by hand
- `sdlearn.judge`       reading colour, shape and position from generated pixels
- `sdlearn.eval`        TinySD's quality tables (judged generations, guidance sweep, VAE, CLIP, depth, inpainting)
- `sdlearn.widgets`     the step scrubber; `sdlearn.app` the classroom demo (Voila)
"""
__version__ = "0.1.0"


def load(model=None, **kwargs):
    """Load a Stable Diffusion's parts; see `sdlearn.loading.load`."""
    from .loading import load as _load

    return _load(model, **kwargs)
