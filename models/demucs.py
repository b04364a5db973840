"""Demucs-style waveform denoiser (after Defossez et al., "Real Time Speech Enhancement in the Waveform
Domain", Interspeech 2020; written from the paper, not from facebookresearch/denoiser's code).

Encoder: `depth` layers of Conv1d(kernel 8, stride 4) + ReLU + 1x1 Conv1d to 2x channels + GLU, channels
starting at `hidden` and multiplied by `growth` per layer (capped at `max_hidden`). Bottleneck: an LSTM
over the coarsest frames (two layers; bidirectional with a linear layer back to the width, or
unidirectional when `causal`). Decoder: 1x1 Conv1d + GLU, ConvTranspose1d(kernel 8, stride 4) (+ ReLU
except on the last layer), with the matching encoder output added first (skip connections). The input is
divided by its standard deviation (+ `floor`) and the output multiplied back, so the network sees unit
level whatever the recording's loudness; causal models use the running standard deviation of the past.

Every encoder layer left-pads its input by kernel - stride samples and the matching decoder layer cuts as
many from its output, so the output is aligned with the input (no delay); a causal model then looks at
most `lookahead` samples ahead (595 at depth 4, 37 ms at 16 kHz). Inputs of any length are zero-padded to
a multiple of `stride ** depth` and trimmed back. Conv weights start
rescaled toward a standard deviation of `rescale` (as in the paper), which speeds up early training.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from denoise_vc.models.padding import pad_to_multiple, valid_length
from denoise_vc.models.registry import register


class EncoderLayer(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.left = kernel - stride
        self.conv = nn.Conv1d(c_in, c_out, kernel, stride)
        self.gate = nn.Conv1d(c_out, 2 * c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv(F.pad(x, [self.left, 0])))
        return F.glu(self.gate(h), dim=1)


class DecoderLayer(nn.Module):
    """Transposed conv whose frame t writes the samples encoder frame t read (the first kernel - stride
    outputs are cut, matching the encoder's left padding), so no layer shifts the signal in time."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, last: bool) -> None:
        super().__init__()
        self.gate = nn.Conv1d(c_in, 2 * c_in, 1)
        self.conv = nn.ConvTranspose1d(c_in, c_out, kernel, stride)
        self.left = kernel - stride
        self.last = last

    def forward(self, x: torch.Tensor, length: int) -> torch.Tensor:
        h = self.conv(F.glu(self.gate(x), dim=1))[..., self.left : self.left + length]
        return h if self.last else F.relu(h)


class BottleneckLSTM(nn.Module):
    """Two LSTM layers over the coarsest frames; bidirectional ones are projected back to `width`."""

    def __init__(self, width: int, layers: int, bidirectional: bool) -> None:
        super().__init__()
        self.lstm = nn.LSTM(width, width, num_layers=layers, bidirectional=bidirectional)
        self.linear = nn.Linear(2 * width, width) if bidirectional else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, frames)
        h = self.lstm(x.permute(2, 0, 1))[0]
        return self.linear(h).permute(1, 2, 0)


def _rescale(module: nn.Module, reference: float) -> None:
    """Scale each conv's weight and bias by sqrt(reference / std(weight))."""
    for sub in module.modules():
        if isinstance(sub, nn.Conv1d | nn.ConvTranspose1d):
            scale = (sub.weight.std().detach() / reference) ** 0.5
            sub.weight.data /= scale
            if sub.bias is not None:
                sub.bias.data /= scale


@register("demucs")
class Demucs(nn.Module):
    """The Demucs waveform baseline (module docstring)."""

    __jit_unused_properties__ = ["lookahead"]

    def __init__(
        self,
        depth: int = 4,
        hidden: int = 32,
        growth: float = 2.0,
        max_hidden: int = 1024,
        kernel: int = 8,
        stride: int = 4,
        lstm_layers: int = 2,
        causal: bool = False,
        normalize: bool = True,
        floor: float = 1e-3,
        rescale: float = 0.1,
    ) -> None:
        super().__init__()
        if kernel < stride:
            raise ValueError(f"kernel ({kernel}) must be >= stride ({stride})")
        self.causal = bool(causal)
        self.normalize = bool(normalize)
        self.floor = float(floor)
        self.multiple = stride**depth
        self.kernel, self.stride = int(kernel), int(stride)
        widths = [min(int(hidden * growth**i), max_hidden) for i in range(depth)]
        ins = [1] + widths[:-1]
        self.encoder = nn.ModuleList(EncoderLayer(ins[i], widths[i], kernel, stride) for i in range(depth))
        self.lstm = BottleneckLSTM(widths[-1], lstm_layers, bidirectional=not self.causal)
        self.decoder = nn.ModuleList(
            DecoderLayer(widths[i], ins[i], kernel, stride, last=i == 0) for i in reversed(range(depth))
        )
        if rescale:
            _rescale(self, float(rescale))

    @property
    def lookahead(self) -> int:
        """Worst-case future samples a causal model's output depends on: the decoders' kernel overlap at
        every level plus one bottleneck frame."""
        stride, depth = self.stride, len(self.encoder)
        return (self.kernel - stride) * (stride**depth - 1) // (stride - 1) + stride**depth - 1

    def valid_length(self, length: int) -> int:
        """Input lengths the network takes without padding: multiples of stride ** depth."""
        return valid_length(length, self.multiple)

    def _std(self, x: torch.Tensor) -> torch.Tensor:
        """Per-item level (N, 1, 1), or per sample (N, 1, T) from the past only when causal; detached."""
        if not self.normalize:
            return torch.ones_like(x[:, :, :1])
        if self.causal:
            count = torch.arange(1, x.shape[-1] + 1, device=x.device, dtype=x.dtype)
            std = torch.sqrt(torch.cumsum(x * x, dim=-1) / count)
        else:
            std = x.std(dim=-1, keepdim=True, unbiased=False)
        return (std + self.floor).detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x = x.reshape(-1, 1, shape[-1])
        std = self._std(x)
        h, length = pad_to_multiple(x / std, self.multiple)
        skips: list[torch.Tensor] = []
        lengths: list[int] = []
        for layer in self.encoder:
            lengths.append(h.shape[-1])
            h = layer(h)
            skips.append(h)
        h = self.lstm(h)
        for i, layer in enumerate(self.decoder):
            j = len(skips) - 1 - i
            h = layer(h + skips[j], lengths[j])
        return (h[..., :length] * std).reshape(shape)
