"""Where clean and noise recordings come from: the built-in generators or folders of real files.

A `Corpus` is one split's clean recordings and noise recordings at one sample rate. Noise is scaled to
the clean corpus's RMS, so a noise gain of 1.0 is about 0 dB SNR. In paired mode (matched noisy/clean
files) the noise of item i is `noisy_i - clean_i` at its recorded level, so gain 1.0 reproduces the
recording and other gains scale its noise.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from denoise_vc.audio import AUDIO_SUFFIXES, audio_info, list_audio_files, load_audio
from denoise_vc.data.noises import generate_noise
from denoise_vc.data.synth import heartbeat_like, speech_like
from denoise_vc.errors import AudioFileError, ConfigError

SPLITS = ("train", "valid", "test")
BUILTIN_CLEAN = ("builtin_speech", "builtin_heartbeat")
# record: whole recordings per split as with files (one heart per record, so the test heart is never trained on),
# with the noise split in time by default (a noise database holds a few long records)
SPLIT_BY = ("files", "record", "time")


@dataclass(frozen=True)
class Corpus:
    sample_rate: int
    clean: tuple[np.ndarray, ...]
    noise: tuple[np.ndarray, ...]
    paired: bool = False  # noise[i] belongs to clean[i], sample for sample
    beats: tuple[np.ndarray | None, ...] = ()  # annotated R-peak samples of clean[i] (ECG), () when none known


def split_seed(seed: int, split: str, *extra: str | int) -> int:
    """A stable per-split seed, so train, valid and test never share generated material."""
    key = "/".join([str(seed), split, *map(str, extra)])
    return zlib.crc32(key.encode()) & 0x7FFFFFFF


def _readonly(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    x.setflags(write=False)  # cached arrays: augmentation must copy, never write
    return x


def _builtin_clean(kind: str, count: int, seconds: float, sr: int, seed: int, split: str):
    """(recordings, beats): generated heartbeats come with the R peaks the generator placed."""
    out, beats = [], []
    for i in range(count):
        s = split_seed(seed, split, "clean", i)
        if kind == "builtin_speech":
            out.append(speech_like(seconds, sr, s))
        else:
            heart = heartbeat_like(seconds, sr, s)
            out.append(heart.signal)
            beats.append(heart.r_peaks)
    return out, beats


def _builtin_noise(kinds: list[str], seconds: float, sr: int, seed: int, split: str) -> list[np.ndarray]:
    return [generate_noise(k, seconds, sr, split_seed(seed, split, "noise", k)) for k in kinds]


def _split_files(files: list[Path], split: str, fractions: dict, seed: int) -> list[Path]:
    """Deterministic file-level split; with fewer than 3 files every split sees every file."""
    if len(files) < 3:
        return files
    order = np.random.default_rng(split_seed(seed, "files")).permutation(len(files))
    n_valid = max(1, int(round(fractions.get("valid", 0.1) * len(files))))
    n_test = max(1, int(round(fractions.get("test", 0.1) * len(files))))
    bounds = {"valid": (0, n_valid), "test": (n_valid, n_valid + n_test), "train": (n_valid + n_test, len(files))}
    lo, hi = bounds[split]
    return [files[i] for i in sorted(order[lo:hi])]


def time_bounds(n: int, split: str, fractions: dict) -> tuple[int, int]:
    """The split's contiguous stretch [lo, hi) of a recording of n samples: train first, then valid, then test."""
    n_valid = int(round(fractions.get("valid", 0.1) * n))
    n_test = int(round(fractions.get("test", 0.1) * n))
    n_train = n - n_valid - n_test
    bounds = {"train": (0, n_train), "valid": (n_train, n_train + n_valid), "test": (n_train + n_valid, n)}
    return bounds[split]


def load_beats(path: Path, sample_rate: int) -> np.ndarray | None:
    """Annotated R peaks of a recording, at `sample_rate`: a WFDB record's `.atr` beats (rhythm and quality
    marks left out), or `<name>.peaks.csv` beside any recording (one sample index per line at the recording's
    own rate, an optional header); None when neither exists."""
    from denoise_vc.ecg_metrics import BEAT_SYMBOLS
    from denoise_vc.signal_files import is_number

    csv_file = path.with_name(path.stem + ".peaks.csv")
    if path.suffix.lower() == ".hea" and path.with_suffix(".atr").exists():
        import wfdb

        try:
            ann = wfdb.rdann(str(path.with_suffix("")), "atr")
            native = float(wfdb.rdheader(str(path.with_suffix(""))).fs)
        except Exception as exc:  # wfdb raises many types for damaged annotation files
            raise AudioFileError(f"{path.with_suffix('.atr')}: not a readable annotation file ({exc})") from None
        samples = np.array([s for s, sym in zip(ann.sample, ann.symbol) if sym in BEAT_SYMBOLS], dtype=np.float64)
    elif csv_file.exists():
        lines = [ln.split(",")[0].strip() for ln in csv_file.read_text().splitlines() if ln.strip()]
        try:
            samples = np.array([float(v) for v in (lines[1:] if lines and not is_number(lines[0]) else lines)])
        except ValueError:
            raise AudioFileError(f"{csv_file}: peak samples must be numbers, one per line") from None
        native = float(audio_info(path).samplerate) if path.suffix.lower() in AUDIO_SUFFIXES else sample_rate
    else:
        return None
    return np.round(samples * sample_rate / native).astype(np.int64)


def _load_folder(
    folder: str,
    sr: int,
    split: str,
    fractions: dict,
    seed: int,
    load: dict,
    split_by: str = "files",
    channels: list[int] | str | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    """The split's recordings, mono at `sr` (or, with `channels`, each of those channels a recording of its own,
    channel by channel: every file's first, then every file's second, ...): whole files per split, or (split_by=time,
    for a few long records such as ECG) the split's stretch of every file, so no sample is in two splits.
    Every file's header is checked, whatever its split, and all unusable files are named in one error, so a
    corpus is repaired in one pass, not one per run."""
    if split_by not in SPLIT_BY:
        raise ConfigError(f"data.split_by / data.noise_split_by must be one of {', '.join(SPLIT_BY)}, got {split_by!r}")
    every = list_audio_files(folder)
    files = every if split_by == "time" else _split_files(every, split, fractions, seed)
    if not files:
        raise AudioFileError(f"{folder}: no .wav/.flac/.ogg/.mat/.hea files found")
    by_channel: dict[int, list[tuple[np.ndarray, np.ndarray | None]]] = {}
    problems = []
    for f in every:
        try:
            if f in files:
                signals = _read_channels(f, sr, load, channels)
                known = load_beats(f, sr)
                for channel, x in enumerate(signals):
                    lo, hi = time_bounds(len(x), split, fractions) if split_by == "time" else (0, len(x))
                    cut = None if known is None else known[(known >= lo) & (known < hi)] - lo
                    by_channel.setdefault(channel, []).append((x[lo:hi], cut))
            elif f.suffix.lower() in AUDIO_SUFFIXES and audio_info(f).frames == 0:
                raise AudioFileError(f"{f}: contains no samples")
        except AudioFileError as exc:
            problems.append(str(exc))
    if len(problems) == 1 and len(every) == 1:
        raise AudioFileError(problems[0])
    if problems:
        raise AudioFileError(
            f"{folder}: {len(problems)} of {len(every)} files unusable (fix or remove them): {'; '.join(problems[:3])}"
            + ("; ..." if len(problems) > 3 else "")
        )
    ordered = [item for channel in sorted(by_channel) for item in by_channel[channel]]
    return [x for x, _ in ordered], [b for _, b in ordered]


def _read_channels(path: Path, sr: int, load: dict, channels: list[int] | str | None) -> np.ndarray:
    """(channels, time) of one file: mono (or `load`'s one channel) without `channels`, else every channel
    ("all") or the listed ones, in that order."""
    if channels is None:
        return load_audio(path, sr, mono=True, **load)[0]
    if channels == "all":
        return load_audio(path, sr, mono=False, **{**load, "channel": None})[0]
    return load_audio(path, sr, **{**load, "channel": list(channels)})[0]


def _load_pairs(noisy_dir: str, clean_dir: str, sr: int, split: str, fractions: dict, seed: int, load: dict):
    clean_files = {p.stem: p for p in list_audio_files(clean_dir)}
    noisy_files = {p.stem: p for p in list_audio_files(noisy_dir)}
    names = sorted(set(clean_files) & set(noisy_files))
    if not names:
        raise AudioFileError(f"{noisy_dir}: no file name matches one in {clean_dir}")
    chosen = _split_files([Path(n) for n in names], split, fractions, seed)
    clean, noise = [], []
    for name in (p.name for p in chosen):
        c = load_audio(clean_files[name], sr, mono=True, **load)[0][0]
        n = load_audio(noisy_files[name], sr, mono=True, **load)[0][0]
        length = min(len(c), len(n))
        clean.append(c[:length])
        noise.append(n[:length] - c[:length])
    return clean, noise


def noise_channels(cfg: dict) -> list[int] | str | None:
    """The channels read from every noise recording, each kept as a recording of its own: `data.noise_channels`
    ("all", or a list; e.g. both leads of an NSTDB noise record, two different real artefacts); None: one
    recording per file, as `data.channel` says."""
    chosen = cfg.get("noise_channels")
    if chosen is None or chosen == "all":
        return chosen
    if not isinstance(chosen, list | tuple) or not chosen or not all(type(c) is int and c >= 0 for c in chosen):
        raise ConfigError(f"data.noise_channels must be null, all or a list of channel numbers >= 0, got {chosen!r}")
    return list(dict.fromkeys(chosen))


def _corpus_rms(arrays: list[np.ndarray]) -> float:
    """RMS about each recording's mean: a DC offset (ECG baselines sit at -0.3 mV) is not signal power."""
    total = sum(float(np.sum(np.square(a - np.mean(a, dtype=np.float64), dtype=np.float64))) for a in arrays)
    count = sum(len(a) for a in arrays)
    return float(np.sqrt(total / max(count, 1)))


def build_corpus(data_cfg, split: str, seed: int) -> Corpus:
    """The clean and noise recordings of one split, as described by a `data` config."""
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}")
    key = (_freeze(data_cfg), split, seed)
    return _build_corpus_cached(key)


def _freeze(cfg) -> tuple:
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(cfg, DictConfig | ListConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    if isinstance(cfg, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in cfg.items()))
    if isinstance(cfg, list | tuple):
        return tuple(_freeze(v) for v in cfg)
    return cfg


@lru_cache(maxsize=8)
def _build_corpus_cached(key: tuple) -> Corpus:
    cfg = _thaw(key[0])
    split, seed = key[1], key[2]
    sr = int(cfg["sample_rate"])
    fractions = cfg.get("split") or {"valid": 0.1, "test": 0.1}
    load_args = {
        "mat_variable": cfg.get("mat_variable"),
        "mat_sample_rate": cfg.get("mat_sample_rate"),
        "channel": cfg.get("channel"),
    }
    split_by = cfg.get("split_by") or "files"
    builtin = cfg.get("builtin") or {}
    counts = builtin.get("utterances") or {}
    if not cfg.get("clean"):
        raise ConfigError("data.clean is not set: pass data.clean=/path/to/clean/recordings")
    paired = bool(cfg.get("noisy"))
    if paired:
        clean, noise = _load_pairs(cfg["noisy"], cfg["clean"], sr, split, fractions, seed, load_args)
        return Corpus(sr, tuple(map(_readonly, clean)), tuple(map(_readonly, noise)), paired=True)

    if cfg["clean"] in BUILTIN_CLEAN:
        clean, beats = _builtin_clean(
            cfg["clean"], int(counts.get(split, 4)), float(builtin.get("utterance_s", 4.0)), sr, seed, split
        )
    else:
        clean, beats = _load_folder(cfg["clean"], sr, split, fractions, seed, load_args, split_by)
    if cfg["noise"] == "builtin":
        noise_s = float(builtin.get("noise_s", 30.0)) * (1.0 if split == "train" else 0.5)
        noise = _builtin_noise(list(cfg["noise_kinds"]), noise_s, sr, seed, split)
    else:
        noise_split = cfg.get("noise_split_by") or ("time" if split_by == "record" else split_by)
        noise = _load_folder(
            cfg["noise"], sr, split, fractions, seed, load_args, noise_split, channels=noise_channels(cfg)
        )[0]
    ref = _corpus_rms(clean)
    noise = [n * (ref / (np.sqrt(np.mean(np.square(n, dtype=np.float64))) + 1e-12)) for n in noise]
    known = tuple(beats) if any(b is not None for b in beats) else ()
    return Corpus(sr, tuple(map(_readonly, clean)), tuple(map(_readonly, noise)), paired=False, beats=known)


def _thaw(frozen):
    if (
        isinstance(frozen, tuple)
        and frozen
        and all(isinstance(i, tuple) and len(i) == 2 and isinstance(i[0], str) for i in frozen)
    ):
        return {k: _thaw(v) for k, v in frozen}
    if isinstance(frozen, tuple):
        return [_thaw(v) for v in frozen]
    return frozen
