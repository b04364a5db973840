"""wGMM prosody: one vector per pause-delimited segment, extracted from the target and predicted from the source.

Extractor (target side): a conv stack over reduced target frames, mean-pooled per segment (and over the whole
utterance for the global vector), then Linear + tanh, so prosody vectors are bounded whatever the input.
Predictor (source side): encoder features pooled per source segment; a bidirectional GRU over the segments
gives a global GMM; an autoregressive GRU over the segments (previous prosody vector + global vector in) gives
one GMM per segment. Training is teacher-forced on the (detached) extracted vectors; inference draws from
the predicted mixtures (their mean by default, see `mdn_draw`).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from denoise_vc.models.vc.frames import segment_mean
from denoise_vc.models.vc.layers import ConvNormStack
from denoise_vc.models.vc.mdn import MixtureDensityHead, mdn_draw


class ProsodyExtractor(nn.Module):
    """Reduced target mel (B, T_r, r * n_mels) -> segment vectors (B, S, D) and a global vector (B, D)."""

    def __init__(self, d_in: int, channels: int, kernel: int, layers: int, prosody_dim: int, dropout: float):
        super().__init__()
        self.convs = ConvNormStack(d_in, channels, kernel, layers, dropout)
        self.segment_head = nn.Linear(channels, prosody_dim)
        self.global_head = nn.Linear(channels, prosody_dim)

    def forward(
        self, mel: torch.Tensor, mask: torch.Tensor, segments: torch.Tensor, n_max: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns segment vectors, the global vector and per-segment frame counts (0: segment absent)."""
        h = self.convs(mel, mask)
        pooled, counts = segment_mean(h, segments, n_max)
        frames = mask.sum(dim=1, keepdim=True).clamp(min=1).to(h.dtype)
        global_pooled = h.sum(dim=1) / frames
        return torch.tanh(self.segment_head(pooled)), torch.tanh(self.global_head(global_pooled)), counts


class ProsodyPredictor(nn.Module):
    """Source encoder output -> global and per-segment mixture densities over prosody vectors."""

    def __init__(
        self,
        d_model: int,
        channels: int,
        kernel: int,
        layers: int,
        gru_size: int,
        gru_layers: int,
        prosody_dim: int,
        n_mixtures: int,
        min_sigma: float,
        dropout: float,
    ) -> None:
        super().__init__()
        self.prosody_dim = prosody_dim
        self.convs = ConvNormStack(d_model, channels, kernel, layers, dropout)
        self.global_gru = nn.GRU(channels, gru_size // 2, batch_first=True, bidirectional=True)
        self.global_mdn = MixtureDensityHead(2 * (gru_size // 2), prosody_dim, n_mixtures, min_sigma)
        self.prenet = nn.Linear(prosody_dim, prosody_dim)
        self.gru = nn.GRU(channels + prosody_dim, gru_size, gru_layers, batch_first=True)
        self.mdn = MixtureDensityHead(gru_size + channels, prosody_dim, n_mixtures, min_sigma)

    def segment_features(
        self, encoded: torch.Tensor, mask: torch.Tensor, segments: torch.Tensor, n_segments: torch.Tensor, n_max: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S, channels) per-segment source features and the global GRU summary (B, gru_size)."""
        features, _ = segment_mean(self.convs(encoded, mask), segments, n_max)
        lengths = n_segments.clamp(1, n_max).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(features, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.global_gru(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=n_max)
        segment_mask = torch.arange(n_max, device=features.device)[None, :] < lengths.to(features.device)[:, None]
        summary = (out * segment_mask[..., None]).sum(dim=1) / lengths.to(out.device, out.dtype)[:, None]
        return features, summary

    def forward(
        self,
        encoded: torch.Tensor,
        mask: torch.Tensor,
        segments: torch.Tensor,
        n_segments: torch.Tensor,
        target_segments: torch.Tensor,
        target_global: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """Teacher-forced pass: the previous target vector (detached) feeds each step; no loop over segments."""
        n_max = target_segments.shape[1]
        features, summary = self.segment_features(encoded, mask, segments, n_segments, n_max)
        g_log_pi, g_mu, g_sigma = self.global_mdn(summary)
        previous = torch.cat([torch.zeros_like(target_segments[:, :1]), target_segments[:, :-1]], dim=1).detach()
        steps = torch.cat([features, self.prenet(previous + target_global.detach()[:, None, :])], dim=-1)
        hidden, _ = self.gru(steps)
        log_pi, mu, sigma = self.mdn(torch.cat([hidden, features], dim=-1))
        return {
            "mdn_log_pi": log_pi,
            "mdn_mu": mu,
            "mdn_sigma": sigma,
            "global_log_pi": g_log_pi,
            "global_mu": g_mu,
            "global_sigma": g_sigma,
        }

    @torch.no_grad()
    def generate(
        self,
        encoded: torch.Tensor,
        mask: torch.Tensor,
        segments: torch.Tensor,
        n_segments: torch.Tensor,
        n_max: int,
        draw: str,
        temperature: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Inference: draw (`mdn_draw`) the global vector, then each segment's vector from the GRU fed its own draws.

        The step loop runs over segment positions (batched over items), as autoregression requires.
        """
        features, summary = self.segment_features(encoded, mask, segments, n_segments, n_max)
        # draws are clamped to the extractor's tanh range, the only range the decoder has seen
        global_vector = mdn_draw(*self.global_mdn(summary), draw, temperature).clamp(-1, 1)
        previous = features.new_zeros(features.shape[0], self.prosody_dim)
        state = None
        drawn = []
        for step in range(n_max):
            x = torch.cat([features[:, step], self.prenet(previous + global_vector)], dim=-1)[:, None, :]
            hidden, state = self.gru(x, state)
            params = self.mdn(torch.cat([hidden[:, 0], features[:, step]], dim=-1))
            previous = mdn_draw(*params, draw, temperature).clamp(-1, 1).to(features.dtype)
            drawn.append(previous)
        return torch.stack(drawn, dim=1), global_vector.to(features.dtype)
