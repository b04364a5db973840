"""Noise levels of training mixtures: one gain or SNR, or a `[low, high]` range every training item draws
its own level from (uniform in dB), and the fixed levels validation averages over, spanning that range."""

from __future__ import annotations

import numpy as np
from omegaconf import ListConfig

from denoise_vc.errors import ConfigError

VALID_LEVELS = 4  # fixed levels spanning a training range, at which validation (and best.pth) is judged

Level = float | tuple[float, float] | None


def parse_level(value, key: str, positive: bool = False) -> Level:
    """A noise level setting checked for kind and range: null, one number, or a `[low, high]` range that each
    training item draws from. `positive`: gains (>= 0; a range's ends > 0, as it is drawn in dB)."""
    if value is None:
        return None
    if isinstance(value, ListConfig):
        value = list(value)
    numeric = (int, float)
    if isinstance(value, numeric) and not isinstance(value, bool):
        numbers = [float(value)]
    elif isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, numeric) for v in value):
        numbers = [float(v) for v in value]
    else:
        raise ConfigError(f"{key} must be a number or a [low, high] range, got {value!r}")
    if not all(np.isfinite(numbers)):
        raise ConfigError(f"{key} must be finite, got {value!r}")
    if positive and (min(numbers) < 0 or (len(numbers) == 2 and min(numbers) <= 0)):
        raise ConfigError(f"{key} must be >= 0 (a range's ends > 0: it is drawn in dB), got {value!r}")
    if len(numbers) == 1:
        return numbers[0]
    low, high = numbers
    if low > high:
        raise ConfigError(f"{key}: range [{low:g}, {high:g}] has low > high")
    return (low, high)


def draw_level(level: Level, rng: np.random.Generator, in_db: bool, skew: float = 1.0) -> float | None:
    """One item's level from a setting: a range is drawn in dB (gains: in 20 log10 g), uniformly for skew 1;
    skew > 1 puts more items near the range's noisy end (the fraction of the way from it is u ** skew), so a
    model can see mostly hard mixtures without losing the clean ones it must leave alone."""
    if not isinstance(level, tuple):
        return level
    low, high = level
    u = float(rng.uniform())  # where in the range, from its low end
    if skew != 1.0:  # the noisy end is the low SNR but the high gain
        u = u**skew if in_db else 1.0 - (1.0 - u) ** skew
    if in_db:
        return float(low + (high - low) * u)
    low_db, high_db = 20 * np.log10(low), 20 * np.log10(high)
    return float(10.0 ** ((low_db + (high_db - low_db) * u) / 20.0))


def level_grid(level: Level, count: int, in_db: bool) -> list[float]:
    """Fixed levels spanning a setting (validation and `best.pth` use them): `count` points, even in dB."""
    if not isinstance(level, tuple):
        return [] if level is None else [level]
    low, high = level
    if in_db:
        return [round(float(v), 2) for v in np.linspace(low, high, count)]
    return [round(float(v), 4) for v in np.geomspace(low, high, count)]


def noise_levels(data_cfg) -> tuple[Level, Level]:
    """(gain, snr_db) of a `data` config, each one value or a [low, high] range, checked for kind and range."""
    gain = parse_level(data_cfg.get("gain"), "data.gain", positive=True)
    return gain, parse_level(data_cfg.get("snr_db"), "data.snr_db")


def validation_levels(data_cfg) -> list[tuple[float | None, float | None]]:
    """The fixed (gain, snr_db) levels validation averages over: the target level, or `VALID_LEVELS` points
    spanning a range (even in dB), so one checkpoint is chosen for every input level it will meet."""
    gain, snr_db = noise_levels(data_cfg)
    if snr_db is not None:
        return [(None, s) for s in level_grid(snr_db, VALID_LEVELS, in_db=True)]
    return [(g, None) for g in level_grid(gain, VALID_LEVELS, in_db=False)]
