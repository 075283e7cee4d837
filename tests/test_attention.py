import pytest
import torch

import sdlearn
from sdlearn import pipelines
from sdlearn.schedulers import swap_scheduler
from sdlearn.attention import capture_attention, heatmaps
from sdlearn.unet import real_unet
from tiny_models import write_tiny_sd


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return sdlearn.load(write_tiny_sd(tmp_path_factory.mktemp("tiny-sd")))


def test_capture_restores_processors_and_refuses_to_hook_twice(tiny):
    before = {k: type(v) for k, v in tiny.unet.attn_processors.items()}
    with capture_attention(tiny.unet) as store:
        with pytest.raises(RuntimeError, match="already being captured"):
            with capture_attention(tiny.unet):
                pass
    assert {k: type(v) for k, v in tiny.unet.attn_processors.items()} == before
    # also restored when the block raises
    with pytest.raises(KeyError):
        with capture_attention(tiny.unet):
            raise KeyError("boom")
    assert {k: type(v) for k, v in tiny.unet.attn_processors.items()} == before
    assert len(store) == 0


def test_captured_maps_per_step_layer_and_token(tiny):
    swap_scheduler(tiny, "ddim")  # one U-Net call per step (PNDM makes one extra call)
    r = pipelines.text_to_image(tiny, ["a red circle", "a blue box"], height=32, width=32, num_inference_steps=3,
                                guidance_scale=7.5, generator=torch.Generator().manual_seed(0), record_attention=True,
                                progress=False)
    store = r.attention
    assert len(store) == 3  # one entry per denoising step
    n_cross = sum(name.endswith("attn2.processor") for name in tiny.unet.attn_processors)
    assert len(store.layers) == n_cross
    m = store.maps[0][store.layers[0]]
    assert m.shape[0] == 2 and m.shape[-1] == 77  # the text-conditioned half only, 77 tokens
    # each latent pixel's attention is a probability distribution over the 77 tokens
    assert torch.allclose(m.sum(-1), torch.ones_like(m.sum(-1)), atol=1e-4)
    maps = heatmaps(store, size=(32, 32))
    assert maps.shape == (2, 77, 32, 32)
    assert torch.allclose(maps.sum(1), torch.ones(2, 32, 32), atol=1e-3)


def test_capture_does_not_change_the_image(tiny):
    kw = dict(height=32, width=32, num_inference_steps=3, progress=False)
    a = pipelines.text_to_image(tiny, "a red circle", generator=torch.Generator().manual_seed(0), **kw).images
    b = pipelines.text_to_image(tiny, "a red circle", generator=torch.Generator().manual_seed(0),
                                record_attention=True, **kw).images
    assert abs(a - b).max() <= 1e-4


def test_hook_installs_on_the_real_sd_architecture():
    unet = real_unet("v1.5")
    with capture_attention(unet):
        hooked = [n for n, p in unet.attn_processors.items() if type(p).__name__ == "StoringAttnProcessor"]
    assert len(hooked) == 16  # SD v1.5 has 16 cross-attention layers
    assert not any(type(p).__name__ == "StoringAttnProcessor" for p in unet.attn_processors.values())
