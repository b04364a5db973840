"""Range checks of numeric training settings, before any data is loaded or any file written.

YAML has no schema and Hydra checks only that a key exists; a negative learning rate or a zero segment
length would otherwise end in a traceback from deep inside torch. Each rule: (low, high, whole number?).
"""

from __future__ import annotations

import math

from omegaconf import OmegaConf

from denoise_vc.errors import ConfigError

HUGE = 1e9
RULES: dict[str, tuple[float, float, bool]] = {
    "seed": (0, 2**32 - 1, True),
    "solver.seed": (0, 2**32 - 1, True),
    "solver.lr": (0, 10.0, False),
    "solver.epochs": (0, HUGE, True),
    "solver.max_minutes": (0, HUGE, False),
    "solver.patience": (0, HUGE, True),
    "solver.grad_clip": (0, HUGE, False),
    "solver.weight_decay": (0, 10.0, False),
    "solver.plot_every": (0, HUGE, True),
    "solver.ema_decay": (0, 1.0, False),
    "solver.valid_denoised_weight": (0, 1.0, False),
    "data.sample_rate": (1, 1_000_000, True),
    "data.segment_length": (1, 10_000_000, True),  # 10 M samples: 10 min at 16 kHz per item
    "data.test_segment_length": (1, 10_000_000, True),
    "data.items_per_epoch": (1, 100_000_000, True),
    "data.valid_items": (1, 1_000_000, True),
    "data.test_items": (1, 1_000_000, True),
    "data.batch_size": (1, 100_000, True),
    "data.num_workers": (0, 1024, True),
    "data.noise_mix": (1, 1024, True),
    "data.phase_shuffle": (0, 1.0, False),
    "data.noise_flip": (0, 1.0, False),
    "data.level_skew": (0.1, 10.0, False),
    "data.front_end.copies": (1, 100, True),
    "trainer.workers": (1, 100_000, True),
    "trainer.cpus_per_worker": (0.01, 1024, False),
    "trainer.max_failures": (0, 1000, True),
    "inference.window_s": (1e-3, 3600.0, False),
    "inference.context_s": (0, 3600.0, False),
    "inference.crossfade_s": (0, 3600.0, False),
    "inference.batch_windows": (1, 4096, True),
}


def in_range(value: float, key: str) -> bool:
    """Whether `value` is finite and within `key`'s rule (a whole number where the rule asks for one)."""
    low, high, whole = RULES[key]
    return math.isfinite(value) and low <= value <= high and not (whole and value != int(value))


def check_settings(cfg) -> None:
    """Refuse (one line, naming the key) any numeric setting outside its range, NaN or infinite."""
    for key, (low, high, whole) in RULES.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is None or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if not in_range(value, key):
            kind = "a whole number" if whole else "a number"
            raise ConfigError(f"{key}={value!r} is out of range: must be {kind} in [{low:g}, {high:g}]")
