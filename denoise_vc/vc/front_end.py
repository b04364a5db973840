"""Noise-robust VC training: the training sources also as the front-end will hand them over at `convert`.

A VC model trained on clean sources meets the denoiser's residue (leftover noise, smeared onsets, a duller
top band) for the first time at conversion and loses 1-2 dB of MCD to it (NOTE.md, sessions 9-10). With
`data.front_end.denoiser` set, every train and valid source is also mixed with a real noise recording at a
random SNR and cleaned by that denoiser, `copies` times, paired with the same clean target; test pairs stay as
they are. Validation scores clean and denoised sources (each form's median is logged; the best checkpoint
follows their pooled median, or `solver.valid_denoised_weight` x denoised + the rest x clean).
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from denoise_vc.audio import AUDIO_SUFFIXES, load_audio, resample
from denoise_vc.data.mixing import mix, random_crop
from denoise_vc.errors import ConfigError
from denoise_vc.vc.corpus import Pair


def front_end_settings(data_cfg) -> tuple[str, Path, int, tuple[float, float]] | None:
    """(denoiser, noise folder, copies, SNR range) of `data.front_end`, checked; None when it is off."""
    front = data_cfg.get("front_end")
    if front is None or front.get("denoiser") in (None, "", "null"):
        return None
    noise = front.get("noise")
    if noise in (None, "", "null"):
        raise ConfigError("data.front_end.noise: a folder of noise recordings is needed with data.front_end.denoiser")
    folder = Path(str(noise)).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"data.front_end.noise={folder}: folder not found")
    value = front.get("snr_db", [0.0, 15.0])
    snr = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value, value]
    try:
        low, high = (float(v) for v in snr)
    except (TypeError, ValueError):
        low = high = float("nan")
    if not (np.isfinite(low) and np.isfinite(high) and -30.0 <= low <= high <= 60.0):
        raise ConfigError(f"data.front_end.snr_db={snr}: expected [low, high] dB with -30 <= low <= high <= 60")
    return str(front.denoiser), folder, int(front.get("copies", 3)), (low, high)


def noise_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise ConfigError(f"data.front_end.noise={folder}: no .wav/.flac/.ogg files")
    return files


def checkpoint_digest(denoiser: str) -> str:
    """Content hash of the front-end's checkpoint: the prepared features follow the weights, not the name."""
    from denoise_vc.pretrained import resolve_checkpoint

    path = resolve_checkpoint(denoiser)
    if not path.is_file():
        raise ConfigError(f"data.front_end.denoiser={denoiser}: checkpoint not found")
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def noisy_copy(wave: np.ndarray, noises: list[np.ndarray], snr_range: tuple[float, float], seed: int) -> np.ndarray:
    """`wave` plus a random cut of a random noise recording at a random SNR in `snr_range` (deterministic)."""
    rng = np.random.default_rng(seed)
    noise = random_crop(noises[int(rng.integers(len(noises)))], len(wave), rng)
    return mix(wave, noise, snr_db=float(rng.uniform(*snr_range)))


DENOISED_COPY = re.compile(r"\.den\d+$")


def is_denoised_copy(name: str) -> bool:
    """Whether a pair name is one of `with_front_end`'s noisy-then-denoised copies (NAME.den0, ...)."""
    return DENOISED_COPY.search(name) is not None


def with_front_end(pairs: list[Pair], data_cfg, seed: int, device: str) -> list[Pair]:
    """`pairs` plus, for each train and valid pair, `copies` pairs whose source is noisy-then-denoised
    (named NAME.den0, NAME.den1, ...). Noise and denoiser load only when a copy's features are computed."""
    settings = front_end_settings(data_cfg)
    if settings is None:
        return pairs
    denoiser_name, folder, copies, snr_range = settings
    files = noise_files(folder)
    rate = int(data_cfg.sample_rate)
    cache: dict[str, object] = {}

    def front_end():
        if not cache:
            from denoise_vc.pretrained import resolve_checkpoint
            from denoise_vc.solvers.base import pick_device
            from denoise_vc.vc.pipeline import Denoiser

            cache["denoiser"] = Denoiser.load(resolve_checkpoint(denoiser_name), pick_device(device))
            cache["noises"] = [load_audio(f, rate)[0][0] for f in files]
        return cache["denoiser"], cache["noises"]

    def denoised_source(pair: Pair, copy: int) -> tuple[np.ndarray, int]:
        denoiser, noises = front_end()
        wave, wave_rate = pair.source()
        mixture_seed = zlib.crc32(f"{seed}/{pair.name}/{copy}".encode())
        noisy = noisy_copy(resample(wave, wave_rate, rate), noises, snr_range, mixture_seed)
        return denoiser(noisy, rate)

    extra = [
        Pair(
            f"{pair.name}.den{copy}",
            pair.split,
            lambda pair=pair, copy=copy: denoised_source(pair, copy),
            pair.target,
            pair.source_path,
            pair.target_path,
        )
        for pair in pairs
        if pair.split in ("train", "valid")
        for copy in range(copies)
    ]
    return pairs + extra
