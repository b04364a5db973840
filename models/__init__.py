"""Denoiser and VC networks (torch modules only), registered by name so configs select them."""

from denoise_vc.models.registry import MODELS, build_model, denoisers, register

# Importing the modules registers their models.
from denoise_vc.models import conv_ae, demucs, diffusion, pixelshuffle_ae, routed, spectral, vc, wave_unet  # noqa: E402,F401  isort: skip

__all__ = ["MODELS", "build_model", "denoisers", "register"]
