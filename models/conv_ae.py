"""A plain convolutional auto-encoder (no skips): the baseline the U-Nets should beat."""

from __future__ import annotations

import torch
import torch.nn as nn

from denoise_vc.models.padding import pad_to_multiple, valid_length
from denoise_vc.models.registry import register


@register("conv_ae")
class ConvAutoEncoder(nn.Module):
    def __init__(self, levels: int = 5, channels: int = 32, kernel: int = 15, stride: int = 2) -> None:
        super().__init__()
        self.multiple = stride**levels
        enc, dec = [], []
        c_in = 1
        for i in range(levels):
            c_out = channels * (i + 1)
            enc += [nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=kernel // 2), nn.PReLU(c_out)]
            c_in = c_out
        for i in reversed(range(levels)):
            c_out = channels * i if i > 0 else channels
            dec += [
                nn.ConvTranspose1d(c_in, c_out, stride * 2, stride=stride, padding=stride // 2),
                nn.PReLU(c_out),
            ]
            c_in = c_out
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)
        self.out = nn.Sequential(nn.Conv1d(c_in, 1, 1), nn.Tanh())

    def valid_length(self, length: int) -> int:
        return valid_length(length, self.multiple)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, length = pad_to_multiple(x, self.multiple)
        return self.out(self.decoder(self.encoder(x)))[..., :length]
