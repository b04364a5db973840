"""FastSpeech 2-style voice conversion with wGMM segment prosody (after vc_tts_template's fastspeech2VCwGMM).

Source log-mel, stacked `reduction` frames at a time, plus source pitch and energy -> Transformer encoder ->
+ segment prosody (extracted from the target when training, drawn from the predictor's mixtures at
inference) -> duration predictor and `repeat_interleave` length regulator -> frame-rate pitch and energy
predictors, whose values are embedded and added -> Transformer decoder -> `reduction` mel frames per step
-> PostNet residual. Batch keys and shapes are documented in `models/vc/__init__.py`.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from denoise_vc.models.registry import register
from denoise_vc.models.vc.frames import (
    clamp_lengths,
    expand_frames,
    length_mask,
    length_regulate,
    reduce_frames,
    repair_segments,
    segment_broadcast,
)
from denoise_vc.models.vc.layers import FFTStack, PitchPredictor, PostNet, ScalarEmbedding, VariancePredictor, masked
from denoise_vc.models.vc.prosody import ProsodyExtractor, ProsodyPredictor


def fit_length(x: torch.Tensor, length: int, fill: float = 0.0) -> torch.Tensor:
    """Crop or right-pad dim 1 to `length` (repairs per-frame features one frame off the mel)."""
    if x.shape[1] >= length:
        return x[:, :length]
    pad = [0, 0] * (x.dim() - 2) + [0, length - x.shape[1]]
    return F.pad(x, pad, value=fill)


SKIP_GATE_OPEN = 4.0  # the gate's starting logit: sigmoid(4) = 0.98, so a gated model starts as the plain skip


def _stop(x: torch.Tensor, flag: bool) -> torch.Tensor:
    return x.detach() if flag else x


@register("wgmm_vc")
class WgmmVC(nn.Module):
    """Non-autoregressive VC acoustic model with wGMM prosody; `task = "vc"` tells it apart from denoisers.

    `reduction` frames are stacked per encoder/decoder step (3: the lab notes found 1 leaves pitch poor).
    Encoder and decoder: `*_layers` FFT blocks of width `d_model`, `heads` heads, conv FFN kernel
    `conv_kernel`. Duration/pitch/energy predictors: `predictor_*`; `pitch_ar` makes pitch autoregressive over
    frames (off by default: with wGMM prosody it did worse); `stop_gradient_<x>` detaches the features a
    predictor reads, so its loss does not shape the encoder. Prosody: `prosody_dim`-d vectors per segment,
    `n_mixtures`-component MDNs with sigma floor `mdn_min_sigma`, conv width `prosody_channels`, GRU
    `prosody_gru_size` x `prosody_gru_layers`; `prosody_draw` reads the predicted mixtures at conversion and in
    validation (mean: their expected value; mode: the most probable component's mean). PostNet: `postnet_*`.
    At inference one reduced source frame stretches to at most `max_duration` frames; inputs are clipped to
    +-`input_clip`.

    `source_skip` adds a linear map of the length-regulated source frame to the decoder's output, initialised
    to the identity: with per-speaker normalised features it starts as the mean/variance conversion (the
    GMM baseline's log-linear F0 included) and the network learns the residual, which small corpora need.
    `source_skip_gate` scales that skip per frame and feature by a sigmoid of the decoder's state (starting
    open): trained on clean and denoised sources (`data.front_end`), the model can learn to lean on the source
    frame where it is clean and on the decoder where the front-end left artefacts.
    """

    task = "vc"
    init_from_fresh = ("skip_gate.",)  # `solver.init_from` a skip model without the gate: the gate starts open

    def __init__(
        self,
        n_mels: int = 80,
        reduction: int = 3,
        d_model: int = 128,
        encoder_layers: int = 2,
        decoder_layers: int = 2,
        heads: int = 2,
        conv_kernel: int = 5,
        dropout: float = 0.1,
        predictor_channels: int = 128,
        predictor_kernel: int = 3,
        predictor_layers: int = 2,
        predictor_dropout: float = 0.3,
        prosody_dim: int = 8,
        n_mixtures: int = 5,
        mdn_min_sigma: float = 1e-3,
        prosody_channels: int = 128,
        prosody_gru_size: int = 128,
        prosody_gru_layers: int = 1,
        pitch_ar: bool = False,
        stop_gradient_duration: bool = False,
        stop_gradient_pitch: bool = True,
        stop_gradient_energy: bool = False,
        stop_gradient_prosody: bool = False,
        postnet_channels: int = 128,
        postnet_kernel: int = 5,
        postnet_layers: int = 5,
        max_duration: int = 20,
        input_clip: float = 100.0,
        source_skip: bool = False,
        source_skip_gate: bool = False,
        prosody_draw: str = "mean",
    ) -> None:
        super().__init__()
        if reduction < 1:
            raise ValueError(f"reduction must be >= 1, not {reduction}")
        if source_skip_gate and not source_skip:
            raise ValueError("model.source_skip_gate needs model.source_skip=true")
        if prosody_draw not in ("mean", "mode"):
            raise ValueError(f"model.prosody_draw must be mean or mode, not {prosody_draw!r}")
        self.prosody_draw = prosody_draw
        self.n_mels = n_mels
        self.reduction = reduction
        self.stop_gradient = {
            "duration": stop_gradient_duration,
            "pitch": stop_gradient_pitch,
            "energy": stop_gradient_energy,
            "prosody": stop_gradient_prosody,
        }
        self.max_duration = max_duration
        self.input_clip = input_clip
        stacked = reduction * n_mels
        self.source_in = nn.Linear(stacked, d_model)
        self.source_pitch = ScalarEmbedding(d_model, predictor_kernel)
        self.source_energy = ScalarEmbedding(d_model, predictor_kernel)
        self.encoder = FFTStack(d_model, encoder_layers, heads, conv_kernel, dropout)
        self.extractor = ProsodyExtractor(
            stacked, prosody_channels, predictor_kernel, predictor_layers, prosody_dim, dropout
        )
        self.prosody_predictor = ProsodyPredictor(
            d_model,
            prosody_channels,
            predictor_kernel,
            predictor_layers,
            prosody_gru_size,
            prosody_gru_layers,
            prosody_dim,
            n_mixtures,
            mdn_min_sigma,
            dropout,
        )
        self.segment_prosody = nn.Linear(prosody_dim, d_model)
        self.global_prosody = nn.Linear(prosody_dim, d_model)
        predictor = (d_model, predictor_channels, predictor_kernel, predictor_layers, predictor_dropout)
        self.duration_predictor = VariancePredictor(*predictor)
        self.pitch_predictor = PitchPredictor(*predictor, autoregressive=pitch_ar)
        self.energy_predictor = VariancePredictor(*predictor)
        self.pitch_embedding = ScalarEmbedding(d_model, predictor_kernel)
        self.energy_embedding = ScalarEmbedding(d_model, predictor_kernel)
        self.decoder = FFTStack(d_model, decoder_layers, heads, conv_kernel, dropout)
        self.mel_out = nn.Linear(d_model, stacked)
        self.postnet = PostNet(n_mels, postnet_channels, postnet_kernel, postnet_layers, dropout)
        self.source_skip = None
        if source_skip:
            self.source_skip = nn.Linear(stacked, stacked)
            with torch.no_grad():
                self.source_skip.weight.copy_(torch.eye(stacked))
                self.source_skip.bias.zero_()
        self.skip_gate = None
        if source_skip_gate:
            self.skip_gate = nn.Linear(d_model, stacked)
            with torch.no_grad():
                self.skip_gate.weight.zero_()
                self.skip_gate.bias.fill_(SKIP_GATE_OPEN)

    # -- shared pieces -------------------------------------------------------------------------
    def _clean(self, x: torch.Tensor) -> torch.Tensor:
        """Replace NaN/inf and clip: normalised features never legitimately reach `input_clip`."""
        clip = self.input_clip
        return torch.nan_to_num(x.float(), nan=0.0, posinf=clip, neginf=-clip).clamp(-clip, clip)

    def _encode(self, src_mel, src_pitch, src_energy, src_len, src_segment, n_segments):
        """Reduced source frames -> (encoded (B, Ts_r, d), mask, repaired segments, n_segments >= 1, S,
        the reduced source frames themselves (B, Ts_r, reduction * n_mels))."""
        stacked = reduce_frames(self._clean(src_mel), self.reduction)
        frames = stacked.shape[1]
        lengths = clamp_lengths(src_len, frames)
        mask = length_mask(lengths, frames)
        pitch = fit_length(self._clean(src_pitch), frames)
        energy = fit_length(self._clean(src_energy), frames)
        x = self.source_in(stacked) + self.source_pitch(pitch, mask) + self.source_energy(energy, mask)
        encoded = self.encoder(masked(x, mask), mask)
        n_segments = n_segments.long().clamp(min=1)
        segments = repair_segments(fit_length(src_segment, frames, fill=-1), n_segments, lengths)
        n_max = int(n_segments.max())
        return encoded, mask, segments, n_segments, n_max, stacked

    def _condition(self, encoded, mask, segments, segment_vectors, global_vector):
        """Add the segment and global prosody vectors to every source frame."""
        prosody = segment_broadcast(self.segment_prosody(segment_vectors), segments)
        return masked(encoded + prosody + self.global_prosody(global_vector)[:, None, :], mask)

    def _decode(
        self, x: torch.Tensor, mask: torch.Tensor, source: torch.Tensor, durations: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Decoder on reduced frames (+ the skip from the reduced `source` frames, stretched by `durations`,
        which are zero past each source length) -> (mel before PostNet, mel after, frame mask), unreduced."""
        hidden = self.decoder(x, mask)
        h = self.mel_out(hidden)
        if self.source_skip is not None:
            skip = self.source_skip(length_regulate(source, durations, h.shape[1]))
            if self.skip_gate is not None:
                skip = torch.sigmoid(self.skip_gate(hidden)) * skip
            h = h + skip
        mel_before = expand_frames(h, self.reduction)
        frame_mask = mask.repeat_interleave(self.reduction, dim=1)
        mel_before = masked(mel_before, frame_mask)
        mel_after = mel_before + self.postnet(mel_before, frame_mask)
        return mel_before, mel_after, frame_mask

    # -- training ------------------------------------------------------------------------------
    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Teacher-forced pass: ground-truth durations, target pitch/energy and target-extracted prosody."""
        encoded, src_mask, src_segments, n_segments, n_max, source = self._encode(
            batch["src_mel"],
            batch["src_pitch"],
            batch["src_energy"],
            batch["src_len"],
            batch["src_segment"],
            batch["n_segments"],
        )
        target = reduce_frames(self._clean(batch["tgt_mel"]), self.reduction)
        tgt_frames = target.shape[1]
        tgt_len = clamp_lengths(batch["tgt_len"], tgt_frames)
        tgt_mask = length_mask(tgt_len, tgt_frames)
        tgt_segments = repair_segments(fit_length(batch["tgt_segment"], tgt_frames, fill=-1), n_segments, tgt_len)
        segment_vectors, global_vector, counts = self.extractor(target, tgt_mask, tgt_segments, n_max)
        prosody = self.prosody_predictor(
            _stop(encoded, self.stop_gradient["prosody"]),
            src_mask,
            src_segments,
            n_segments,
            segment_vectors,
            global_vector,
        )
        x = self._condition(encoded, src_mask, src_segments, segment_vectors, global_vector)

        durations = fit_length(batch["durations"].long(), src_mask.shape[1]).clamp(min=0) * src_mask
        log_duration = self.duration_predictor(_stop(x, self.stop_gradient["duration"]), src_mask)
        regulated = masked(length_regulate(x, durations, tgt_frames), tgt_mask)

        tgt_pitch = fit_length(self._clean(batch["tgt_pitch"]), tgt_frames) * tgt_mask
        tgt_energy = fit_length(self._clean(batch["tgt_energy"]), tgt_frames) * tgt_mask
        pitch = self.pitch_predictor(_stop(regulated, self.stop_gradient["pitch"]), tgt_mask, tgt_pitch)
        energy = self.energy_predictor(_stop(regulated, self.stop_gradient["energy"]), tgt_mask)
        x = regulated + self.pitch_embedding(tgt_pitch, tgt_mask) + self.energy_embedding(tgt_energy, tgt_mask)
        mel_before, mel_after, frame_mask = self._decode(x, tgt_mask, source, durations)

        segment_mask = (torch.arange(n_max, device=counts.device)[None, :] < n_segments[:, None]) & (counts > 0)
        length = batch["tgt_mel"].shape[1]
        return {
            "mel_before": fit_length(mel_before, length),
            "mel_after": fit_length(mel_after, length),
            "mel_target": fit_length(expand_frames(target, self.reduction), length),
            "mel_mask": fit_length(frame_mask, length),
            "log_duration": log_duration,
            "log_duration_target": torch.log1p(durations.float()),
            "src_mask": src_mask,
            "pitch": pitch,
            "pitch_target": tgt_pitch,
            "energy": energy,
            "energy_target": tgt_energy,
            "tgt_mask": tgt_mask,
            "prosody_target": segment_vectors.detach(),
            "global_prosody_target": global_vector.detach(),
            "segment_mask": segment_mask,
            **prosody,
        }

    # -- inference -----------------------------------------------------------------------------
    @torch.no_grad()
    def infer(
        self,
        src_mel: torch.Tensor,
        src_pitch: torch.Tensor,
        src_energy: torch.Tensor,
        src_len: torch.Tensor,
        src_segment: torch.Tensor,
        n_segments: torch.Tensor,
        draw: str | None = None,
        temperature: float = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Convert: returns (mel (B, T_pred, n_mels) normalised log-mel, zero past each length; lengths (B,)
        in unreduced frames). Call `model.eval()` first. `draw` reads each prosody mixture (`mdn_draw`: mean, mode
        or sample at `temperature`); None takes the model's `prosody_draw`.
        """
        encoded, src_mask, segments, n_segments, n_max, source = self._encode(
            src_mel, src_pitch, src_energy, src_len, src_segment, n_segments
        )
        segment_vectors, global_vector = self.prosody_predictor.generate(
            encoded, src_mask, segments, n_segments, n_max, draw or self.prosody_draw, temperature
        )
        x = self._condition(encoded, src_mask, segments, segment_vectors, global_vector)
        log_duration = self.duration_predictor(x, src_mask).float().clamp(max=math.log1p(self.max_duration))
        durations = (torch.exp(log_duration) - 1.0).round().clamp(min=0).long() * src_mask
        empty = durations.sum(dim=1) == 0  # repair: every item gets at least one frame
        durations[:, 0] = torch.where(empty, torch.ones_like(durations[:, 0]), durations[:, 0])
        totals = durations.sum(dim=1)
        frames = int(totals.max())
        mask = length_mask(totals, frames)
        regulated = masked(length_regulate(x, durations, frames), mask)
        pitch = self.pitch_predictor(regulated, mask)
        energy = self.energy_predictor(regulated, mask)
        x = regulated + self.pitch_embedding(pitch, mask) + self.energy_embedding(energy, mask)
        _, mel_after, frame_mask = self._decode(x, mask, source, durations)
        return masked(mel_after, frame_mask), totals * self.reduction
