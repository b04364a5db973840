"""Torch datasets of (noisy, clean) segments.

Training items are drawn afresh from a generator seeded by (seed, epoch, index), so an epoch is the same
whether it runs straight through or after a resume. Validation and test items are cut once, by seed,
and mixed at whatever noise gain is asked for, so every level sees the same speech and noise.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from denoise_vc.data.levels import Level, draw_level
from denoise_vc.data.mixing import (
    MixSettings,
    apply_bandpass,
    beats_in,
    crops_with_start,
    make_noise_segment,
    mix,
    scale_to_level,
)
from denoise_vc.data.reverb import ReverbSettings, reverberate
from denoise_vc.data.sources import Corpus


def _pick_source(corpus: Corpus, rng: np.random.Generator) -> int:
    lengths = np.array([len(c) for c in corpus.clean], dtype=np.float64)
    return int(rng.choice(len(lengths), p=lengths / lengths.sum()))


def cut_pair(
    corpus: Corpus, length: int, settings: MixSettings, rng: np.random.Generator, min_rms: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """A (clean, noise, beats) triple of `length` samples, retrying a few times to find clean above `min_rms`;
    beats are the clean crop's annotated R peaks where the corpus knows them, else None."""
    for _ in range(10):
        i = _pick_source(corpus, rng)
        if corpus.paired:  # crop both at one offset, without copying whole recordings per item
            (clean, noise), start = crops_with_start([corpus.clean[i], corpus.noise[i]], length, rng)
        else:
            (clean,), start = crops_with_start([corpus.clean[i]], length, rng)
            noise = make_noise_segment(list(corpus.noise), length, settings, rng)
        if np.sqrt(np.mean(clean**2)) >= min_rms:
            break
    known = corpus.beats[i] if corpus.beats else None
    beats = None if known is None else beats_in(known, len(corpus.clean[i]), start, length)
    return apply_bandpass(clean, settings), apply_bandpass(noise, settings), beats


class TrainSet(Dataset):
    """Random (noisy, target) segments, drawn afresh per (seed, epoch, index).

    `gain` / `snr_db` are one level or a `(low, high)` range each item draws from (in dB, skewed toward the
    noisy end by `level_skew` > 1); a
    curriculum may set `gain` per epoch. With `rirs` and `reverb.prob`, an item's speech is reverberant and
    the target is its dry or early-reverberant version; `level_dbfs` draws the mixture's loudness."""

    def __init__(
        self,
        corpus: Corpus,
        segment_length: int,
        items_per_epoch: int,
        settings: MixSettings,
        seed: int,
        gain: Level = 1.0,
        snr_db: Level = None,
        level_dbfs: tuple[float, float] | None = None,
        reverb: ReverbSettings | None = None,
        rirs: tuple[np.ndarray, ...] = (),
        level_skew: float = 1.0,
    ) -> None:
        self.corpus, self.length, self.items = corpus, segment_length, items_per_epoch
        self.level_skew = level_skew
        self.settings, self.seed, self.gain, self.snr_db = settings, seed, gain, snr_db
        self.level_dbfs, self.reverb, self.rirs = level_dbfs, reverb or ReverbSettings(), rirs
        self.noise_scale = 1.0  # a curriculum's factor on every item's drawn noise level (ranges and SNRs)
        self.epoch = 0

    def __len__(self) -> int:
        return self.items

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        speech, noise, _ = cut_pair(self.corpus, self.length, self.settings, rng)
        target = speech
        if self.rirs and not self.corpus.paired and self.reverb.prob > 0 and rng.random() < self.reverb.prob:
            rir = self.rirs[int(rng.integers(len(self.rirs)))]
            speech, target = reverberate(speech, rir, self.reverb, self.corpus.sample_rate)
        snr_db = draw_level(self.snr_db, rng, in_db=True, skew=self.level_skew)
        gain = draw_level(self.gain, rng, in_db=False, skew=self.level_skew) if snr_db is None else None
        noisy = mix(speech, noise * np.float32(self.noise_scale), gain=gain, snr_db=snr_db)
        if self.level_dbfs is not None:
            noisy, target = scale_to_level(noisy, target, self.level_dbfs, rng)
        return torch.from_numpy(noisy)[None], torch.from_numpy(np.ascontiguousarray(target))[None]


class FixedSet(Dataset):
    """Segments cut once by seed; `at(gain)` gives the same segments mixed at another noise level."""

    def __init__(
        self,
        corpus: Corpus,
        segment_length: int,
        count: int,
        settings: MixSettings,
        seed: int,
        gain: float = 1.0,
        snr_db: float | None = None,
    ) -> None:
        rng = np.random.default_rng([seed, 7919])
        ref = float(np.sqrt(np.mean(np.concatenate([c[:100000] for c in corpus.clean]) ** 2)))
        pairs = [cut_pair(corpus, segment_length, settings, rng, min_rms=0.3 * ref) for _ in range(count)]
        self.clean = np.stack([p[0] for p in pairs])
        self.noise = np.stack([p[1] for p in pairs])
        self.beats = [p[2] for p in pairs]  # annotated R peaks per segment (None where unknown)
        self.clean.setflags(write=False)
        self.noise.setflags(write=False)
        self.sample_rate = corpus.sample_rate
        self.gain, self.snr_db = gain, snr_db

    def at(self, gain: float | None = None, snr_db: float | None = None) -> FixedSet:
        view = object.__new__(FixedSet)
        view.__dict__.update(self.__dict__)
        view.gain, view.snr_db = gain, snr_db
        return view

    def __len__(self) -> int:
        return len(self.clean)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        noisy = mix(self.clean[index], self.noise[index], gain=self.gain, snr_db=self.snr_db)
        return torch.from_numpy(noisy)[None], torch.from_numpy(np.array(self.clean[index]))[None]


def level_name(gain: float | None, snr_db: float | None) -> str:
    """The key a noise level is reported under: '0.5' for a gain, '5dB' for an SNR."""
    return f"{snr_db:g}dB" if snr_db is not None else f"{gain:g}"
