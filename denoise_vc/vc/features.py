"""The one feature extractor shared by `vc-prepare`, `convert` and the VC metrics.

The acoustic frames the model reads and predicts (key "mel" of the model contract) are what the vocoder takes:
log-mel for `griffin_lim`, WORLD frame vectors for `world` (`denoise_vc.vc.world`).

Log-mel convention: mel = log(max(mel-filtered STFT magnitude, 1e-5)), with
librosa's `melspectrogram(power=1)`, centred frames at `hop_length`. Log-F0 comes from WORLD (dio +
stonemask) at the same hop, with a voiced flag and linear interpolation over unvoiced frames; energy is the
log frame RMS. Every array has exactly one row per mel frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from denoise_vc.audio import resample

LOG_FLOOR = 1e-5


@lru_cache(maxsize=1)
def load_pyworld():
    """pyworld without the pkg_resources deprecation warning its own import prints on every command."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
        import pyworld
    return pyworld


@dataclass(frozen=True)
class FeatureSettings:
    """Signal settings of one VC setup (the `data` section of a VC config)."""

    sample_rate: int
    n_fft: int
    hop_length: int
    win_length: int
    n_mels: int
    fmin: float
    fmax: float | None
    f0_floor: float
    f0_ceil: float
    trim_db: float
    loudness_dbfs: float
    vocoder: str = "griffin_lim"
    mcep_order: int = 24

    @staticmethod
    def from_config(data_cfg) -> FeatureSettings:
        return FeatureSettings(
            sample_rate=int(data_cfg.sample_rate),
            n_fft=int(data_cfg.n_fft),
            hop_length=int(data_cfg.hop_length),
            win_length=int(data_cfg.win_length),
            n_mels=int(data_cfg.n_mels),
            fmin=float(data_cfg.fmin),
            fmax=None if data_cfg.fmax is None else float(data_cfg.fmax),
            f0_floor=float(data_cfg.f0_floor),
            f0_ceil=float(data_cfg.f0_ceil),
            trim_db=float(data_cfg.trim_db),
            loudness_dbfs=float(data_cfg.loudness_dbfs),
            vocoder=str(data_cfg.get("vocoder", "griffin_lim")),
            mcep_order=int(data_cfg.get("mcep_order", 24)),
        )

    @property
    def hop_s(self) -> float:
        return self.hop_length / self.sample_rate


def mel_basis(fs: FeatureSettings) -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=fs.sample_rate, n_fft=fs.n_fft, n_mels=fs.n_mels, fmin=fs.fmin, fmax=fs.fmax)


def log_mel(wave: np.ndarray, fs: FeatureSettings) -> np.ndarray:
    """(frames, n_mels) natural-log mel magnitude; frames = 1 + len(wave) // hop."""
    import librosa

    spec = np.abs(
        librosa.stft(
            np.asarray(wave, dtype=np.float32),
            n_fft=fs.n_fft,
            hop_length=fs.hop_length,
            win_length=fs.win_length,
            center=True,
        )
    )
    mel = mel_basis(fs) @ spec
    return np.log(np.maximum(mel, LOG_FLOOR)).T.astype(np.float32)


def log_energy(wave: np.ndarray, fs: FeatureSettings) -> np.ndarray:
    """(frames,) natural-log frame RMS on the mel frame grid (also what pause detection looks at)."""
    import librosa

    rms = librosa.feature.rms(y=np.asarray(wave, np.float32), frame_length=fs.n_fft, hop_length=fs.hop_length)[0]
    return np.log(np.maximum(rms, LOG_FLOOR)).astype(np.float32)


def world_f0(wave: np.ndarray, fs: FeatureSettings, frames: int) -> np.ndarray:
    """(frames,) F0 in Hz from WORLD dio + stonemask (0 = unvoiced), cut or padded to the mel frame count."""
    pyworld = load_pyworld()
    x = np.asarray(wave, dtype=np.float64)
    period_ms = 1000.0 * fs.hop_s
    f0, times = pyworld.dio(x, fs.sample_rate, f0_floor=fs.f0_floor, f0_ceil=fs.f0_ceil, frame_period=period_ms)
    f0 = pyworld.stonemask(x, f0, times, fs.sample_rate)
    out = np.zeros(frames, dtype=np.float64)
    n = min(frames, len(f0))
    out[:n] = f0[:n]
    return out


def interpolate_log_f0(f0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log-F0 linearly interpolated over unvoiced frames and held at the edges, voiced flag).

    An utterance with no voiced frame gets NaN log-F0: the dataset turns it into the corpus mean.
    """
    voiced = f0 > 0
    if not voiced.any():
        return np.full(len(f0), np.nan, dtype=np.float32), voiced
    idx = np.arange(len(f0))
    lf0 = np.interp(idx, idx[voiced], np.log(f0[voiced]))
    return lf0.astype(np.float32), voiced


def clean_wave(wave: np.ndarray, rate: int, fs: FeatureSettings) -> np.ndarray:
    """Resample, trim leading/trailing silence (trim_db below the peak), RMS-normalise to loudness_dbfs."""
    import librosa

    x = resample(np.asarray(wave, dtype=np.float32).reshape(-1), rate, fs.sample_rate)
    if np.max(np.abs(x), initial=0.0) > 0:
        _, (start, end) = librosa.effects.trim(x, top_db=fs.trim_db, frame_length=fs.n_fft, hop_length=fs.hop_length)
        if end > start:
            x = x[start:end]
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if len(x) else 0.0
    if rms > 0:
        x = x * (10 ** (fs.loudness_dbfs / 20) / rms)
    peak = np.max(np.abs(x), initial=0.0)
    if peak > 0.99:  # keep the waveform valid; loudness is approximate for very peaky signals
        x = x * (0.99 / peak)
    return x.astype(np.float32)


def frame_count(wave: np.ndarray, fs: FeatureSettings) -> int:
    """Frames of a waveform on the centred hop grid (librosa's count)."""
    return 1 + len(wave) // fs.hop_length


def extract(wave: np.ndarray, fs: FeatureSettings) -> dict[str, np.ndarray]:
    """mel (T, frame dims: the vocoder's frames), lf0 (T,), voiced (T,), energy (T,) of a cleaned waveform."""
    from denoise_vc.vc.vocoders import acoustic_frames, frame_pitch

    frames = frame_count(wave, fs)
    energy = log_energy(wave, fs)[:frames]
    acoustic = acoustic_frames(wave, fs)
    pitch = frame_pitch(acoustic, fs)  # WORLD frames carry it; log-mel frames do not
    lf0, voiced = pitch if pitch is not None else interpolate_log_f0(world_f0(wave, fs, frames))
    return {"mel": acoustic, "lf0": lf0, "voiced": voiced, "energy": energy}
