"""Pad-to-valid-length-and-trim, so a network that needs lengths divisible by 2**k takes any length."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def valid_length(length: int, multiple: int) -> int:
    """The smallest length >= `length` (and >= 1) that a network needing multiples of `multiple` takes as is."""
    return max(multiple, -(-length // multiple) * multiple)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int]:
    """Right-pad (B, C, T) with zeros to the next multiple of `multiple`; returns the tensor and T."""
    length = x.shape[-1]
    target = valid_length(length, multiple)
    return (F.pad(x, (0, target - length)) if target != length else x), length
