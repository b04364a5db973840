"""denoise-vc: waveform denoisers that clean noisy recordings before voice conversion."""

from denoise_vc.errors import DenoiseVCError

__all__ = ["DenoiseVCError"]
__version__ = "0.1.0"
