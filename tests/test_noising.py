import pytest
import torch
from diffusers import DDPMScheduler

from sdlearn import noising


@pytest.mark.parametrize("schedule", ["linear", "scaled_linear", "squaredcos_cap_v2"])
def test_add_noise_matches_diffusers(schedule):
    kwargs = dict(beta_schedule=schedule, num_train_timesteps=1000)
    if schedule == "scaled_linear":
        kwargs.update(beta_start=0.00085, beta_end=0.012)
    elif schedule == "linear":
        kwargs.update(beta_start=1e-4, beta_end=0.02)
    ref = DDPMScheduler(**kwargs)
    betas = noising.make_betas(schedule, 1000, kwargs.get("beta_start", 0.0), kwargs.get("beta_end", 0.0))
    assert torch.allclose(betas, ref.betas, atol=1e-7, rtol=0)
    abar = noising.alphas_cumprod(betas)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(6, 4, 8, 8, generator=g)
    noise = torch.randn(6, 4, 8, 8, generator=g)
    t = torch.tensor([0, 1, 250, 500, 998, 999])
    ours = noising.add_noise(x0, noise, t, abar)
    theirs = ref.add_noise(x0, noise, t)
    assert (ours - theirs).abs().max().item() <= 1e-6


def test_stable_diffusion_v1_schedule_keeps_a_trace_of_signal():
    abar = noising.alphas_cumprod(noising.make_betas("scaled_linear"))
    assert noising.signal_coefficient(abar)[-1].item() == pytest.approx(0.068, abs=0.001)
    assert noising.snr(abar)[-1].item() == pytest.approx(0.0047, abs=0.0002)
    # the cosine schedule and the zero-terminal-SNR rescale both reach (nearly) zero signal
    cos = noising.alphas_cumprod(noising.make_betas("cosine"))
    assert cos[-1].sqrt().item() < 1e-3
    zt = noising.alphas_cumprod(noising.rescale_zero_terminal_snr(noising.make_betas("scaled_linear")))
    assert zt[-1].item() == pytest.approx(0.0, abs=1e-12)
    assert zt[0].item() == pytest.approx(abar[0].item(), rel=1e-5)


def test_rescale_matches_diffusers():
    ref = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, rescale_betas_zero_snr=True)
    ours = noising.rescale_zero_terminal_snr(noising.make_betas("scaled_linear"))
    assert torch.allclose(ours, ref.betas, atol=1e-6)


def test_closed_form_equals_iterated_steps_in_distribution():
    betas = noising.make_betas("scaled_linear")
    abar = noising.alphas_cumprod(betas)
    g = torch.Generator().manual_seed(1)
    x0 = torch.full((20000,), 0.8)
    x = x0.clone()
    t = 300
    for s in range(t + 1):
        x = noising.q_step(x, s, betas, generator=g)
    jump = noising.q_sample(x0, torch.randn(x0.shape, generator=g), t, abar)
    expected_mean = abar[t].sqrt().item() * 0.8
    expected_var = 1 - abar[t].item()
    for sample in (x, jump):
        assert sample.mean().item() == pytest.approx(expected_mean, abs=0.02)
        assert sample.var().item() == pytest.approx(expected_var, abs=0.03)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="Unknown schedule"):
        noising.make_betas("quadratic")
    abar = noising.alphas_cumprod(noising.make_betas())
    with pytest.raises(ValueError, match="Timesteps must lie"):
        noising.q_sample(torch.zeros(2, 3), torch.zeros(2, 3), 1000, abar)
    with pytest.raises(ValueError, match="same shape"):
        noising.q_sample(torch.zeros(2, 3), torch.zeros(2, 4), 0, abar)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_x0_from_noise_matches_ddim_for_every_prediction_type(prediction_type):
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
                              prediction_type=prediction_type)
    scheduler.set_timesteps(10)
    g = torch.Generator().manual_seed(0)
    latents, output = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
    t = scheduler.timesteps[3]
    expected = scheduler.step(output, t, latents).pred_original_sample
    torch.testing.assert_close(noising.x0_from_noise(scheduler, latents, output, t), expected)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_training_target_matches_diffusers(prediction_type):
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                              prediction_type=prediction_type)
    g = torch.Generator().manual_seed(0)
    latents, noise = torch.randn(3, 4, 8, 8, generator=g), torch.randn(3, 4, 8, 8, generator=g)
    t = torch.tensor([0, 500, 999])
    expected = {"epsilon": noise, "sample": latents,
                "v_prediction": scheduler.get_velocity(latents, noise, t)}[prediction_type]
    torch.testing.assert_close(noising.training_target(scheduler, latents, noise, t), expected)
    # and x0_from_noise inverts it: a perfect prediction of the target gives back the clean latents
    noisy = scheduler.add_noise(latents, noise, t)
    for i in range(3):
        x0 = noising.x0_from_noise(scheduler, noisy[i:i + 1], expected[i:i + 1], t[i])
        torch.testing.assert_close(x0, latents[i:i + 1], atol=2e-3, rtol=1e-3)
