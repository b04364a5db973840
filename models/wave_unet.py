"""Wave-U-Net for speech enhancement (after haoxiangsnr/Wave-U-Net-for-Speech-Enhancement).

Encoder: `levels` levels of Conv1d(k=15) + BatchNorm + LeakyReLU, each followed by decimation by 2,
channels growing by `channels_interval` per level. Decoder: linear upsampling by 2 that puts each kept
sample back where it was taken (models/updown.py; the reference's align_corners interpolation stretched
the signal), concatenation with the skip, Conv1d(k=5) + BatchNorm + LeakyReLU. Output: the input
concatenated before a 1x1 conv and tanh. Inputs of any length are zero-padded to a multiple of 2**levels
and trimmed back.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from denoise_vc.models.padding import pad_to_multiple, valid_length
from denoise_vc.models.registry import register
from denoise_vc.models.transformer import build_transformer
from denoise_vc.models.updown import decimate2, upsample2


def conv_block(c_in: int, c_out: int, kernel: int, norm: bool) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2),
        nn.BatchNorm1d(c_out) if norm else nn.Identity(),
        nn.LeakyReLU(0.1),
    )


class WaveUNetBody(nn.Module):
    """Encoder, bottleneck and decoder; `bottleneck` lets subclasses insert e.g. Transformer blocks."""

    def __init__(
        self,
        levels: int = 12,
        channels_interval: int = 24,
        down_kernel: int = 15,
        up_kernel: int = 5,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        self.levels = levels
        self.multiple = 2**levels
        enc_in = [1] + [i * channels_interval for i in range(1, levels)]
        enc_out = [i * channels_interval for i in range(1, levels + 1)]
        self.encoder = nn.ModuleList(
            conv_block(cin, cout, down_kernel, batch_norm) for cin, cout in zip(enc_in, enc_out)
        )
        self.middle = conv_block(enc_out[-1], enc_out[-1], down_kernel, batch_norm)
        dec_in = [(2 * i + 1) * channels_interval for i in range(1, levels)] + [2 * levels * channels_interval]
        dec_in = dec_in[::-1]
        dec_out = enc_out[::-1]
        self.decoder = nn.ModuleList(conv_block(cin, cout, up_kernel, batch_norm) for cin, cout in zip(dec_in, dec_out))
        self.out = nn.Sequential(nn.Conv1d(1 + channels_interval, 1, 1), nn.Tanh())
        self.bottleneck_channels = enc_out[-1]

    def bottleneck(self, h: torch.Tensor) -> torch.Tensor:
        return h

    def valid_length(self, length: int) -> int:
        """Input lengths the network takes without padding are multiples of 2**levels."""
        return valid_length(length, self.multiple)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, length = pad_to_multiple(x, self.multiple)
        skips: list[torch.Tensor] = []
        h = x
        for layer in self.encoder:
            h = layer(h)
            skips.append(h)
            h = decimate2(h)
        h = self.bottleneck(self.middle(h))
        for i, layer in enumerate(self.decoder):  # indexed, not zip/reversed, so TorchScript compiles it
            h = upsample2(h)
            h = layer(torch.cat([h, skips[len(skips) - 1 - i]], dim=1))
        return self.out(torch.cat([h, x], dim=1))[..., :length]


@register("wave_unet")
class WaveUNet(WaveUNetBody):
    """The plain Wave-U-Net."""


@register("transformer_unet")
class TransformerUNet(WaveUNetBody):
    """Wave-U-Net with Transformer encoder blocks at the bottleneck (the research notes' best model).

    `levels` is the U-Net depth; `num_layers`, `nhead`, `d_model` and `dropout` describe the Transformer;
    `attention` is `time` (self-attention along the bottleneck's time axis) or `dual_path` (within
    chunks of `chunk` frames, then across chunks).
    """

    def __init__(
        self,
        levels: int = 8,
        channels_interval: int = 24,
        down_kernel: int = 15,
        up_kernel: int = 5,
        batch_norm: bool = True,
        num_layers: int = 2,
        nhead: int = 4,
        d_model: int = 128,
        dropout: float = 0.1,
        attention: str = "time",
        chunk: int = 16,
    ) -> None:
        super().__init__(levels, channels_interval, down_kernel, up_kernel, batch_norm)
        self.transformer = build_transformer(
            attention, self.bottleneck_channels, d_model, nhead, num_layers, dropout, chunk
        )

    def bottleneck(self, h: torch.Tensor) -> torch.Tensor:
        return self.transformer(h)
