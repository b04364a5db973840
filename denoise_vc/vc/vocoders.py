"""The `vocoder` config group: which acoustic frames the VC model predicts, and what turns them into audio.

    griffin_lim  log-mel magnitude frames (n_mels) -> Griffin-Lim phase reconstruction
    world        WORLD frame vectors (mel-cepstrum, band aperiodicity, log-F0, voiced flag) -> pyworld

Everything that depends on the choice asks here: frame extraction, frame size, padding, the spectral part that
DTW aligns on and the free-running validation distance, and the vocoder itself.
"""

from __future__ import annotations

import numpy as np

from denoise_vc.errors import ConfigError
from denoise_vc.vc.features import LOG_FLOOR, FeatureSettings, frame_count, log_mel

VOCODERS = ("griffin_lim", "world")


def check_vocoder(fs: FeatureSettings) -> None:
    if fs.vocoder not in VOCODERS:
        raise ConfigError(f"data.vocoder must be one of {', '.join(VOCODERS)}, got {fs.vocoder!r}")
    if fs.vocoder == "world" and not 4 <= fs.mcep_order <= 60:
        raise ConfigError(f"data.mcep_order must be in 4..60, got {fs.mcep_order}")


def world_layout(fs: FeatureSettings):
    from denoise_vc.vc.world import WorldLayout

    return WorldLayout.for_settings(fs, fs.mcep_order)


def frame_dims(fs: FeatureSettings) -> int:
    """Size of one acoustic frame: the model's input and output width."""
    check_vocoder(fs)
    return world_layout(fs).dims if fs.vocoder == "world" else fs.n_mels


def acoustic_frames(wave: np.ndarray, fs: FeatureSettings) -> np.ndarray:
    """(frames, frame_dims) float32 frames of a cleaned waveform at fs.sample_rate."""
    check_vocoder(fs)
    if fs.vocoder == "world":
        from denoise_vc.vc.world import analyse

        return analyse(wave, fs, world_layout(fs), frame_count(wave, fs))
    return log_mel(wave, fs)


def frame_pitch(frames: np.ndarray, fs: FeatureSettings) -> tuple[np.ndarray, np.ndarray] | None:
    """(interpolated log-F0, voiced flag) read from WORLD frames (NaN log-F0 when nothing is voiced, as
    `interpolate_log_f0` gives), so F0 is estimated once; None for log-mel frames."""
    if fs.vocoder != "world":
        return None
    layout = world_layout(fs)
    voiced = frames[:, layout.voiced] > 0.5
    lf0 = frames[:, layout.lf0].astype(np.float32) if voiced.any() else np.full(len(frames), np.nan, np.float32)
    return lf0, voiced


def pad_value(fs: FeatureSettings) -> float | None:
    """What pads frames up to a multiple of r: the log floor (silence) for log-mel, the last frame for WORLD."""
    return None if fs.vocoder == "world" else float(np.log(LOG_FLOOR))


def spectral_columns(fs: FeatureSettings) -> slice:
    """The columns that describe the spectral envelope (what DTW aligns on, MCD measures and retrieval
    replaces): c1..c_order for WORLD (c0 is loudness), every mel band for log-mel."""
    return slice(1, fs.mcep_order + 1) if fs.vocoder == "world" else slice(0, fs.n_mels)


def normalised_spectra(frames: np.ndarray, stats: dict, fs: FeatureSettings) -> np.ndarray:
    """(T, spectral dims) float32 spectral columns of de-normalised frames in one speaker's normalised units:
    the StarGAN generator's input and the retrieval index's search space."""
    columns = spectral_columns(fs)
    mean = np.asarray(stats["mel_mean"], np.float32)[columns]
    std = np.asarray(stats["mel_std"], np.float32)[columns]
    return np.ascontiguousarray((frames[:, columns] - mean) / std, dtype=np.float32)


def spectral_part(frames: np.ndarray, fs: FeatureSettings) -> np.ndarray:
    return frames[:, spectral_columns(fs)]


def build_vocoder(fs: FeatureSettings):
    """The vocoder for de-normalised frames of this setting (callable: frames -> float32 waveform)."""
    check_vocoder(fs)
    if fs.vocoder == "world":
        from denoise_vc.vc.world import World

        return World(fs, world_layout(fs))
    from denoise_vc.models.vc import GriffinLim

    return GriffinLim(fs.sample_rate, fs.n_fft, fs.hop_length, fs.n_mels, fs.fmin, fs.fmax, fs.win_length)


def free_running_distance(converted: np.ndarray, target: np.ndarray, fs: FeatureSettings) -> float:
    """Distance of de-normalised converted frames from the target's after DTW on the spectral part: MCD in dB
    (c1..c_order) for WORLD, mean absolute log-mel difference for Griffin-Lim."""
    from denoise_vc.vc.metrics import MCD_CONSTANT, dtw_pairs

    a, b = spectral_part(converted, fs).astype(np.float64), spectral_part(target, fs).astype(np.float64)
    path = dtw_pairs(a, b)
    diff = a[path[:, 0]] - b[path[:, 1]]
    if fs.vocoder == "world":
        return float(np.mean(MCD_CONSTANT * np.sqrt(np.sum(diff**2, axis=1))))
    return float(np.mean(np.abs(diff)))
