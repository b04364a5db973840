"""1-D auto-encoders whose decoder upsamples by sub-pixel rearrangement (PixelShuffle), not by
interpolation or transposed convolution: a conv makes `factor` times the channels, einops folds them
into time. No skip connections (the research notes suspected skips hurt), optionally Transformer blocks
in the middle."""

from __future__ import annotations

import torch
import torch.nn as nn
from einops.layers.torch import Rearrange

from denoise_vc.models.padding import pad_to_multiple, valid_length
from denoise_vc.models.registry import register
from denoise_vc.models.transformer import build_transformer


class SubPixelUp(nn.Module):
    """(B, C_in, T) -> (B, C_out, factor * T) by a conv to C_out * factor channels and a sub-pixel shuffle."""

    def __init__(self, c_in: int, c_out: int, factor: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out * factor, kernel, padding=kernel // 2)
        self.shuffle = Rearrange("b (c r) t -> b c (t r)", r=factor)
        self.act = nn.PReLU(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shuffle(self.conv(x)))


@register("pixelshuffle_ae")
class PixelShuffleAutoEncoder(nn.Module):
    def __init__(
        self,
        levels: int = 6,
        channels: int = 32,
        kernel: int = 15,
        factor: int = 2,
        num_layers: int = 0,
        nhead: int = 4,
        d_model: int = 128,
        dropout: float = 0.1,
        attention: str = "time",
        chunk: int = 16,
    ) -> None:
        super().__init__()
        self.multiple = factor**levels
        enc: list[nn.Module] = []
        c_in = 1
        widths = [channels * (i + 1) for i in range(levels)]
        for c_out in widths:
            enc += [nn.Conv1d(c_in, c_out, kernel, stride=factor, padding=kernel // 2), nn.PReLU(c_out)]
            c_in = c_out
        self.encoder = nn.Sequential(*enc)
        self.middle = (
            build_transformer(attention, c_in, d_model, nhead, num_layers, dropout, chunk)
            if num_layers > 0
            else nn.Identity()
        )
        outs = widths[-2::-1] + [channels]
        self.decoder = nn.Sequential(*[SubPixelUp(ci, co, factor, 5) for ci, co in zip(widths[::-1], outs)])
        self.out = nn.Sequential(nn.Conv1d(channels + 1, 1, 1), nn.Tanh())

    def valid_length(self, length: int) -> int:
        return valid_length(length, self.multiple)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, length = pad_to_multiple(x, self.multiple)
        h = self.decoder(self.middle(self.encoder(x)))
        return self.out(torch.cat([h, x], dim=1))[..., :length]


@register("pixelshuffle_transformer_ae")
class PixelShuffleTransformerAutoEncoder(PixelShuffleAutoEncoder):
    """The PixelShuffle auto-encoder with Transformer blocks (2 layers by default) between encoder and decoder."""

    def __init__(self, num_layers: int = 2, **kwargs) -> None:
        super().__init__(num_layers=num_layers, **kwargs)
