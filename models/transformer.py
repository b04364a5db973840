"""Transformer blocks for 1-D feature maps (B, C, T): plain attention along time, or dual-path
attention (within chunks, then across chunks, as in two-stage transformer speech-enhancement models)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange


def sinusoidal_positions(length: int, dim: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(length, dim) sine/cosine position codes (Vaswani et al.); works for any length."""
    position = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    rates = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    codes = torch.zeros(length, dim, device=device, dtype=torch.float32)
    codes[:, 0::2] = torch.sin(position * rates)
    codes[:, 1::2] = torch.cos(position * rates[: dim // 2])
    return codes.to(dtype)


def _encoder(d_model: int, nhead: int, num_layers: int, dropout: float) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(
        d_model, nhead, dim_feedforward=4 * d_model, dropout=dropout, batch_first=True, norm_first=True
    )
    return nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)


class TimeTransformer(nn.Module):
    """Self-attention along time on (B, C, T), with a residual connection around the whole stack."""

    def __init__(self, channels: int, d_model: int, nhead: int, num_layers: int, dropout: float) -> None:
        super().__init__()
        self.inp = nn.Conv1d(channels, d_model, 1)
        self.encoder = _encoder(d_model, nhead, num_layers, dropout)
        self.out = nn.Conv1d(d_model, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = rearrange(self.inp(x), "b d t -> b t d")
        h = h + sinusoidal_positions(h.shape[1], h.shape[2], h.device, h.dtype)
        h = self.encoder(h)
        return x + self.out(rearrange(h, "b t d -> b d t"))


class DualPathTransformer(nn.Module):
    """Alternating intra-chunk (local) and inter-chunk (global) attention on (B, C, T).

    T is zero-padded to a multiple of `chunk`; each of `num_layers` stages attends within every chunk,
    then across chunks at every within-chunk position.
    """

    def __init__(
        self, channels: int, d_model: int, nhead: int, num_layers: int, dropout: float, chunk: int = 16
    ) -> None:
        super().__init__()
        self.chunk = chunk
        self.inp = nn.Conv1d(channels, d_model, 1)
        self.intra = nn.ModuleList(_encoder(d_model, nhead, 1, dropout) for _ in range(num_layers))
        self.inter = nn.ModuleList(_encoder(d_model, nhead, 1, dropout) for _ in range(num_layers))
        self.out = nn.Conv1d(d_model, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[-1]
        pad = (-length) % self.chunk
        h = F.pad(self.inp(x), (0, pad))
        h = rearrange(h, "b d (n k) -> b n k d", k=self.chunk)
        b, n, k, d = h.shape
        local_pos = sinusoidal_positions(k, d, h.device, h.dtype)
        global_pos = sinusoidal_positions(n, d, h.device, h.dtype)
        for intra, inter in zip(self.intra, self.inter):
            h = intra(rearrange(h, "b n k d -> (b n) k d") + local_pos).view(b, n, k, d)
            h = rearrange(h, "b n k d -> (b k) n d")
            h = rearrange(inter(h + global_pos), "(b k) n d -> b n k d", b=b)
        h = rearrange(h, "b n k d -> b d (n k)")[..., :length]
        return x + self.out(h)


def build_transformer(
    kind: str, channels: int, d_model: int, nhead: int, num_layers: int, dropout: float, chunk: int
) -> nn.Module:
    if d_model % nhead:
        raise ValueError(f"d_model={d_model} must be divisible by nhead={nhead}")
    if kind == "time":
        return TimeTransformer(channels, d_model, nhead, num_layers, dropout)
    if kind == "dual_path":
        return DualPathTransformer(channels, d_model, nhead, num_layers, dropout, chunk)
    raise ValueError(f"attention must be 'time' or 'dual_path', not {kind!r}")
