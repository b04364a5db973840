"""Building blocks of the VC acoustic model: masked Transformer (FFT) stacks, variance predictors, PostNet.

Every block takes a (B, T) validity mask and zeroes padded frames before each convolution, and attention
ignores padded keys, so an item's output does not depend on how much padding its batch carries.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from denoise_vc.models.transformer import sinusoidal_positions


def masked(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero the padded frames of (B, T, C)."""
    return x * mask[..., None].to(x.dtype)


class ConvFeedForward(nn.Module):
    """FastSpeech position-wise feed-forward: Conv1d(k) -> ReLU -> Conv1d(1), on (B, T, C)."""

    def __init__(self, d_model: int, hidden: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(d_model, hidden, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv1d(hidden, d_model, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv1(masked(x, mask).transpose(1, 2)))
        return self.dropout(self.conv2(self.dropout(h)).transpose(1, 2))


class FFTBlock(nn.Module):
    """Pre-norm self-attention (padded keys masked) then a convolutional feed-forward, both residual."""

    def __init__(self, d_model: int, heads: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attention = nn.MultiheadAttention(d_model, heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = ConvFeedForward(d_model, 4 * d_model, kernel, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        h, _ = self.attention(h, h, h, key_padding_mask=~mask, need_weights=False)
        x = masked(x + self.dropout(h), mask)
        return masked(x + self.ffn(self.norm2(x), mask), mask)


class FFTStack(nn.Module):
    """Sinusoidal positions (0..T-1 per item) + `layers` FFT blocks + a final LayerNorm; encoder and decoder."""

    def __init__(self, d_model: int, layers: int, heads: int, kernel: int, dropout: float) -> None:
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model={d_model} must be divisible by heads={heads}")
        self.position_scale = nn.Parameter(torch.ones(1))
        self.blocks = nn.ModuleList(FFTBlock(d_model, heads, kernel, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        positions = sinusoidal_positions(x.shape[1], x.shape[2], x.device, x.dtype)
        x = masked(self.dropout(x + self.position_scale * positions), mask)
        for block in self.blocks:
            x = block(x, mask)
        return masked(self.norm(x), mask)


class ConvNormStack(nn.Module):
    """`layers` x (Conv1d(k) -> ReLU -> LayerNorm -> Dropout) on (B, T, C), padding zeroed before each conv."""

    def __init__(self, c_in: int, channels: int, kernel: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(c_in if i == 0 else channels, channels, kernel, padding=kernel // 2) for i in range(layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(channels) for _ in range(layers))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for conv, norm in zip(self.convs, self.norms):
            x = conv(masked(x, mask).transpose(1, 2)).transpose(1, 2)
            x = self.dropout(norm(torch.relu(x)))
        return masked(x, mask)


class VariancePredictor(nn.Module):
    """FastSpeech 2 variance predictor: a conv stack and a linear head giving one value per frame."""

    def __init__(self, d_model: int, channels: int, kernel: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.convs = ConvNormStack(d_model, channels, kernel, layers, dropout)
        self.head = nn.Linear(channels, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.convs(x, mask)).squeeze(-1) * mask.to(x.dtype)


class ScalarEmbedding(nn.Module):
    """Embed a per-frame scalar (pitch or energy) into d_model channels with a short convolution."""

    def __init__(self, d_model: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, d_model, kernel, padding=kernel // 2)

    def forward(self, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.conv((values * mask.to(values.dtype))[:, None, :]).transpose(1, 2)
        return masked(h, mask)


class PostNet(nn.Module):
    """Tacotron 2 PostNet: `layers` Conv1d (tanh on all but the last) predicting a mel residual.

    LayerNorm over channels replaces Tacotron's BatchNorm, whose batch statistics would count padding frames.
    """

    def __init__(self, n_mels: int, channels: int, kernel: int, layers: int, dropout: float) -> None:
        super().__init__()
        sizes = [n_mels] + [channels] * (layers - 1) + [n_mels]
        self.convs = nn.ModuleList(
            nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2) for c_in, c_out in zip(sizes[:-1], sizes[1:])
        )
        self.norms = nn.ModuleList(nn.LayerNorm(c_out) for c_out in sizes[1:-1])
        self.dropout = nn.Dropout(dropout)

    def forward(self, mel: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = mel
        for conv, norm in zip(self.convs[:-1], self.norms):
            h = conv(masked(h, mask).transpose(1, 2)).transpose(1, 2)
            h = self.dropout(torch.tanh(norm(h)))
        h = self.convs[-1](masked(h, mask).transpose(1, 2)).transpose(1, 2)
        return masked(self.dropout(h), mask)


class PitchPredictor(nn.Module):
    """Frame-rate pitch predictor; non-autoregressive by default (better with wGMM prosody, per the lab notes).

    With `autoregressive`, a GRU over frames also sees the previous frame's pitch: the shifted target when
    teacher-forced, its own previous output at inference (a loop over frames there, as autoregression needs).
    """

    def __init__(
        self, d_model: int, channels: int, kernel: int, layers: int, dropout: float, autoregressive: bool
    ) -> None:
        super().__init__()
        self.autoregressive = autoregressive
        self.convs = ConvNormStack(d_model, channels, kernel, layers, dropout)
        self.gru = nn.GRU(channels + 1, channels, batch_first=True) if autoregressive else None
        self.head = nn.Linear(channels, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        h = self.convs(x, mask)
        if self.gru is None:
            out = self.head(h).squeeze(-1)
        elif target is not None:
            previous = torch.cat([torch.zeros_like(target[:, :1]), target[:, :-1]], dim=1).to(h.dtype)
            out = self.head(self.gru(torch.cat([h, previous[..., None]], dim=-1))[0]).squeeze(-1)
        else:
            previous = h.new_zeros(h.shape[0], 1, 1)
            state = None
            steps = []
            for t in range(h.shape[1]):
                hidden, state = self.gru(torch.cat([h[:, t : t + 1], previous], dim=-1), state)
                previous = self.head(hidden)
                steps.append(previous[:, 0, 0])
            out = torch.stack(steps, dim=1) if steps else h.new_zeros(h.shape[0], 0)
        return out * mask.to(out.dtype)
