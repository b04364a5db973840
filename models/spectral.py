"""Sub-band CRN: a compact STFT-domain denoiser in the GTCRN / DeepFilterNet / CRN family.

Written from the papers' ideas (GTCRN, ICASSP 2024; DeepFilterNet; CRN), not from their code:

1. STFT with a sqrt-Hann window whose length and hop are given in milliseconds and turned into samples
   with the model's `sample_rate` (32 ms / 16 ms: 512 / 256 at 16 kHz, 12 / 6 at 360 Hz).
2. Features per bin: the power-law-compressed magnitude (|X|^0.3) and the compressed real and imaginary
   parts, after dividing the spectrum by its RMS level (running mean over past frames when causal, the
   whole input's mean otherwise), so the model does not depend on the input's loudness.
3. Bins above `erb_split_hz` are merged into `erb_bands` triangular bands equally spaced on the ERB scale;
   lower bins are kept (at 16 kHz: 65 bins + 64 bands = 129, as GTCRN). Rates whose Nyquist lies below the
   split (ECG at 360 Hz - 1 kHz) keep every bin.
4. Sub-band encoder: `levels` Conv2d layers with kernel 5 and stride 2 along frequency (each output band
   sees its neighbours; 129 -> 65 -> 33 -> 17 bands at 16 kHz), then residual blocks of pointwise conv,
   depthwise 3x3 conv dilated along time (`dilations`; causal padding when `causal`) and pointwise conv.
5. Temporal core (CRN / DeepFilterNet style): each frame's sub-band features (channels x bands) are
   flattened, projected by a grouped linear layer to `hidden` features and run through `rnn_layers`
   grouped GRUs over frames: `groups` independent GRUs over slices of the features (channel groups shuffled
   between layers), unidirectional when `causal`, bidirectional otherwise, each with a residual connection;
   a grouped linear layer projects back and the result is added to the encoder output. (One GRU call per
   group and layer for the whole utterance: on CPUs a GRU's cost is its number of sequential steps, so
   one flattened sequence is much cheaper than GTCRN's per-band dual-path GRUs.)
6. Decoder: the mirror image with additive skip connections; sub-pixel convs double the band axis back,
   and the band values are interpolated back to STFT bins (the transpose of the ERB filters).
7. A complex ratio mask with magnitude `mask_floor + (1 - mask_floor) * tanh(|z|)` in [mask_floor, 1)
   and the phase of z, applied to the noisy spectrum, then the inverse STFT. The mask starts near
   tanh(1) = 0.76 with zero phase (a pass-through but for the level, which SI-SDR ignores; a start nearer 1
   saturates tanh and learns slowly), and `mask_floor` bounds the attenuation (~30 dB at 0.03) so speech is
   never wiped out.

Causal: every layer sees only the current and past frames, so the output at sample s depends on input
samples < s + n_fft (one STFT window of look-ahead, the algorithmic latency of any overlap-add STFT model).
Any input length is zero-padded to a multiple of the hop and trimmed back.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from denoise_vc.models.padding import pad_to_multiple, valid_length
from denoise_vc.models.registry import register


def stft_sizes(sample_rate: int, win_ms: float, hop_ms: float) -> tuple[int, int]:
    """(window = n_fft, hop) in samples for a window and hop in milliseconds."""
    win = max(2, int(round(win_ms * sample_rate / 1000.0)))
    hop = max(1, min(win, int(round(hop_ms * sample_rate / 1000.0))))
    return win, hop


def _erb(hz: float) -> float:
    return 21.4 * math.log10(1.0 + 0.00437 * hz)


def _erb_inverse(erb: float) -> float:
    return (10.0 ** (erb / 21.4) - 1.0) / 0.00437


def band_matrices(n_bins: int, sample_rate: int, split_hz: float, bands: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(merge (bins, n_bands), expand (n_bands, bins)): bins up to `split_hz` pass as they are, higher bins are
    merged into at most `bands` triangular ERB-spaced bands (fewer if centres would be closer than a bin).

    `expand` interpolates band values back to bins (each bin's weights sum to 1); `merge` is the weighted
    mean of each band's bins (each band's weights sum to 1)."""
    bin_hz = sample_rate / 2.0 / max(1, n_bins - 1)
    low = min(n_bins, int(math.floor(split_hz / bin_hz)) + 1)
    high = n_bins - low
    count = min(int(bands), high)
    centres: list[float] = []
    while count > 0:
        if count == 1:
            centres = [float(low)]
            break
        lo_e, hi_e = _erb(low * bin_hz), _erb((n_bins - 1) * bin_hz)
        centres = [_erb_inverse(lo_e + (hi_e - lo_e) * k / (count - 1)) / bin_hz for k in range(count)]
        centres[0], centres[-1] = float(low), float(n_bins - 1)
        if min(b - a for a, b in zip(centres, centres[1:])) >= 1.0:
            break
        count -= 1
    expand = torch.zeros(low + count, n_bins)
    for b in range(low):
        expand[b, b] = 1.0
    for b in range(low, n_bins):
        if count == 1:
            expand[low, b] = 1.0
            continue
        k = max(i for i in range(count - 1) if centres[i] <= b)
        frac = min(1.0, (b - centres[k]) / (centres[k + 1] - centres[k]))
        expand[low + k, b] += 1.0 - frac
        expand[low + k + 1, b] += frac
    merge = (expand / expand.sum(dim=1, keepdim=True)).t().contiguous()
    return merge, expand


def fit_last(x: torch.Tensor, size: int) -> torch.Tensor:
    """Crop or zero-pad the last axis to `size` (transposed convs give 2n - 1 bands for n)."""
    if x.shape[-1] >= size:
        return x[..., :size]
    return F.pad(x, [0, size - x.shape[-1]])


class TemporalBlock(nn.Module):
    """Pointwise conv, depthwise 3x3 conv dilated along time (causal or centred), pointwise conv; residual."""

    def __init__(self, channels: int, dilation: int, causal: bool) -> None:
        super().__init__()
        self.pw1 = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels), nn.PReLU(channels))
        self.dw = nn.Sequential(
            nn.Conv2d(channels, channels, (3, 3), dilation=(dilation, 1), groups=channels),
            nn.BatchNorm2d(channels),
            nn.PReLU(channels),
        )
        self.pw2 = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels))
        self.left = 2 * dilation if causal else dilation
        self.right = 0 if causal else dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, frames, bands)
        h = self.dw(F.pad(self.pw1(x), [1, 1, self.left, self.right]))
        return x + self.pw2(h)


def down(c_in: int, c_out: int, groups: int) -> nn.Sequential:
    """Halve the band axis: kernel 5 along frequency (each output band sees its neighbours), stride 2."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, (1, 5), stride=(1, 2), padding=(0, 2), groups=groups),
        nn.BatchNorm2d(c_out),
        nn.PReLU(c_out),
    )


class SubPixelUp(nn.Module):
    """Double the band axis: a (1, 3) conv to 2 x c_out channels whose halves become the even and odd bands
    (as a transposed conv, but a plain conv is several times faster on CPUs)."""

    def __init__(self, c_in: int, c_out: int, last: bool = False) -> None:
        super().__init__()
        self.c_out = c_out
        self.conv = nn.Conv2d(c_in, 2 * c_out, (1, 3), padding=(0, 1))
        self.post = nn.Identity() if last else nn.Sequential(nn.BatchNorm2d(c_out), nn.PReLU(c_out))

    def forward(self, x: torch.Tensor, size: int) -> torch.Tensor:
        n, _, t, f = x.shape
        h = self.conv(x).reshape(n, 2, self.c_out, t, f).permute(0, 2, 3, 4, 1).reshape(n, self.c_out, t, 2 * f)
        return self.post(fit_last(h, size))


class GroupedGRU(nn.Module):
    """`groups` independent GRUs, each over its own slice of the features; output width = input width."""

    def __init__(self, width: int, groups: int, bidirectional: bool) -> None:
        super().__init__()
        if width % (groups * (2 if bidirectional else 1)):
            raise ValueError(f"hidden ({width}) must be divisible by groups x directions")
        part = width // groups
        self.groups = groups
        self.grus = nn.ModuleList(
            nn.GRU(part, part // 2 if bidirectional else part, batch_first=True, bidirectional=bidirectional)
            for _ in range(groups)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, frames, width)
        parts = torch.chunk(x, self.groups, dim=-1)
        outs: list[torch.Tensor] = []
        for i, gru in enumerate(self.grus):
            outs.append(gru(parts[i])[0])
        return torch.cat(outs, dim=-1)


class TemporalCore(nn.Module):
    """Each frame's flattened sub-band features -> grouped linear -> `layers` grouped GRUs over frames
    (residual; the groups are shuffled between layers so they exchange information) -> grouped linear back."""

    def __init__(self, features: int, hidden: int, groups: int, layers: int, causal: bool) -> None:
        super().__init__()
        if features % groups or hidden % groups:
            raise ValueError(f"features ({features}) and hidden ({hidden}) must be divisible by groups ({groups})")
        self.groups = groups
        self.proj_in = nn.Conv1d(features, hidden, 1, groups=groups)
        self.rnns = nn.ModuleList(GroupedGRU(hidden, groups, bidirectional=not causal) for _ in range(layers))
        self.proj_out = nn.Conv1d(hidden, features, 1, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, features, frames)
        h = torch.relu(self.proj_in(x)).transpose(1, 2)  # (N, frames, hidden)
        n, t, width = h.shape
        for i, rnn in enumerate(self.rnns):
            if i > 0 and self.groups > 1:
                h = h.reshape(n, t, self.groups, width // self.groups).transpose(2, 3).reshape(n, t, width)
            h = h + rnn(h)
        return self.proj_out(h.transpose(1, 2))


def _halved(size: int) -> int:
    """Bands after a `down` layer (kernel 5, stride 2, padding 2)."""
    return (size - 1) // 2 + 1


@register("subband_crn")
class SubbandCRN(nn.Module):
    """Compact sub-band convolutional recurrent network with a bounded complex ratio mask (module docstring)."""

    def __init__(
        self,
        sample_rate: int = 16000,
        win_ms: float = 32.0,
        hop_ms: float = 16.0,
        erb_split_hz: float = 2000.0,
        erb_bands: int = 64,
        channels: int = 16,
        levels: int = 3,
        dilations: list[int] | tuple[int, ...] = (1, 2, 4),
        hidden: int = 128,
        groups: int = 2,
        rnn_layers: int = 2,
        causal: bool = False,
        mask_floor: float = 0.03,
        compress: float = 0.3,
    ) -> None:
        super().__init__()
        if not 0.0 <= mask_floor < 1.0:
            raise ValueError(f"mask_floor must be in [0, 1), got {mask_floor}")
        if channels % groups:
            raise ValueError(f"channels ({channels}) must be divisible by groups ({groups})")
        self.sample_rate = int(sample_rate)
        self.n_fft, self.hop = stft_sizes(self.sample_rate, win_ms, hop_ms)
        self.causal = bool(causal)
        self.mask_floor = float(mask_floor)
        self.compress = float(compress)
        self.register_buffer("window", torch.hann_window(self.n_fft).sqrt(), persistent=False)
        merge, expand = band_matrices(self.n_fft // 2 + 1, self.sample_rate, erb_split_hz, erb_bands)
        self.register_buffer("merge", merge, persistent=False)
        self.register_buffer("expand", expand, persistent=False)
        self.bands = int(expand.shape[0])
        c = int(channels)
        self.encoder = nn.ModuleList(down(3 if i == 0 else c, c, 1 if i == 0 else groups) for i in range(levels))
        self.enc_blocks = nn.ModuleList(TemporalBlock(c, int(d), self.causal) for d in dilations)
        inner = self.bands
        for _ in range(levels):
            inner = _halved(inner)
        self.core = TemporalCore(c * inner, int(hidden), groups, int(rnn_layers), self.causal)
        self.dec_blocks = nn.ModuleList(TemporalBlock(c, int(d), self.causal) for d in reversed(list(dilations)))
        self.decoder = nn.ModuleList(SubPixelUp(c, 2 if i == 0 else c, last=i == 0) for i in reversed(range(levels)))
        last = self.decoder[-1].conv
        with torch.no_grad():  # start near a pass-through: mask ~ tanh(1) with zero phase everywhere
            last.weight.mul_(0.1)
            last.bias.copy_(torch.tensor([1.0, 0.0, 1.0, 0.0]))

    def valid_length(self, length: int) -> int:
        """Lengths the model takes without padding: multiples of the STFT hop."""
        return valid_length(length, self.hop)

    def _level(self, power: torch.Tensor) -> torch.Tensor:
        """Mean power per frame (N, K) -> the level each frame is divided by: a running mean over past
        frames when causal, the whole input's mean otherwise (detached: a normalisation, not a feature)."""
        frame_power = power.mean(dim=-1)
        if self.causal:
            count = torch.arange(1, frame_power.shape[1] + 1, device=power.device, dtype=power.dtype)
            level = torch.cumsum(frame_power, dim=1) / count
        else:
            level = frame_power.mean(dim=1, keepdim=True)
        return (level + 1e-10).detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x, length = pad_to_multiple(x.reshape(-1, 1, shape[-1]), self.hop)
        wav = x[:, 0]
        spec = torch.stft(
            wav,
            self.n_fft,
            self.hop,
            self.n_fft,
            self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        ).transpose(1, 2)  # (N, frames, bins)
        re, im = spec.real, spec.imag
        power = re * re + im * im
        inv = self._level(power).rsqrt().unsqueeze(-1)
        mag = torch.sqrt(power * inv * inv + 1e-12)
        comp = mag.pow(self.compress)
        phase_scale = inv * comp / mag
        feats = torch.stack([comp, re * phase_scale, im * phase_scale], dim=1)  # (N, 3, frames, bins)
        h = torch.matmul(feats, self.merge)  # (N, 3, frames, bands)

        skips: list[torch.Tensor] = []
        for layer in self.encoder:
            h = layer(h)
            skips.append(h)
        inner: list[torch.Tensor] = []
        for block in self.enc_blocks:
            h = block(h)
            inner.append(h)
        n, c, t, f = h.shape
        flat = h.permute(0, 1, 3, 2).reshape(n, c * f, t)
        h = h + self.core(flat).reshape(n, c, f, t).permute(0, 1, 3, 2)
        for i, block in enumerate(self.dec_blocks):
            h = block(h + inner[len(inner) - 1 - i])
        for i, layer in enumerate(self.decoder):
            j = len(skips) - 1 - i
            size = skips[j - 1].shape[-1] if j > 0 else self.bands
            h = layer(h + skips[j], size)
        # the mask in float32 whatever the network ran in: under fp16 AMP the 1e-8 below underflows to 0, so a
        # bin where the network says 0 gave 0/0 = NaN (seen on a GPU, tens of steps into training)
        z = torch.matmul(h, self.expand).float()  # (N, 2, frames, bins)

        zr, zi = z[:, 0], z[:, 1]
        zmag = torch.sqrt(zr * zr + zi * zi + 1e-8)
        gain = (self.mask_floor + (1.0 - self.mask_floor) * torch.tanh(zmag)) / zmag
        mr, mi = zr * gain, zi * gain
        out = torch.complex(re * mr - im * mi, re * mi + im * mr).transpose(1, 2)
        y = torch.istft(out, self.n_fft, self.hop, self.n_fft, self.window, center=True, length=wav.shape[-1])
        return y[:, :length].reshape(shape)
