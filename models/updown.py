"""Halving and doubling the time axis so that each kept sample returns to where it came from.

U-Nets that decimate by keeping samples 0, 2, 4, ... must upsample by putting sample k back at 2k; the
common `F.interpolate(scale_factor=2, mode="linear", align_corners=True)` instead stretches the signal by up
to half a sample per level (more than a thousand input samples at the end of a segment through 12 levels),
which a shift-blind loss such as MR-STFT never corrects.
"""

from __future__ import annotations

import torch


def decimate2(h: torch.Tensor) -> torch.Tensor:
    """(N, C, T) -> (N, C, ceil(T / 2)): samples 0, 2, 4, ..."""
    return h[:, :, ::2]


def upsample2(h: torch.Tensor) -> torch.Tensor:
    """(N, C, T) -> (N, C, 2T): sample k at 2k, the mean of k and k + 1 at 2k + 1 (the last one repeated)."""
    following = torch.cat([h[:, :, 1:], h[:, :, -1:]], dim=2)
    return torch.stack([h, 0.5 * (h + following)], dim=3).flatten(2)
