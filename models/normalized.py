"""Amplitude-true denoising of signals in physical units (ECG in mV): each window is shifted by its median and
divided by a robust scale before the network, and the output is mapped back by the same numbers.

The network then sees the same range whatever the recording's units, gain or baseline, and its output range
does not cap physical values: with the scale at twice the window's largest excursion from the median, an
output bounded to [-1, 1] (a final tanh) still reaches twice the input's largest peak in physical units.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

NORMALIZATIONS = ("none", "robust")  # data.normalize
HEADROOM = 2.0  # scale = HEADROOM x the largest |x - median|: the clean target sits inside [-0.5, 0.5]


def highpass(x: torch.Tensor, cycles: float, order: int = 2) -> torch.Tensor:
    """Zero-phase Butterworth high-pass of (..., T) at `cycles` (cutoff / sample rate): the magnitude a forward-
    backward `order`-pole filter has, applied in the frequency domain after reflecting 1/cycles samples at each
    end, so the window's edges do not ring. Removes the baseline wander below an ECG's band before the network."""
    n = x.shape[-1]
    pad = min(n - 1, int(round(1.0 / cycles)))
    padded = F.pad(x, (pad, pad), mode="reflect") if pad > 0 else x
    freqs = torch.fft.rfftfreq(padded.shape[-1], device=x.device, dtype=torch.float64)
    gain = 1.0 / (1.0 + (cycles / freqs.clamp_min(1e-12)) ** (2 * order))
    gain[0] = 0.0
    spectrum = torch.fft.rfft(padded.to(torch.float64)) * gain
    return torch.fft.irfft(spectrum, padded.shape[-1])[..., pad : pad + n].to(x.dtype)


def remove_drift(x: torch.Tensor, cycles: float) -> torch.Tensor:
    """`x` high-passed at `cycles` and put back at its median level: what the model's input becomes, and with
    `data.highpass_target` what it is trained to return."""
    return highpass(x, cycles) + x.median(dim=-1, keepdim=True).values


def robust_stats(x: torch.Tensor, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """(offset, scale) per item and channel of a (B, C, T) batch: the median (an ECG's isoelectric level, not
    its mean, which the QRS pulls) and HEADROOM x the largest excursion from it."""
    offset = x.median(dim=-1, keepdim=True).values
    scale = HEADROOM * (x - offset).abs().amax(dim=-1, keepdim=True)
    return offset, scale.clamp_min(eps)


class Normalized(nn.Module):
    """`net` run on robustly normalised input, its output returned at the input's scale and offset.

    With `highpass_cycles` (cutoff / sample rate) the window is first high-passed (zero phase) and put back at its
    median level: baseline wander below the band is removed by a filter, as ECG front-ends do, and the network
    only answers for the band. With `residual`, the network's output, times a learned gate that starts at 0, is
    added to its input (it predicts what to remove): training starts from the identity, and a lead that is
    already clean passes through nearly untouched, so the model does not blur a high-SNR ECG it need not change."""

    def __init__(self, net: nn.Module, residual: bool = False, highpass_cycles: float = 0.0) -> None:
        super().__init__()
        self.net = net
        self.residual = bool(residual)
        self.highpass_cycles = float(highpass_cycles)
        if self.residual:  # ReZero-style gate: a new model is the identity and learns what to remove from there
            self.gate = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.highpass_cycles > 0:  # the output keeps the input's level, not its wander
            x = remove_drift(x, self.highpass_cycles)
        offset, scale = robust_stats(x)
        normalized = (x - offset) / scale
        if self.residual:
            out = normalized + self.gate * self.net(normalized)
        else:
            out = self.net(normalized)
        return out * scale + offset

    def __getattr__(self, name: str):
        """The wrapped model's own facts (valid_length, lookahead, ...) read through the wrapper."""
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["net"], name)
