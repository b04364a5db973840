"""StarGAN-VC(2)-family many-to-many voice conversion (registered as "stargan_vc"): one generator for every
speaker pair, trained without parallel sentences.

Frames are (B, T, dims): the spectral columns of the vocoder's frames (WORLD mel-cepstrum c1..c24, or every
log-mel band), normalised with the source speaker's statistics on the way in and read with the target
speaker's on the way out.

Generator (StarGAN-VC2's 2-1-2-D layout, gated linear units as in StarGAN-VC): a 2-D convolution over the
(1, dims, frames) image, two stride-2 2-D downsamplings, a reshape to 1-D, residual blocks conditioned on the
target speaker by conditional instance norm (StarGAN-VC2: a per-speaker scale and shift after each
normalisation), a reshape back and two PixelShuffle 2-D upsamplings. Normalisation is instance norm throughout:
the 2019 notes' BatchNorm broke at the small batches a GPU fits. StarGAN-VC's alternative, concatenating a
one-hot label map to the input of a convolution, does not survive instance norm: a constant map only adds a
per-channel constant, which the norm subtracts again (measured here: labels moved the untrained output by 4 %).

Discriminator: StarGAN-VC's shared trunk with two heads, as in the 2019 notes: a PatchGAN adversarial map (one
real/fake score per time-frequency patch) and an auxiliary classifier over the speakers (logits pooled over
the whole patch, so any length works). No normalisation layer in it (instance norm would hide the level
differences between speakers the classifier must see), LeakyReLU activations.

Any length and any `dims` work: the generator pads both axes to a multiple of 2**n_down and crops back.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from denoise_vc.models.registry import register


class GatedConv2d(nn.Module):
    """Conv2d -> instance norm (optional) -> GLU over channels: the gate learns what passes (StarGAN-VC)."""

    def __init__(self, cin: int, cout: int, kernel, stride=1, norm: bool = True) -> None:
        super().__init__()
        kernel = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
        padding = (kernel[0] // 2, kernel[1] // 2)
        self.conv = nn.Conv2d(cin, 2 * cout, kernel, stride, padding)
        self.norm = nn.InstanceNorm2d(2 * cout, affine=True) if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.glu(self.norm(self.conv(x)), dim=1)


class GatedUpsample2d(nn.Module):
    """Conv2d -> PixelShuffle(2) -> instance norm -> GLU: doubles both axes without transposed-conv checkerboards."""

    def __init__(self, cin: int, cout: int, kernel: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, 2 * cout * 4, kernel, padding=kernel // 2)
        self.shuffle = nn.PixelShuffle(2)
        self.norm = nn.InstanceNorm2d(2 * cout, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.glu(self.norm(self.shuffle(self.conv(x))), dim=1)


class ConditionalInstanceNorm1d(nn.Module):
    """Instance norm, then the target speaker's own scale (1 + a) and shift (b) per channel (StarGAN-VC2).

    a and b are linear in the one-hot label, randomly initialised as nn.Linear is, so speakers differ from
    the first step on."""

    def __init__(self, channels: int, n_speakers: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm1d(channels, affine=False)
        self.scale = nn.Linear(n_speakers, channels)
        self.shift = nn.Linear(n_speakers, channels)

    def forward(self, x: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        return self.norm(x) * (1.0 + self.scale(onehot)[..., None]) + self.shift(onehot)[..., None]


class ConditionalResBlock(nn.Module):
    """x + GLU(CIN(conv(x), target)): the target speaker steers every bottleneck block."""

    def __init__(self, channels: int, n_speakers: int, kernel: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, 2 * channels, kernel, padding=kernel // 2)
        self.norm = ConditionalInstanceNorm1d(2 * channels, n_speakers)

    def forward(self, x: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        return x + F.glu(self.norm(self.conv(x), onehot), dim=1)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Zero-pad the last two axes of (B, C, F, T) up to multiples of `multiple` (zero = the speaker's mean),
    the time axis to at least two multiples, so instance norm at the bottleneck sees more than one frame."""
    pad_f = -x.shape[-2] % multiple
    pad_t = max(-x.shape[-1] % multiple, 2 * multiple - x.shape[-1])
    return F.pad(x, (0, pad_t, 0, pad_f)) if pad_f or pad_t else x


class Generator(nn.Module):
    """(B, T, dims) normalised source frames + target label (B,) -> (B, T, dims) frames in the target's space."""

    def __init__(self, dims: int, n_speakers: int, channels: int, bottleneck: int, n_res: int, n_down: int) -> None:
        super().__init__()
        self.n_speakers, self.n_down = n_speakers, n_down
        self.freq = -(-dims // 2**n_down)  # frequency rows left after downsampling the padded input
        self.inp = GatedConv2d(1, channels, (5, 15), norm=False)
        widths = [channels * 2**i for i in range(n_down + 1)]
        self.down = nn.ModuleList(GatedConv2d(widths[i], widths[i + 1], 5, stride=2) for i in range(n_down))
        flat = widths[-1] * self.freq
        self.to_1d = nn.Sequential(nn.Conv1d(flat, bottleneck, 1), nn.InstanceNorm1d(bottleneck, affine=True))
        self.blocks = nn.ModuleList(ConditionalResBlock(bottleneck, n_speakers) for _ in range(n_res))
        self.to_2d = nn.Sequential(nn.Conv1d(bottleneck, flat, 1), nn.InstanceNorm1d(flat, affine=True))
        self.up = nn.ModuleList(GatedUpsample2d(widths[i + 1], widths[i]) for i in reversed(range(n_down)))
        self.out = nn.Conv2d(channels, 1, (5, 15), padding=(2, 7))

    def forward(self, frames: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        batch, length, dims = frames.shape
        x = pad_to_multiple(frames.transpose(1, 2).unsqueeze(1), 2**self.n_down)
        h = self.inp(x)
        for layer in self.down:
            h = layer(h)
        channels, freq, steps = h.shape[1:]
        h = self.to_1d(h.reshape(batch, channels * freq, steps))
        onehot = F.one_hot(target, self.n_speakers).to(h.dtype)
        for block in self.blocks:
            h = block(h, onehot)
        h = self.to_2d(h).reshape(batch, channels, freq, steps)
        for layer in self.up:
            h = layer(h)
        return self.out(h)[:, 0, :dims, :length].transpose(1, 2)


class Discriminator(nn.Module):
    """(B, T, dims) frames -> (PatchGAN real/fake map (B, F', T'), speaker logits (B, n_speakers))."""

    def __init__(self, dims: int, n_speakers: int, channels: int, n_layers: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(1, channels, 3, padding=1), nn.LeakyReLU(0.2)]
        width = channels
        for _ in range(n_layers):
            layers += [nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            width *= 2
        self.trunk = nn.Sequential(*layers)
        self.adversarial = nn.Conv2d(width, 1, 3, padding=1)
        self.classifier = nn.Conv2d(width, n_speakers, 3, padding=1)
        self.min_size = 2**n_layers

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = frames.transpose(1, 2).unsqueeze(1)
        short_f, short_t = max(0, self.min_size - x.shape[-2]), max(0, self.min_size - x.shape[-1])
        if short_f or short_t:  # a very short utterance still gets one patch
            x = F.pad(x, (0, short_t, 0, short_f))
        h = self.trunk(x)
        return self.adversarial(h)[:, 0], self.classifier(h).mean(dim=(2, 3))


@register("stargan_vc")
class StarGANVC(nn.Module):
    """Generator and discriminator in one module, so one state dict (and one checkpoint) holds both."""

    task = "vc"

    def __init__(
        self,
        dims: int,
        n_speakers: int,
        channels: int = 32,
        bottleneck: int = 128,
        n_res: int = 4,
        n_down: int = 2,
        d_channels: int = 32,
        d_layers: int = 3,
    ) -> None:
        super().__init__()
        if dims < 1 or n_speakers < 2:
            raise ValueError(f"stargan_vc needs dims >= 1 and n_speakers >= 2 (got {dims} and {n_speakers})")
        if min(channels, bottleneck, d_channels) < 1 or n_res < 0 or not 1 <= n_down <= 4 or not 1 <= d_layers <= 6:
            raise ValueError("stargan_vc: widths must be >= 1, n_res >= 0, n_down in 1..4, d_layers in 1..6")
        self.dims, self.n_speakers = dims, n_speakers
        self.generator = Generator(dims, n_speakers, channels, bottleneck, n_res, n_down)
        self.discriminator = Discriminator(dims, n_speakers, d_channels, d_layers)

    def forward(self, frames: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The generator: (B, T, dims) source-normalised frames -> the same utterance in `target`'s space."""
        return self.generator(frames, target)

    @torch.no_grad()
    def infer(self, frames: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Whole utterances of any length (padded inside, cropped back) in eval mode."""
        was_training = self.training
        self.eval()
        try:
            return self.generator(frames, target)
        finally:
            self.train(was_training)
