"""Amplitude-true denoising of signals in physical units (ECG in mV): each window is shifted by its median and
divided by a robust scale before the network, and the output is mapped back by the same numbers.

The network then sees the same range whatever the recording's units, gain or baseline, and its output range
does not cap physical values: with the scale at twice the window's largest excursion from the median, an
output bounded to [-1, 1] (a final tanh) still reaches twice the input's largest peak in physical units.
"""

from __future__ import annotations

import torch
import torch.nn as nn

NORMALIZATIONS = ("none", "robust")  # data.normalize
HEADROOM = 2.0  # scale = HEADROOM x the largest |x - median|: the clean target sits inside [-0.5, 0.5]


def robust_stats(x: torch.Tensor, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """(offset, scale) per item and channel of a (B, C, T) batch: the median (an ECG's isoelectric level, not
    its mean, which the QRS pulls) and HEADROOM x the largest excursion from it."""
    offset = x.median(dim=-1, keepdim=True).values
    scale = HEADROOM * (x - offset).abs().amax(dim=-1, keepdim=True)
    return offset, scale.clamp_min(eps)


class Normalized(nn.Module):
    """`net` run on robustly normalised input, its output returned at the input's scale and offset.

    With `residual`, the network's output, times a learned gate that starts at 0, is added to its input (it
    predicts what to remove): training starts from the identity, and a lead that is already clean passes
    through nearly untouched, so the model does not blur a high-SNR ECG it need not change."""

    def __init__(self, net: nn.Module, residual: bool = False) -> None:
        super().__init__()
        self.net = net
        self.residual = bool(residual)
        if self.residual:  # ReZero-style gate: a new model is the identity and learns what to remove from there
            self.gate = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
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
