"""The real-model code path: folders written with save_pretrained load exactly as hub downloads would."""
import torch

import sdlearn
from tiny_models import write_tiny_sd


def test_load_folder_written_with_save_pretrained(tmp_path):
    folder = write_tiny_sd(tmp_path / "sd")
    parts = sdlearn.load(str(folder))
    assert type(parts.scheduler).__name__ == "PNDMScheduler"  # the class the folder names
    assert parts.vae_scale_factor == 8 and parts.depth_estimator is None
    assert all(not p.requires_grad for p in parts.unet.parameters())
    assert parts.unet.dtype == torch.float32


def test_load_folder_with_depth_estimator(tmp_path):
    folder = write_tiny_sd(tmp_path / "sd-depth", unet_in_channels=5, with_depth=True)
    parts = sdlearn.load(folder)
    assert parts.unet.config.in_channels == 5
    assert type(parts.depth_estimator).__name__ == "DPTForDepthEstimation"
    assert parts.feature_extractor is not None
