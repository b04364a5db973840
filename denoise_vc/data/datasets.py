"""Torch datasets of (noisy, clean) segments.

Training items are drawn afresh from a generator seeded by (seed, epoch, index), so an epoch is the same
whether it runs straight through or after a resume. Validation and test items are cut once, by seed,
and mixed at whatever noise gain is asked for, so every level sees the same speech and noise.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from denoise_vc.data.mixing import MixSettings, apply_bandpass, make_noise_segment, mix, random_crop, random_crops
from denoise_vc.data.sources import Corpus


def _pick_source(corpus: Corpus, rng: np.random.Generator) -> int:
    lengths = np.array([len(c) for c in corpus.clean], dtype=np.float64)
    return int(rng.choice(len(lengths), p=lengths / lengths.sum()))


def cut_pair(
    corpus: Corpus, length: int, settings: MixSettings, rng: np.random.Generator, min_rms: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """A (clean, noise) pair of `length` samples; retries a few times to find clean above `min_rms`."""
    for _ in range(10):
        i = _pick_source(corpus, rng)
        if corpus.paired:  # crop both at one offset, without copying whole recordings per item
            clean, noise = random_crops([corpus.clean[i], corpus.noise[i]], length, rng)
        else:
            clean = random_crop(corpus.clean[i], length, rng)
            noise = make_noise_segment(list(corpus.noise), length, settings, rng)
        if np.sqrt(np.mean(clean**2)) >= min_rms:
            break
    return apply_bandpass(clean, settings), apply_bandpass(noise, settings)


class TrainSet(Dataset):
    """Random (noisy, clean) segments; the gain comes from a callable so a curriculum can move it."""

    def __init__(
        self,
        corpus: Corpus,
        segment_length: int,
        items_per_epoch: int,
        settings: MixSettings,
        seed: int,
        gain: float = 1.0,
        snr_db: float | None = None,
    ) -> None:
        self.corpus, self.length, self.items = corpus, segment_length, items_per_epoch
        self.settings, self.seed, self.gain, self.snr_db = settings, seed, gain, snr_db
        self.epoch = 0

    def __len__(self) -> int:
        return self.items

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        clean, noise = cut_pair(self.corpus, self.length, self.settings, rng)
        noisy = mix(clean, noise, gain=self.gain, snr_db=self.snr_db)
        return torch.from_numpy(noisy)[None], torch.from_numpy(clean)[None]


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
