"""sdlearn: learn how Stable Diffusion works by running every stage of it.

One module per stage:

- `sdlearn.noising`  the forward process: beta schedules and q(x_t | x_0)
- `sdlearn.data`     a procedural world of captioned shapes, and bundled photos
"""
__version__ = "0.1.0"
