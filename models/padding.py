"""Pad-to-valid-length-and-trim, so a network that needs lengths divisible by 2**k takes any length."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int]:
    """Right-pad (B, C, T) with zeros to the next multiple of `multiple`; returns the tensor and T."""
    length = x.shape[-1]
    target = max(multiple, -(-length // multiple) * multiple)
    return (F.pad(x, (0, target - length)) if target != length else x), length
