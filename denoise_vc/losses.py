"""Training losses over (B, 1, T) waveforms, chosen by the `loss` config group.

l1, peak-weighted L1 (errors on large-amplitude samples count more, so outputs are not driven toward
zero), a continuous-wavelet loss (Morlet CWT built from PyWavelets' wavelet as an FFT filter bank,
differentiable and GPU-ready), their combination, multi-resolution STFT and negative SI-SDR.
"""

from __future__ import annotations

from math import floor

import numpy as np
import pywt
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy.fft import next_fast_len

from denoise_vc.errors import ConfigError


class L1Loss(nn.Module):
    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(pred, target)


class PeakWeightedL1(nn.Module):
    """L1 with weight `1 + peak_weight * |target| / max|target|` per sample (per item maximum)."""

    def __init__(self, peak_weight: float = 1.0) -> None:
        super().__init__()
        self.peak_weight = float(peak_weight)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        magnitude = target.detach().abs()
        relative = magnitude / magnitude.amax(dim=-1, keepdim=True).clamp_min(1e-8)
        return ((1.0 + self.peak_weight * relative) * (pred - target).abs()).mean()


def cwt_scales(num_scales: int = 36, min_scale: float = 1.0, max_scale: float = 36.0, spacing: str = "linear"):
    if spacing == "linear":
        return np.linspace(min_scale, max_scale, num_scales)
    if spacing == "log":
        return np.geomspace(min_scale, max_scale, num_scales)
    raise ConfigError(f"loss.wavelet.spacing must be 'linear' or 'log', not {spacing!r}")


class MorletCWT(nn.Module):
    """`pywt.cwt(x, scales, 'morl')` as a torch op: one FFT of the signal, one filter per scale.

    pywt convolves with the integrated wavelet resampled per scale, differentiates and trims the
    centre; here the difference and the trim are folded into each scale's (circular) kernel, so the
    whole bank is a single multiply in the frequency domain.
    """

    def __init__(self, scales, wavelet: str = "morl", precision: int = 12) -> None:
        super().__init__()
        self.scales = np.asarray(scales, dtype=np.float64)
        int_psi, x = pywt.integrate_wavelet(pywt.ContinuousWavelet(wavelet), precision=precision)
        self.kernels: list[tuple[np.ndarray, int]] = []
        step = x[1] - x[0]
        for scale in self.scales:
            j = (np.arange(scale * (x[-1] - x[0]) + 1) / (scale * step)).astype(int)
            j = j[j < int_psi.size]
            kernel = int_psi[j][::-1]
            if kernel.size < 2:
                raise ConfigError(f"wavelet scale {scale} is too small")
            diff_kernel = -np.sqrt(scale) * np.convolve(kernel, [1.0, -1.0])  # length L + 1
            offset = 1 + floor((kernel.size - 2) / 2.0)  # pywt's trim of the differentiated full conv
            self.kernels.append((diff_kernel, offset))
        self.max_kernel = max(k.size for k, _ in self.kernels)
        self._spectra: dict[tuple[int, torch.device, torch.dtype], torch.Tensor] = {}

    def _bank(self, n: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, int]:
        size = next_fast_len(n + self.max_kernel)
        key = (size, device, dtype)
        if key not in self._spectra:
            bank = np.zeros((len(self.kernels), size))
            for i, (kernel, offset) in enumerate(self.kernels):
                # h[m] = g[m + offset], stored circularly so output n reads the full conv at n + offset
                idx = (np.arange(kernel.size) - offset) % size
                bank[i, idx] = kernel
            self._spectra[key] = torch.fft.rfft(torch.as_tensor(bank, dtype=dtype, device=device))
        return self._spectra[key], size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., T) -> (..., num_scales, T)."""
        n = x.shape[-1]
        work_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        bank, size = self._bank(n, x.device, work_dtype)
        spectrum = torch.fft.rfft(x.to(work_dtype), size)
        return torch.fft.irfft(spectrum.unsqueeze(-2) * bank, size)[..., :n].to(x.dtype)


class WaveletLoss(nn.Module):
    """Mean absolute difference of Morlet CWT coefficients."""

    def __init__(
        self, num_scales: int = 36, min_scale: float = 1.0, max_scale: float = 36.0, spacing: str = "linear"
    ) -> None:
        super().__init__()
        self.cwt = MorletCWT(cwt_scales(num_scales, min_scale, max_scale, spacing))

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (self.cwt(pred) - self.cwt(target)).abs().mean()


class CombinedLoss(nn.Module):
    """Peak-weighted L1 + alpha * wavelet loss (the research notes' WeightedCombinedLoss)."""

    def __init__(self, peak_weight: float = 1.0, alpha: float = 0.1, wavelet: dict | None = None) -> None:
        super().__init__()
        self.waveform = PeakWeightedL1(peak_weight)
        self.wavelet = WaveletLoss(**(wavelet or {}))
        self.alpha = float(alpha)

    @property
    def peak_weight(self) -> float:
        return self.waveform.peak_weight

    @peak_weight.setter
    def peak_weight(self, value: float) -> None:
        self.waveform.peak_weight = float(value)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.waveform(pred, target) + self.alpha * self.wavelet(pred, target)


class MultiResolutionSTFTLoss(nn.Module):
    """Spectral convergence + log-magnitude L1 averaged over several STFT resolutions (as in Demucs)."""

    def __init__(
        self,
        fft_sizes=(512, 1024, 2048),
        hop_sizes=(50, 120, 240),
        win_lengths=(240, 600, 1200),
        l1_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.resolutions = list(zip(fft_sizes, hop_sizes, win_lengths))
        self.l1_weight = float(l1_weight)

    @staticmethod
    def _magnitude(x: torch.Tensor, n_fft: int, hop: int, win: int) -> torch.Tensor:
        window = torch.hann_window(win, device=x.device, dtype=x.dtype)
        spec = torch.stft(x.reshape(-1, x.shape[-1]), n_fft, hop, win, window, return_complex=True)
        return spec.abs().clamp_min(1e-7)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = pred.new_zeros(())
        for n_fft, hop, win in self.resolutions:
            p, t = self._magnitude(pred, n_fft, hop, win), self._magnitude(target, n_fft, hop, win)
            sc = torch.linalg.norm(t - p) / torch.linalg.norm(t).clamp_min(1e-7)
            mag = F.l1_loss(torch.log(p), torch.log(t))
            total = total + sc + mag
        return total / len(self.resolutions) + self.l1_weight * F.l1_loss(pred, target)


def si_sdr_torch(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale-invariant SDR in dB per item over the last axis."""
    pred = pred - pred.mean(dim=-1, keepdim=True)
    target = target - target.mean(dim=-1, keepdim=True)
    scale = (pred * target).sum(-1, keepdim=True) / (target.pow(2).sum(-1, keepdim=True) + eps)
    projection = scale * target
    noise = pred - projection
    return 10 * torch.log10((projection.pow(2).sum(-1) + eps) / (noise.pow(2).sum(-1) + eps))


class NegativeSISDR(nn.Module):
    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return -si_sdr_torch(pred, target).mean()


LOSSES = {
    "l1": L1Loss,
    "peak_l1": PeakWeightedL1,
    "wavelet": WaveletLoss,
    "combined": CombinedLoss,
    "mrstft": MultiResolutionSTFTLoss,
    "si_sdr": NegativeSISDR,
}


def build_loss(name: str, **args) -> nn.Module:
    if name not in LOSSES:
        raise ConfigError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)}")
    try:
        return LOSSES[name](**args)
    except TypeError as exc:
        raise ConfigError(f"loss {name!r}: {exc}") from None
