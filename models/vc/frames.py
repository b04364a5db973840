"""Frame bookkeeping for the VC model: reduction-factor stacking, length regulation and segment pooling.

Everything is vectorised over the batch with reshape, `repeat_interleave`, `index_add_` and `gather`: no dense
alignment matrices, no Python loops over items, frames or segments. Bad bookkeeping from the data side
(lengths past the tensor, segment indices out of range, zero segments) is repaired, never asserted.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def reduce_frames(x: torch.Tensor, r: int) -> torch.Tensor:
    """Stack every `r` consecutive frames: (B, T, C) -> (B, ceil(T / r), r * C); a ragged tail is zero-padded."""
    batch, length, channels = x.shape
    pad = (-length) % r
    if pad:
        x = F.pad(x, (0, 0, 0, pad))
    return x.reshape(batch, (length + pad) // r, r * channels)


def expand_frames(x: torch.Tensor, r: int) -> torch.Tensor:
    """Undo `reduce_frames`: (B, T_r, r * C) -> (B, T_r * r, C)."""
    batch, length, channels = x.shape
    return x.reshape(batch, length * r, channels // r)


def length_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B, max_len) bool, True on valid frames (index < length)."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def clamp_lengths(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """Lengths inside [1, max_len]: an empty or overlong item would otherwise blank or overrun attention."""
    return lengths.long().clamp(min=1, max=max(max_len, 1))


def length_regulate(x: torch.Tensor, durations: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """Repeat frame t of item b `durations[b, t]` times (FastSpeech length regulator) via `repeat_interleave`.

    x (B, T, C), durations (B, T) integer >= 0 -> (B, max_len, C), zero past each item's total. `max_len`
    defaults to the longest total; frames past `max_len` are dropped (repair for durations that overrun).
    """
    batch, _, channels = x.shape
    durations = durations.long().clamp(min=0)
    totals = durations.sum(dim=1)
    if max_len is None:
        max_len = int(totals.max()) if batch else 0
    out = x.new_zeros(batch, max_len, channels)
    flat = x.reshape(-1, channels).repeat_interleave(durations.reshape(-1), dim=0)  # (sum totals, C)
    item = torch.repeat_interleave(torch.arange(batch, device=x.device), totals)
    starts = torch.cumsum(totals, 0) - totals
    position = torch.arange(flat.shape[0], device=x.device) - starts[item]
    keep = position < max_len
    out[item[keep], position[keep]] = flat[keep]
    return out


def repair_segments(segments: torch.Tensor, n_segments: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Segment index per frame, made consistent: -1 past `lengths`, else clamped into [0, n_segments - 1]."""
    n = n_segments.long().clamp(min=1)[:, None]
    valid = length_mask(lengths, segments.shape[1])
    return torch.where(valid, segments.long().clamp(min=0).minimum(n - 1), -1)


def segment_mean(x: torch.Tensor, segments: torch.Tensor, n_max: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of the frames of each segment via `index_add_`: x (B, T, C), segments (B, T) with -1 on padding.

    Returns (B, n_max, C) means (zero for a segment with no frames, e.g. one collapsed by reduction) and the
    (B, n_max) frame counts. Sums and counts are float32 even under AMP (bf16 counts stop being exact at 256).
    """
    batch, _, channels = x.shape
    valid = segments >= 0
    flat_index = (torch.arange(batch, device=x.device)[:, None] * n_max + segments.clamp(min=0))[valid]
    sums = x.new_zeros(batch * n_max, channels, dtype=torch.float32).index_add_(0, flat_index, x[valid].float())
    counts = sums.new_zeros(batch * n_max).index_add_(0, flat_index, sums.new_ones(flat_index.shape[0]))
    means = (sums / counts.clamp(min=1.0)[:, None]).to(x.dtype)
    return means.reshape(batch, n_max, channels), counts.reshape(batch, n_max)


def segment_broadcast(vectors: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
    """Give every frame its segment's vector via `gather`: vectors (B, S, C), segments (B, T) -> (B, T, C);
    zero on padding frames (segment -1)."""
    channels = vectors.shape[-1]
    index = segments.clamp(min=0)[..., None].expand(-1, -1, channels)
    return torch.gather(vectors, 1, index) * (segments >= 0)[..., None].to(vectors.dtype)
