"""Denoiser and VC networks (torch modules only), registered by name so configs select them."""

from models.registry import MODELS, build_model, denoisers, register

# Importing the modules registers their models.
from models import conv_ae, diffusion, pixelshuffle_ae, vc, wave_unet  # noqa: E402,F401  isort: skip

__all__ = ["MODELS", "build_model", "denoisers", "register"]
