"""Non-parallel many-speaker data for `model=stargan_vc`: one label per speaker, no sentence in common.

`data.speakers=DIR`: one sub-folder of recordings per speaker (label = sub-folder name; labels in sorted order;
files found recursively, sorted by path). `data.speakers=builtin`: the four generated voices, each saying its
*own* scripts (seeded by speaker), so nothing is parallel, and none of the scripts of the parallel built-in
corpus that `vc-evaluate` scores on.

Each speaker's sorted files are split by `data.split` fractions (the last ones are test, those before them
valid; a speaker with fewer than 3 files trains on all). Features (`features.extract` of `clean_wave`: the
one path `convert` also takes) are cached per file in `data.prepared_dir/features/<speaker>/`, written
atomically and reused while the settings' fingerprint and the file's size and time are unchanged;
`stats.json` holds each speaker's normalisation statistics over its training files. Training items are
random `data.patch_s`-second patches (about 1 s: the 2019 notes' 4 s patches did not fit real batch sizes).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from denoise_vc.audio import AUDIO_SUFFIXES, audio_info, load_audio
from denoise_vc.errors import AudioFileError, ConfigError
from denoise_vc.paths import write_atomically, write_json
from denoise_vc.vc.corpus import BUILTIN_SPEAKERS, _split_of, make_script, render
from denoise_vc.vc.features import FeatureSettings, clean_wave, extract
from denoise_vc.vc.vocoders import normalised_spectra

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Utterance:
    """One recording of one speaker: where it sits in the cache and how to load (waveform, rate)."""

    speaker: str
    name: str  # file path relative to the speaker's folder, without suffix ("" sub-folders allowed)
    split: str
    load: Callable[[], tuple[np.ndarray, int]]
    path: Path | None = None

    @property
    def stamp(self) -> list[int]:
        """Size and modification time of the file: a cached feature file is stale when they change."""
        if self.path is None:
            return []
        info = self.path.stat()
        return [int(info.st_size), int(info.st_mtime_ns)]


def _load(path: Path) -> tuple[np.ndarray, int]:
    wave, rate = load_audio(path)
    return wave[0], rate


def builtin_utterances(data_cfg, seed: int) -> dict[str, list[Utterance]]:
    """Every built-in voice with its own scripts: data.builtin.utterances per split, data.builtin.words each."""
    b, rate = data_cfg.builtin, int(data_cfg.sample_rate)
    corpus: dict[str, list[Utterance]] = {}
    for speaker in sorted(BUILTIN_SPEAKERS):
        items = []
        for split in SPLITS:
            for i in range(int(b.utterances[split])):
                script_seed = zlib.crc32(f"{seed}/speakers/{speaker}/{split}/{i}".encode()) & 0x7FFFFFFF

                def speak(script_seed=script_seed, speaker=speaker) -> tuple[np.ndarray, int]:
                    script = make_script(script_seed, int(b.words))
                    return render(script, BUILTIN_SPEAKERS[speaker], rate, script_seed), rate

                items.append(Utterance(speaker, f"{split}_{i:04d}", split, speak))
        corpus[speaker] = items
    return corpus


def folder_utterances(root: Path, fractions) -> dict[str, list[Utterance]]:
    """One speaker per sub-folder of `root` (hidden ones skipped); every readable audio file below it."""
    if not root.is_dir():
        raise ConfigError(f"data.speakers={root}: folder not found (give a folder of speaker sub-folders, or builtin)")
    corpus: dict[str, list[Utterance]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
        if not files:
            raise ConfigError(f"{folder}: speaker folder holds no .wav/.flac/.ogg files")
        for path in files:
            audio_info(path)  # fail on an unreadable file before anything is written
        names = [p.relative_to(folder).with_suffix("").as_posix() for p in files]
        corpus[folder.name] = [
            Utterance(folder.name, name, _split_of(i, len(files), fractions), lambda p=path: _load(p), path)
            for i, (name, path) in enumerate(zip(names, files, strict=True))
        ]
    if len(corpus) < 2:
        raise ConfigError(f"data.speakers={root}: found {len(corpus)} speaker sub-folder(s); need at least 2")
    return corpus


def speaker_corpus(data_cfg, seed: int) -> dict[str, list[Utterance]]:
    """Speaker name (sorted: label order) -> its utterances."""
    source = str(data_cfg.speakers)
    if source == "builtin":
        return builtin_utterances(data_cfg, seed)
    return folder_utterances(Path(source).expanduser(), data_cfg.split)


def fingerprint(data_cfg, seed: int) -> str:
    """Hash of what shapes the cached features (signal settings, corpus, split), not of batching settings."""
    fs = dataclasses.asdict(FeatureSettings.from_config(data_cfg))
    corpus = {"speakers": str(data_cfg.speakers), "split": dict(data_cfg.split)}
    if str(data_cfg.speakers) == "builtin":
        b = data_cfg.builtin
        corpus |= {"utterances": dict(b.utterances), "words": int(b.words), "seed": seed}
    text = json.dumps({"features": fs, "corpus": corpus}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def utterance_features(wave: np.ndarray, rate: int, fs: FeatureSettings) -> dict[str, np.ndarray]:
    """frames (T, frame dims: the vocoder's), lf0 and voiced (T,) of a raw waveform; convert takes this path too."""
    feats = extract(clean_wave(wave, rate, fs), fs)
    return {"frames": feats["mel"], "lf0": feats["lf0"], "voiced": feats["voiced"].astype(bool)}


def speaker_stats(items: list[dict[str, np.ndarray]], speaker: str, needs_f0: bool) -> dict[str, Any]:
    """Per-column frame mean/std and voiced log-F0 mean/std of one speaker's training files."""
    frames = np.concatenate([item["frames"] for item in items]).astype(np.float64)
    lf0 = np.concatenate([item["lf0"][item["voiced"]] for item in items]).astype(np.float64)
    if len(lf0) < 2 and needs_f0:
        raise ConfigError(f"speaker {speaker!r}: (almost) no voiced frames in its training files; cannot convert F0")
    return {
        "mel_mean": frames.mean(axis=0).tolist(),
        "mel_std": np.maximum(frames.std(axis=0), 1e-3).tolist(),
        "lf0_mean": float(lf0.mean()) if len(lf0) >= 2 else None,
        "lf0_std": float(max(lf0.std(), 1e-3)) if len(lf0) >= 2 else None,
        "frames": int(len(frames)),
    }


def prepare_speakers(cfg, progress: bool = True) -> dict[str, Any]:
    """Compute (or reuse) every file's features; returns the manifest (speakers, splits) plus `stats`."""
    from tqdm import tqdm

    data, seed = cfg.data, int(cfg.seed)
    fs = FeatureSettings.from_config(data)
    out = Path(str(data.prepared_dir))
    corpus = speaker_corpus(data, seed)
    for speaker, items in corpus.items():
        if not any(u.split == "train" for u in items):
            raise ConfigError(f"speaker {speaker!r}: no utterance left for training after the valid/test split")
    stamp = fingerprint(data, seed)
    manifest_path = out / "manifest.json"
    old = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    old_files = old.get("files", {}) if old.get("fingerprint") == stamp else {}
    files: dict[str, list[int]] = {}
    train: dict[str, list[dict[str, np.ndarray]]] = {s: [] for s in corpus}
    computed = 0
    everything = [u for items in corpus.values() for u in items]
    for utt in tqdm(everything, desc="vc-prepare speakers", disable=None if progress else True, leave=False):
        key = f"{utt.speaker}/{utt.name}"
        path = out / "features" / f"{key}.npz"
        files[key] = utt.stamp
        if old_files.get(key) == files[key] and path.exists():
            if utt.split == "train":
                with np.load(path) as cached:
                    train[utt.speaker].append({k: cached[k] for k in cached.files})
            continue
        try:
            arrays = utterance_features(*utt.load(), fs)
        except ValueError as exc:
            raise AudioFileError(f"{utt.path or key}: cannot compute features ({exc})") from None
        write_atomically(path, lambda tmp, a=arrays: np.savez(tmp, **a), ".npz")
        computed += 1
        if utt.split == "train":
            train[utt.speaker].append(arrays)
    stats = {s: speaker_stats(items, s, fs.vocoder == "world") for s, items in train.items()}
    manifest = {
        "fingerprint": stamp,
        "speakers": list(corpus),
        "splits": {split: [[u.speaker, u.name] for u in everything if u.split == split] for split in SPLITS},
        "files": files,
        "computed": computed,
        "reused": len(everything) - computed,
    }
    write_json(out / "stats.json", stats)
    write_json(manifest_path, manifest)
    return manifest | {"stats": stats}


def load_split(prepared_dir: str | Path, manifest: dict[str, Any], split: str, fs: FeatureSettings):
    """[(speaker label, normalised spectral frames)] of one split, in manifest order."""
    labels = {name: i for i, name in enumerate(manifest["speakers"])}
    out = []
    for speaker, name in manifest["splits"][split]:
        path = Path(prepared_dir) / "features" / speaker / f"{name}.npz"
        if not path.exists():
            raise ConfigError(f"{path}: cached features missing; run vc-train again to prepare them")
        with np.load(path) as z:
            out.append((labels[speaker], normalised_spectra(z["frames"], manifest["stats"][speaker], fs)))
    return out


class PatchSet(Dataset):
    """Random `patch` -frame patches of the training utterances, each with a random other target speaker.

    Item `index` of epoch `epoch` is a pure function of (seed, epoch, index): a speaker (uniform, so a speaker
    with many files does not dominate), one of its utterances, an offset and a target; a resumed run draws the
    same patches. Utterances shorter than a patch are repeated (wrap) to fill it."""

    def __init__(self, items: list[tuple[int, np.ndarray]], n_speakers: int, patch: int, seed: int) -> None:
        self.by_speaker: dict[int, list[np.ndarray]] = {}
        for label, frames in items:
            self.by_speaker.setdefault(label, []).append(frames)
        self.labels = sorted(self.by_speaker)
        self.n_speakers, self.patch, self.seed = n_speakers, max(1, int(patch)), int(seed)
        self.epoch = 0
        self.size = 0  # items per epoch: set by the solver

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        source = self.labels[int(rng.integers(len(self.labels)))]
        utterances = self.by_speaker[source]
        frames = utterances[int(rng.integers(len(utterances)))]
        if len(frames) < self.patch:
            frames = np.pad(frames, ((0, self.patch - len(frames)), (0, 0)), mode="wrap")
        start = int(rng.integers(len(frames) - self.patch + 1))
        target = int(rng.integers(self.n_speakers - 1))
        target += target >= source  # any speaker but the source
        return {
            "frames": torch.from_numpy(np.ascontiguousarray(frames[start : start + self.patch])),
            "source": torch.tensor(source, dtype=torch.int64),
            "target": torch.tensor(target, dtype=torch.int64),
        }
