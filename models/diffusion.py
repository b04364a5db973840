"""A conditional flow / bridge denoiser whose reverse process starts at the noisy input, in a few steps.

State (t in [0, 1]): x_t = (1 - t) x + t (y + sigma * rms(y) * eps), a straight path from the clean
signal x (t = 0) to the noisy input y plus a little white noise (t = 1), i.e. conditional flow matching
from "noisy input plus small noise" to clean speech. The network is a Wave-U-Net that sees [x_t, y] and
the step t (sinusoidal embedding -> per-level FiLM) and predicts the clean signal x_hat, so the usual
waveform losses apply to x_hat directly.

Sampler (`steps` network calls, t = 1, (N-1)/N, ..., 1/N): from x_hat and the noise the state implies,
eps_hat = (x_t - (1 - t) x_hat - t y) / (sigma rms(y) t), the next state is
x_s = (1 - s) x_hat + s y + sigma rms(y) (sqrt(s^2 - c^2) eps_hat + c z). c = 0 is the deterministic
(DDIM-like; here exactly an Euler step of the flow ODE) sampler, c = s sqrt(1 - s^2 / t^2) the
stochastic (ancestral) one; both keep the marginals of x_s. The last step returns x_hat (s = 0).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from denoise_vc.models.padding import pad_to_multiple
from denoise_vc.models.registry import register
from denoise_vc.models.updown import decimate2, upsample2
from denoise_vc.models.wave_unet import WaveUNetBody, conv_block


def time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """(B,) times in [0, 1] -> (B, dim) sine/cosine features over frequencies 1 ... 1000."""
    half = dim // 2
    rates = torch.exp(torch.arange(half, device=t.device, dtype=torch.float32) * (-math.log(1000.0) / max(1, half - 1)))
    angles = 1000.0 * t.float()[:, None] * rates[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class TimeConditioned(nn.Module):
    """A Wave-U-Net block followed by FiLM from the step embedding; zero-initialised, so it starts as the block."""

    def __init__(self, block: nn.Sequential, embed_dim: int) -> None:
        super().__init__()
        self.block = block
        channels = block[0].out_channels
        self.film = nn.Linear(embed_dim, 2 * channels)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(emb)[:, :, None].chunk(2, dim=1)
        return self.block(h) * (1.0 + scale) + shift


@register("diffusion")
class DiffusionUNet(WaveUNetBody):
    """Time-conditioned Wave-U-Net on [x_t, y]; `forward(noisy)` runs the sampler (waveform in, same length out).

    `sigma` is the start noise relative to the input's RMS; `steps` the network calls per forward;
    `stochastic` picks the ancestral sampler (fresh noise each step) over the deterministic one.
    """

    normalizable = False  # its solver drives noise_scale / predict_clean directly, at the data's own scale

    def __init__(
        self,
        levels: int = 8,
        channels_interval: int = 24,
        down_kernel: int = 15,
        up_kernel: int = 5,
        batch_norm: bool = True,
        embed_dim: int = 64,
        sigma: float = 0.1,
        steps: int = 4,
        stochastic: bool = False,
    ) -> None:
        super().__init__(levels, channels_interval, down_kernel, up_kernel, batch_norm)
        if steps < 1:
            raise ValueError(f"steps must be >= 1, not {steps}")
        if sigma <= 0:
            raise ValueError(f"sigma must be > 0 (with no noise, extra steps learn nothing), not {sigma}")
        self.embed_dim = embed_dim
        self.sigma = float(sigma)
        self.steps = int(steps)
        self.stochastic = bool(stochastic)
        hidden = 4 * embed_dim
        self.time_mlp = nn.Sequential(nn.Linear(embed_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())
        first = conv_block(2, channels_interval, down_kernel, batch_norm)  # input channels: x_t and y
        self.encoder = nn.ModuleList(TimeConditioned(b, hidden) for b in [first, *list(self.encoder)[1:]])
        self.decoder = nn.ModuleList(TimeConditioned(b, hidden) for b in self.decoder)
        self.middle = TimeConditioned(self.middle, hidden)
        self.out = nn.Sequential(nn.Conv1d(2 + channels_interval, 1, 1), nn.Tanh())

    def noise_scale(self, noisy: torch.Tensor) -> torch.Tensor:
        """sigma * RMS of each item of the noisy input, (B, 1, 1): the noise at t = 1."""
        return self.sigma * noisy.pow(2).mean(dim=(1, 2), keepdim=True).sqrt().clamp_min(1e-5)

    @torch.jit.export
    def predict_clean(self, state: torch.Tensor, noisy: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The network: clean-signal estimate from the state x_t (B, 1, T), the noisy input and t (B,)."""
        x, length = pad_to_multiple(torch.cat([state, noisy], dim=1), self.multiple)
        emb = self.time_mlp(time_embedding(t, self.embed_dim))
        skips: list[torch.Tensor] = []
        h = x
        for layer in self.encoder:
            h = layer(h, emb)
            skips.append(h)
            h = decimate2(h)
        h = self.middle(h, emb)
        for i, layer in enumerate(self.decoder):
            h = upsample2(h)
            h = layer(torch.cat([h, skips[len(skips) - 1 - i]], dim=1), emb)
        return self.out(torch.cat([h, x], dim=1))[..., :length]

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        """Run the sampler from x_1 = y + sigma rms(y) eps (eps = 0 for the deterministic sampler)."""
        scale = self.noise_scale(noisy)
        state = noisy + scale * torch.randn_like(noisy) if self.stochastic else noisy
        estimate = noisy
        for k in range(self.steps, 0, -1):
            t, s = k / self.steps, (k - 1) / self.steps
            estimate = self.predict_clean(state, noisy, torch.full((noisy.shape[0],), t, device=noisy.device))
            if k > 1:
                eps = (state - (1.0 - t) * estimate - t * noisy) / (scale * t)
                fresh = s * math.sqrt(1.0 - (s * s) / (t * t)) if self.stochastic else 0.0
                kept = math.sqrt(max(0.0, s * s - fresh * fresh))
                state = (1.0 - s) * estimate + s * noisy + scale * kept * eps
                if self.stochastic:
                    state = state + scale * fresh * torch.randn_like(noisy)
        return estimate
