"""Mixing clean speech with noise: `noisy = clean + gain * noise`.

Noise recordings are scaled once, at load, to the clean corpus's RMS, so gain 1.0 is about 0 dB SNR and
the research notes' gains (0, 0.25, 0.5, 0.75, 1.0) keep their meaning. A target SNR instead fixes
each segment's SNR exactly. Every function returns new arrays and never writes into its inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from denoise_vc.data.noises import bandpass


def gain_for_snr(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> float:
    """The gain that puts `gain * noise` at `snr_db` below `clean`."""
    p_clean = float(np.mean(np.square(clean, dtype=np.float64)))
    p_noise = float(np.mean(np.square(noise, dtype=np.float64)))
    if p_noise <= 0.0:
        return 0.0
    return float(np.sqrt(p_clean / p_noise) * 10.0 ** (-snr_db / 20.0))


def phase_shuffle(noise: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Same magnitude spectrum, random phases: a new noise realisation with the same colour."""
    spectrum = np.fft.rfft(noise)
    phases = rng.uniform(0, 2 * np.pi, size=spectrum.shape)
    phases[0] = 0.0
    if noise.shape[-1] % 2 == 0:
        phases[-1] = 0.0
    return np.fft.irfft(np.abs(spectrum) * np.exp(1j * phases), noise.shape[-1]).astype(np.float32)


def random_crops(arrays: list[np.ndarray], length: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Copies of `length` samples from one random offset shared by equally long arrays (tiled when shorter)."""
    return crops_with_start(arrays, length, rng)[0]


def crops_with_start(arrays: list[np.ndarray], length: int, rng: np.random.Generator) -> tuple[list[np.ndarray], int]:
    """`random_crops` and the offset it cut at (in the arrays tiled end to end when they are shorter)."""
    n = len(arrays[0])
    if n < length:
        reps = int(np.ceil(length / max(n, 1))) + 1
        arrays, n = [np.tile(a, reps) for a in arrays], n * reps
    start = int(rng.integers(0, n - length + 1))
    return [np.array(a[start : start + length], dtype=np.float32, copy=True) for a in arrays], start


def random_crop(x: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A copy of `length` samples from a random offset of `x` (tiled when `x` is shorter)."""
    return random_crops([x], length, rng)[0]


def beats_in(beats: np.ndarray, recording_length: int, start: int, length: int) -> np.ndarray:
    """The beat samples of a recording that fall in the crop [start, start + length), relative to the crop,
    counting the recording as tiled end to end as `crops_with_start` does."""
    beats = np.asarray(beats, dtype=np.int64)
    copies = start // max(recording_length, 1) + 2
    tiled = (beats[None, :] + recording_length * np.arange(copies)[:, None]).ravel()
    return np.sort(tiled[(tiled >= start) & (tiled < start + length)] - start)


@dataclass(frozen=True)
class MixSettings:
    """How noise is made and added to a clean segment."""

    noise_mix: int = 1  # sum up to this many noise recordings per segment
    phase_shuffle_prob: float = 0.0
    flip_prob: float = 0.0  # probability of a sign flip, and independently of a time reversal, of a noise segment
    bandpass_hz: tuple[float | None, float | None] | None = None
    sample_rate: int = 16000


def make_noise_segment(
    noises: list[np.ndarray], length: int, settings: MixSettings, rng: np.random.Generator
) -> np.ndarray:
    """Cut (and optionally sum, flip and phase-shuffle) a noise segment from long recordings. A flip keeps a real
    recording's bursts and spectrum, so it multiplies the noise a model sees without making any up."""
    count = int(rng.integers(1, max(1, settings.noise_mix) + 1))
    picks = rng.choice(len(noises), size=count, replace=count > len(noises))
    segment = np.zeros(length, dtype=np.float32)
    for k in picks:
        segment += random_crop(noises[int(k)], length, rng)
    segment /= np.sqrt(count)  # keep the reference level whatever the count
    if settings.flip_prob > 0:
        if rng.random() < settings.flip_prob:
            segment = -segment
        if rng.random() < settings.flip_prob:
            segment = np.ascontiguousarray(segment[::-1])
    if settings.phase_shuffle_prob > 0 and rng.random() < settings.phase_shuffle_prob:
        segment = phase_shuffle(segment, rng)
    return segment


def apply_bandpass(x: np.ndarray, settings: MixSettings) -> np.ndarray:
    if not settings.bandpass_hz:
        return x
    low, high = settings.bandpass_hz
    return bandpass(x, settings.sample_rate, low, high)


def mix(clean: np.ndarray, noise: np.ndarray, gain: float | None = None, snr_db: float | None = None) -> np.ndarray:
    """`clean + g * noise`, g given directly or derived from a target SNR."""
    if snr_db is not None:
        gain = gain_for_snr(clean, noise, snr_db)
    return (clean + np.float32(gain if gain is not None else 1.0) * noise).astype(np.float32)


def scale_to_level(
    noisy: np.ndarray, clean: np.ndarray, level_dbfs: tuple[float, float], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Loudness augmentation: both signals scaled alike so the mixture's RMS is a random dBFS in the range
    (peaks kept below 0.99 full scale), so the model does not learn one loudness."""
    rms = float(np.sqrt(np.mean(np.square(noisy, dtype=np.float64))))
    if rms <= 0.0:
        return noisy, clean
    factor = 10.0 ** (rng.uniform(*level_dbfs) / 20.0) / rms
    peak = float(np.max(np.abs(noisy))) * factor
    if peak > 0.99:
        factor *= 0.99 / peak
    return (noisy * np.float32(factor)).astype(np.float32), (clean * np.float32(factor)).astype(np.float32)
