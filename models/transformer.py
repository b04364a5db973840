"""Transformer blocks for 1-D feature maps (B, C, T): plain attention along time, or dual-path
attention (within chunks, then across chunks, as in two-stage transformer speech-enhancement models)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def sinusoidal_positions(length: int, dim: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(length, dim) sine/cosine position codes (Vaswani et al.); works for any length."""
    position = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    rates = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    codes = torch.zeros(length, dim, device=device, dtype=torch.float32)
    codes[:, 0::2] = torch.sin(position * rates)
    codes[:, 1::2] = torch.cos(position * rates[: dim // 2])
    return codes.to(dtype)


def _zero_init(conv: nn.Conv1d) -> nn.Conv1d:
    """Zero the residual branch's output projection, so a new block starts as the identity and adding it
    to a working network cannot make the first epochs worse."""
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


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
        self.out = _zero_init(nn.Conv1d(d_model, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x).transpose(1, 2)  # (B, T, d)
        h = h + sinusoidal_positions(h.shape[1], h.shape[2], h.device, h.dtype)
        h = self.encoder(h)
        return x + self.out(h.transpose(1, 2))


class DualPathStage(nn.Module):
    """One intra-chunk then one inter-chunk Transformer layer on (B, n chunks, k frames, d)."""

    def __init__(self, d_model: int, nhead: int, dropout: float) -> None:
        super().__init__()
        self.intra = _encoder(d_model, nhead, 1, dropout)
        self.inter = _encoder(d_model, nhead, 1, dropout)

    def forward(self, h: torch.Tensor, local_pos: torch.Tensor, global_pos: torch.Tensor) -> torch.Tensor:
        b, n, k, d = h.shape
        h = self.intra(h.reshape(b * n, k, d) + local_pos).reshape(b, n, k, d)
        across = h.permute(0, 2, 1, 3).reshape(b * k, n, d)  # attend across chunks
        return self.inter(across + global_pos).reshape(b, k, n, d).permute(0, 2, 1, 3)


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
        self.stages = nn.ModuleList(DualPathStage(d_model, nhead, dropout) for _ in range(num_layers))
        self.out = _zero_init(nn.Conv1d(d_model, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # plain reshape/permute rather than einops so the block compiles with TorchScript for export
        length = x.shape[-1]
        pad = (-length) % self.chunk
        h = F.pad(self.inp(x), (0, pad))
        b, d, padded = h.shape
        k = self.chunk
        n = padded // k
        h = h.reshape(b, d, n, k).permute(0, 2, 3, 1)  # (B, n chunks, k frames, d)
        local_pos = sinusoidal_positions(k, d, h.device, h.dtype)
        global_pos = sinusoidal_positions(n, d, h.device, h.dtype)
        for stage in self.stages:
            h = stage(h, local_pos, global_pos)
        h = h.permute(0, 3, 1, 2).reshape(b, d, n * k)[..., :length]
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
