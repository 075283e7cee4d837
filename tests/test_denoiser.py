import torch
from diffusers import DDPMScheduler

from sdlearn import denoiser, noising


def test_p_sample_matches_diffusers_ddpm_step():
    betas = noising.make_betas("scaled_linear")
    ref = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False)
    g = torch.Generator().manual_seed(0)
    x_t, eps = torch.randn(2, 3, 4, 8, 8, generator=g)
    for t in (999, 500, 1, 0):
        z = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(t))
        ours = denoiser.p_sample(x_t, eps, t, betas, z)
        theirs = ref.step(eps, t, x_t, generator=torch.Generator().manual_seed(t)).prev_sample
        assert torch.allclose(ours, theirs, atol=1e-5), t


def test_training_lowers_the_loss_on_two_modes():
    abar = noising.alphas_cumprod(noising.make_betas("linear", 1000, 1e-4, 0.02))
    model = denoiser.PointDenoiser(hidden=64)
    losses = denoiser.train_noise_predictor(model, model.parameters(), denoiser.two_modes(1024), abar,
                                            steps=300, batch_size=128, lr=3e-3, progress=False)
    assert sum(losses[-30:]) / 30 < 0.6 * sum(losses[:10]) / 10


def test_image_tensor_round_trip():
    import numpy as np

    from sdlearn.images import from_pixels, to_pixels

    imgs = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    x = to_pixels(imgs)
    assert x.shape == (2, 3, 8, 8) and x.min() >= -1 and x.max() <= 1
    assert np.array_equal(from_pixels(x), imgs)


def test_v_prediction_target_matches_diffusers():
    ref = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    abar = noising.alphas_cumprod(noising.make_betas("scaled_linear"))
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(2, 5, 4, 8, 8, generator=g)
    t = torch.tensor([0, 10, 500, 990, 999])
    v = denoiser.training_target(x0, noise, t, abar, "v_prediction")
    assert torch.allclose(v, ref.get_velocity(x0, noise, t), atol=1e-6)
    assert denoiser.training_target(x0, noise, t, abar) is noise


def test_to_display_conventions():
    import numpy as np

    from sdlearn.plotting import to_display

    assert to_display(torch.ones(3, 4, 4))[0, 0, 0] == 255          # tensors are [-1, 1]
    assert to_display(-torch.ones(3, 4, 4))[0, 0, 0] == 0
    assert to_display(np.ones((4, 4, 3), np.float32))[0, 0, 0] == 255  # channel-last float arrays are [0, 1]
    assert to_display(np.zeros((4, 4, 3), np.float32))[0, 0, 0] == 0
