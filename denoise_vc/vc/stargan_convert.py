"""Converting with a many-to-many (`stargan_vc`) checkpoint: any input to a named target speaker.

What is converted: the spectral columns (WORLD mel-cepstrum c1..c24, or the whole log-mel for Griffin-Lim) by
the generator, in the source speaker's normalised units in and the target's out; log-F0 by the log-linear
transform of the two speakers' voiced log-F0 mean and standard deviation; c0 (loudness), band aperiodicity
and the voiced flag are the source's, as in the GMM baseline. The input's speaker need not be named: the
training speaker whose frame statistics give the utterance the highest Gaussian likelihood stands in for it
(the input's own speaker when it is one of them; the nearest voice otherwise).

`Converter` (pipeline.py) calls `speaker_conversion`, which returns None for a one-to-one checkpoint; the
frames it gets back are normalised with the target's statistics, like the wGMM model's output, so retrieval
(`--index`) and de-normalisation follow the one path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from denoise_vc.config import apply_overrides
from denoise_vc.errors import CheckpointError, ConfigError
from denoise_vc.vc.features import FeatureSettings
from denoise_vc.vc.speakers import utterance_features
from denoise_vc.vc.vocoders import normalised_spectra, spectral_columns, world_layout


def _vector(stats: dict[str, Any], key: str) -> np.ndarray:
    return np.asarray(stats[key], np.float64)


class SpeakerConversion:
    """The generator of a stargan_vc checkpoint aimed at one of its speakers."""

    def __init__(
        self,
        model: torch.nn.Module,
        speakers: list[str],
        stats: dict[str, dict[str, Any]],
        fs: FeatureSettings,
        target: str,
        device: torch.device,
    ) -> None:
        self.model, self.speakers, self.speaker_stats, self.fs = model, speakers, stats, fs
        self.target, self.device = target, device
        self.stats = {"target": stats[target]}  # what Converter de-normalises with (and retrieval checks)

    def source_speaker(self, frames: np.ndarray) -> str:
        """The training speaker under whose diagonal Gaussian (spectral columns) the frames are likeliest."""
        columns = spectral_columns(self.fs)
        x = frames[:, columns].astype(np.float64)
        scores = {}
        for name in self.speakers:
            mean = _vector(self.speaker_stats[name], "mel_mean")[columns]
            std = _vector(self.speaker_stats[name], "mel_std")[columns]
            scores[name] = float(np.mean(-0.5 * ((x - mean) / std) ** 2 - np.log(std)))
        return max(scores, key=scores.get)

    def convert_normalised(self, wave: np.ndarray, rate: int, source: str | None = None) -> np.ndarray:
        """(frames, frame dims) converted frames in the target speaker's normalised units."""
        feats = utterance_features(wave, rate, self.fs)
        frames = feats["frames"].astype(np.float64)
        source = source or self.source_speaker(frames)
        src, tgt = self.speaker_stats[source], self.speaker_stats[self.target]
        x = torch.from_numpy(normalised_spectra(feats["frames"], src, self.fs))[None].to(self.device)
        label = torch.tensor([self.speakers.index(self.target)], device=self.device)
        converted = self.model.infer(x, label)[0].float().cpu().numpy()
        out = frames.copy()  # c0, aperiodicity and the voiced flag stay the source's
        columns = spectral_columns(self.fs)
        out[:, columns] = converted * _vector(tgt, "mel_std")[columns] + _vector(tgt, "mel_mean")[columns]
        if self.fs.vocoder == "world":
            lf0 = world_layout(self.fs).lf0
            out[:, lf0] = (frames[:, lf0] - src["lf0_mean"]) / src["lf0_std"] * tgt["lf0_std"] + tgt["lf0_mean"]
        return ((out - _vector(tgt, "mel_mean")) / _vector(tgt, "mel_std")).astype(np.float32)

    def evaluation_data(self, data_cfg) -> None:
        """Point vc-evaluate's built-in parallel test pairs at the target speaker (folders are left as given)."""
        if str(data_cfg.target) != "builtin":
            return
        if str(data_cfg.source_speaker) == self.target:
            raise ConfigError(
                f"data.source_speaker={self.target} is the --target-speaker; choose another source speaker"
            )
        data_cfg.target_speaker = self.target


def speaker_conversion(
    path: str | Path, model: torch.nn.Module, ckpt: dict[str, Any], target: str | None, device: torch.device
) -> SpeakerConversion | None:
    """The conversion to `target` of a many-to-many checkpoint; None for a one-to-one checkpoint (which
    refuses a target speaker). Names the speakers when the target is missing or unknown."""
    speakers = ckpt["meta"].get("speakers")
    if not speakers:
        if target is not None:
            raise ConfigError(f"--target-speaker {target}: {path} converts one fixed speaker pair; leave it out")
        return None
    choices = ", ".join(speakers)
    if target is None:
        raise ConfigError(f"{path}: a many-to-many checkpoint; choose --target-speaker from {choices}")
    if target not in speakers:
        raise ConfigError(f"--target-speaker {target}: not a speaker of {path} ({choices})")
    stats = (ckpt["meta"].get("stats") or {}).get("speakers") or {}
    if set(stats) != set(speakers):
        raise CheckpointError(f"{path}: many-to-many checkpoint without every speaker's statistics; retrain")
    fs = FeatureSettings.from_config(apply_overrides(ckpt["config"], []).data)
    return SpeakerConversion(model, list(speakers), stats, fs, target, torch.device(device))
