"""Deterministic generated noises, each returned at unit RMS so a noise gain means the same for all.

white, pink, brown, babble (several speech-like talkers), hum (mains with harmonics), engine (rumble
with RPM harmonics), clicks (sparse decaying impulses).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import signal

from denoise_vc.data.synth import SpeakerTraits, speech_like


def _unit_rms(x: np.ndarray) -> np.ndarray:
    return (x / (np.sqrt(np.mean(x**2)) + 1e-12)).astype(np.float32)


def _coloured(n: int, rng: np.random.Generator, exponent: float, sample_rate: int) -> np.ndarray:
    """Gaussian noise with power spectrum ~ 1/f**exponent (flat below 1 Hz, so brown noise does not drift)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    spectrum *= 1.0 / np.maximum(freqs, 1.0) ** (exponent / 2)
    spectrum[0] = 0.0
    return np.fft.irfft(spectrum, n)


def white(n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(n)


def pink(n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    return _coloured(n, rng, 1.0, sample_rate)


def brown(n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    return _coloured(n, rng, 2.0, sample_rate)


def babble(n: int, sample_rate: int, rng: np.random.Generator, talkers: int = 6) -> np.ndarray:
    duration = n / sample_rate
    out = np.zeros(n)
    for _ in range(talkers):
        seed = int(rng.integers(2**31))
        out += _unit_rms(speech_like(duration, sample_rate, seed, SpeakerTraits.random(rng)))[:n]
    return out


def hum(n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    mains = 50.0 if rng.random() < 0.5 else 60.0
    t = np.arange(n) / sample_rate
    drift = 1 + 0.002 * np.sin(2 * np.pi * rng.uniform(0.01, 0.1) * t)
    out = np.zeros(n)
    k = 1
    while k * mains < 0.45 * sample_rate and k <= 15:
        amp = rng.uniform(0.3, 1.0) / k
        out += amp * np.sin(2 * np.pi * k * mains * np.cumsum(drift) / sample_rate + rng.uniform(0, 2 * np.pi))
        k += 1
    return out


def engine(n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / sample_rate
    rpm = 1800 + 900 * np.sin(2 * np.pi * rng.uniform(0.02, 0.1) * t + rng.uniform(0, 2 * np.pi))
    firing = rpm / 60.0 * 2  # four-stroke, four cylinders: two firings per revolution
    phase = 2 * np.pi * np.cumsum(firing) / sample_rate
    out = np.zeros(n)
    for k in range(1, 8):
        out += np.where(k * firing < 0.45 * sample_rate, rng.uniform(0.2, 1.0) / k, 0.0) * np.sin(k * phase)
    rumble = _coloured(n, rng, 2.0, sample_rate)
    return _unit_rms(out) + 1.5 * _unit_rms(rumble)


def clicks(n: int, sample_rate: int, rng: np.random.Generator, rate_hz: float = 4.0) -> np.ndarray:
    out = np.zeros(n)
    count = rng.poisson(rate_hz * n / sample_rate)
    decay = max(2, int(0.002 * sample_rate))
    shape = np.exp(-np.arange(5 * decay) / decay)
    for pos in rng.integers(0, max(n, 1), size=count):
        seg = shape[: n - pos] * rng.standard_normal(min(len(shape), n - pos))
        out[pos : pos + len(seg)] += rng.uniform(0.3, 1.0) * seg
    out += 0.01 * rng.standard_normal(n)  # clicks ride on a faint floor so RMS is never zero
    return out


NOISES: dict[str, Callable[[int, int, np.random.Generator], np.ndarray]] = {
    "white": white,
    "pink": pink,
    "brown": brown,
    "babble": babble,
    "hum": hum,
    "engine": engine,
    "clicks": clicks,
}


def generate_noise(kind: str, duration_s: float, sample_rate: int, seed: int) -> np.ndarray:
    """A unit-RMS noise recording of the given kind, deterministic by seed."""
    if kind not in NOISES:
        from denoise_vc.errors import ConfigError

        raise ConfigError(f"unknown noise kind {kind!r}; choose from {', '.join(NOISES)}")
    n = max(1, int(round(duration_s * sample_rate)))
    rng = np.random.default_rng(seed)
    return _unit_rms(NOISES[kind](n, sample_rate, rng))


def bandpass(x: np.ndarray, sample_rate: int, low_hz: float | None, high_hz: float | None) -> np.ndarray:
    """Zero-phase Butterworth band-pass (or low/high-pass when one edge is None); returns a new array."""
    nyq = sample_rate / 2
    low = low_hz if low_hz and low_hz > 0 else None
    high = high_hz if high_hz and high_hz < nyq else None
    if low is None and high is None:
        return np.array(x, copy=True)
    if low is not None and high is not None:
        sos = signal.butter(4, [low, high], btype="band", fs=sample_rate, output="sos")
    elif low is not None:
        sos = signal.butter(4, low, btype="high", fs=sample_rate, output="sos")
    else:
        sos = signal.butter(4, high, btype="low", fs=sample_rate, output="sos")
    return signal.sosfiltfilt(sos, x, axis=-1).astype(np.float32)
