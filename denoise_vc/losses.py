"""Training losses over (B, 1, T) waveforms, chosen by the `loss` config group.

l1, peak-weighted L1 (errors on large-amplitude samples count more, so outputs are not driven toward
zero), a continuous-wavelet loss (Morlet CWT built from PyWavelets' wavelet as an FFT filter bank,
differentiable and GPU-ready), their combination, multi-resolution STFT, negative SI-SDR, the GTCRN-style
power-law-compressed spectrum loss, and `sum`, a weighted sum of any of them.

STFT sizes are set in milliseconds; `build_loss` hands `sample_rate` to the losses whose constructor takes
one (the solver factory passes `data.sample_rate`), so one config works at 16 kHz and at 360 Hz.
"""

from __future__ import annotations

import inspect
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
    """L1 with weight `1 + peak_weight * |target - m| / max|target - m|` per sample, m the item's median: peaks
    are measured from the baseline (an ECG's isoelectric line sits at -0.3 mV), not from zero."""

    def __init__(self, peak_weight: float = 1.0) -> None:
        super().__init__()
        self.peak_weight = float(peak_weight)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target_d = target.detach()
        magnitude = (target_d - target_d.median(dim=-1, keepdim=True).values).abs()
        relative = magnitude / magnitude.amax(dim=-1, keepdim=True).clamp_min(1e-8)
        return ((1.0 + self.peak_weight * relative) * (pred - target).abs()).mean()


def cwt_scales(num_scales: int, min_scale: float, max_scale: float, spacing: str = "log") -> np.ndarray:
    if spacing == "linear":
        return np.linspace(min_scale, max_scale, num_scales)
    if spacing == "log":
        return np.geomspace(min_scale, max_scale, num_scales)
    raise ConfigError(f"loss.wavelet.spacing must be 'linear' or 'log', not {spacing!r}")


def band_scales(band_hz, sample_rate: int, num_scales: int = 36, spacing: str = "log") -> np.ndarray:
    """Morlet scales whose centre frequencies span `band_hz` = [low, high] at `sample_rate`: the same band in
    Hz covers the same physiology or phonetics at 360 Hz, 1 kHz or 16 kHz."""
    try:
        low, high = (float(f) for f in band_hz)
    except (TypeError, ValueError):
        raise ConfigError(f"loss.wavelet.band_hz must be [low, high] in Hz, not {band_hz!r}") from None
    nyquist = sample_rate / 2.0
    if not 0 < low < high:
        raise ConfigError(f"loss.wavelet.band_hz {band_hz!r}: needs 0 < low < high")
    high = min(high, 0.8 * nyquist)  # a Morlet centred nearer Nyquist is cut by it
    if low >= high:
        raise ConfigError(f"loss.wavelet.band_hz {band_hz!r}: nothing of it lies below {0.8 * nyquist:g} Hz")
    centre = pywt.central_frequency("morl")  # cycles per sample at scale 1
    return cwt_scales(num_scales, centre * sample_rate / high, centre * sample_rate / low, spacing)


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
    """Mean absolute difference of Morlet CWT coefficients over scales spanning `band_hz` (Hz, at the data's
    rate); errors at each scale are weighed alike, so slow baseline drift and sharp QRS edges both count."""

    def __init__(
        self, band_hz=(0.5, 40.0), num_scales: int = 36, spacing: str = "log", sample_rate: int = 1000
    ) -> None:
        super().__init__()
        self.cwt = MorletCWT(band_scales(band_hz, sample_rate, num_scales, spacing))

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (self.cwt(pred) - self.cwt(target)).abs().mean()


class CombinedLoss(nn.Module):
    """Peak-weighted L1 + alpha * wavelet loss (the research notes' WeightedCombinedLoss)."""

    def __init__(
        self, peak_weight: float = 1.0, alpha: float = 0.1, wavelet: dict | None = None, sample_rate: int = 1000
    ) -> None:
        super().__init__()
        self.waveform = PeakWeightedL1(peak_weight)
        self.wavelet = WaveletLoss(**{"sample_rate": sample_rate, **(wavelet or {})})
        self.alpha = float(alpha)

    @property
    def peak_weight(self) -> float:
        return self.waveform.peak_weight

    @peak_weight.setter
    def peak_weight(self, value: float) -> None:
        self.waveform.peak_weight = float(value)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.waveform(pred, target) + self.alpha * self.wavelet(pred, target)


def ms_to_samples(ms: float, sample_rate: int, minimum: int = 1) -> int:
    """Milliseconds to the nearest whole number of samples (at least `minimum`)."""
    return max(minimum, int(round(float(ms) * int(sample_rate) / 1000.0)))


class MultiResolutionSTFTLoss(nn.Module):
    """Spectral convergence + log-magnitude L1 averaged over several STFT resolutions (as in Demucs).

    FFT sizes, hops and (Hann) window lengths are in milliseconds; the defaults are Demucs' 512/1024/2048,
    50/120/240 and 240/600/1200 samples at 16 kHz exactly."""

    def __init__(
        self,
        fft_ms=(32.0, 64.0, 128.0),
        hop_ms=(3.125, 7.5, 15.0),
        win_ms=(15.0, 37.5, 75.0),
        l1_weight: float = 1.0,
        sample_rate: int = 16000,
    ) -> None:
        super().__init__()
        if not len(fft_ms) == len(hop_ms) == len(win_ms):
            raise ConfigError("loss.fft_ms, loss.hop_ms and loss.win_ms must have the same length")
        self.resolutions = []
        for fft, hop, win in zip(fft_ms, hop_ms, win_ms):
            n_fft = ms_to_samples(fft, sample_rate, minimum=2)
            self.resolutions.append(
                (n_fft, ms_to_samples(hop, sample_rate), min(n_fft, ms_to_samples(win, sample_rate)))
            )
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


class CompressedSpectralLoss(nn.Module):
    """Power-law-compressed spectrum loss (GTCRN's): with S = |S| e^{j phi} and S_c = |S|^c e^{j phi},

        complex_weight * (MSE(Re S_c) + MSE(Im S_c)) + magnitude_weight * MSE(|S|^c)  -  si_sdr_weight * SI-SDR

    over a sqrt-Hann STFT of `win_ms` / `hop_ms`. Compression (c = 0.3) lifts quiet bins, so errors in
    low-energy speech count. SI-SDR is in dB: 0.1 per dB equals GTCRN's unit weight on -log10 of the SI-SNR
    ratio; the term makes the loss negative (it is not 0 for a perfect estimate unless the weight is 0)."""

    def __init__(
        self,
        win_ms: float = 32.0,
        hop_ms: float = 16.0,
        compress: float = 0.3,
        complex_weight: float = 30.0,
        magnitude_weight: float = 70.0,
        si_sdr_weight: float = 0.1,
        sample_rate: int = 16000,
    ) -> None:
        super().__init__()
        self.n_fft = ms_to_samples(win_ms, sample_rate, minimum=2)
        self.hop = min(self.n_fft, ms_to_samples(hop_ms, sample_rate))
        self.compress = float(compress)
        self.complex_weight = float(complex_weight)
        self.magnitude_weight = float(magnitude_weight)
        self.si_sdr_weight = float(si_sdr_weight)

    def _compressed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        window = torch.hann_window(self.n_fft, device=x.device, dtype=x.dtype).sqrt()
        spec = torch.stft(x.reshape(-1, x.shape[-1]), self.n_fft, self.hop, self.n_fft, window, return_complex=True)
        re, im = spec.real, spec.imag
        mag = torch.sqrt(re * re + im * im + 1e-12)
        scale = mag.pow(self.compress - 1.0)
        return re * scale, im * scale, mag.pow(self.compress)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pr, pi, pm = self._compressed(pred)
        tr, ti, tm = self._compressed(target)
        complex_part = F.mse_loss(pr, tr) + F.mse_loss(pi, ti)
        loss = self.complex_weight * complex_part + self.magnitude_weight * F.mse_loss(pm, tm)
        if self.si_sdr_weight:
            loss = loss - self.si_sdr_weight * si_sdr_torch(pred, target).mean()
        return loss


class WeightedSum(nn.Module):
    """A weighted sum of other losses: `terms` maps a loss name to its arguments plus a `weight` (default 1),
    e.g. `{spectral: {weight: 1.0}, peak_l1: {weight: 0.5, peak_weight: 2.0}}`."""

    def __init__(self, terms: dict, sample_rate: int | None = None) -> None:
        super().__init__()
        if not terms:
            raise ConfigError("loss.terms is empty; name at least one loss")
        self.names: list[str] = []
        self.weights: list[float] = []
        self.terms = nn.ModuleList()
        for name, args in terms.items():
            args = dict(args or {})
            self.weights.append(float(args.pop("weight", 1.0)))
            self.names.append(str(name))
            self.terms.append(build_loss(str(name), sample_rate=sample_rate, **args))

    @property
    def peak_weight(self) -> float:
        """The peak weight of the first term that has one (so `curriculum.peak_weight` schedules it)."""
        for term in self.terms:
            if hasattr(term, "peak_weight"):
                return term.peak_weight
        raise AttributeError("no term of this sum has a peak_weight")

    @peak_weight.setter
    def peak_weight(self, value: float) -> None:
        for term in self.terms:
            if hasattr(term, "peak_weight"):
                term.peak_weight = float(value)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = pred.new_zeros(())
        for weight, term in zip(self.weights, self.terms):
            total = total + weight * term(pred, target)
        return total


LOSSES = {
    "l1": L1Loss,
    "peak_l1": PeakWeightedL1,
    "wavelet": WaveletLoss,
    "combined": CombinedLoss,
    "mrstft": MultiResolutionSTFTLoss,
    "si_sdr": NegativeSISDR,
    "spectral": CompressedSpectralLoss,
    "sum": WeightedSum,
}


def build_loss(name: str, sample_rate: int | None = None, **args) -> nn.Module:
    """The named loss; `sample_rate` (the data's) reaches the losses whose constructor takes one."""
    if name not in LOSSES:
        raise ConfigError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)}")
    if sample_rate is not None and "sample_rate" in inspect.signature(LOSSES[name]).parameters:
        args["sample_rate"] = int(sample_rate)
    try:
        return LOSSES[name](**args)
    except TypeError as exc:
        raise ConfigError(f"loss {name!r}: {exc}") from None
