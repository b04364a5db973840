"""`vc-prepare`: parallel pairs -> cached per-utterance features, durations, segments, and statistics.

With `data.front_end.denoiser` set, the train and valid pairs come twice or more: also with their source
noisy-then-denoised (`denoise_vc.vc.front_end`), so the model learns the front-end's residue.

Layout of `data.prepared_dir`: `features/<name>.npz` per pair, `stats.json` (normalisation statistics of the
training split, per speaker: `source` and `target`), `manifest.json` (names, splits, and a fingerprint of every
setting that shapes the features; a cached file is reused only while the fingerprint matches). Frame-level
arrays are padded to a multiple of the reduction factor r (log-mel with the log floor; WORLD frames, F0 and
energy by repeating the last frame).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from denoise_vc.config import to_plain
from denoise_vc.errors import AudioFileError, ConfigError
from denoise_vc.paths import write_atomically, write_json
from denoise_vc.vc.align import alignment_problem, dtw_durations, pad_to_multiple, reduce_mean
from denoise_vc.vc.corpus import Pair, build_pairs
from denoise_vc.vc.features import FeatureSettings, clean_wave, extract
from denoise_vc.vc.front_end import checkpoint_digest, front_end_settings, with_front_end
from denoise_vc.vc.segments import match_target_segments, pause_segments, reduce_segments
from denoise_vc.vc.vocoders import pad_value, spectral_part


def segment_settings(data_cfg) -> tuple[float, float]:
    return float(data_cfg.min_silence_s), float(data_cfg.silence_db)


def side_features(wave: np.ndarray, rate: int, fs: FeatureSettings, r: int) -> dict[str, np.ndarray]:
    """Cleaned-waveform features padded to a multiple of r (what training and inference both use)."""
    feats = extract(clean_wave(wave, rate, fs), fs)
    return {
        "mel": pad_to_multiple(feats["mel"], r, pad_value(fs)),
        "lf0": pad_to_multiple(feats["lf0"], r),
        "voiced": pad_to_multiple(feats["voiced"], r, 0),
        "energy": pad_to_multiple(feats["energy"], r),
        "frames": np.int64(len(feats["mel"])),
    }


def source_segments(energy: np.ndarray, frames: int, fs: FeatureSettings, data_cfg, r: int) -> np.ndarray:
    """Reduced-frame segment ids of one utterance from its (unpadded) frame energies."""
    min_silence_s, silence_db = segment_settings(data_cfg)
    ids = pause_segments(energy[:frames], fs.hop_s, min_silence_s, silence_db)
    return reduce_segments(ids, r, len(energy) // r)


def pair_features(pair: Pair, fs: FeatureSettings, data_cfg, r: int) -> dict[str, np.ndarray]:
    src = side_features(*pair.source(), fs, r)
    tgt = side_features(*pair.target(), fs, r)
    src_spec, tgt_spec = spectral_part(src["mel"], fs), spectral_part(tgt["mel"], fs)
    durations = dtw_durations(reduce_mean(src_spec, r), reduce_mean(tgt_spec, r))
    src_seg = source_segments(src["energy"], int(src["frames"]), fs, data_cfg, r)
    src_seg, tgt_seg = match_target_segments(src_seg, durations)
    out = {f"src_{k}": v for k, v in src.items()} | {f"tgt_{k}": v for k, v in tgt.items()}
    return out | {"durations": durations, "src_segment": src_seg, "tgt_segment": tgt_seg}


def fingerprint(cfg) -> str:
    """Hash of everything that changes the cached features."""
    data = to_plain(cfg.data)
    data.pop("prepared_dir", None)
    for key in ("batch_size", "group_size", "num_workers"):
        data.pop(key, None)
    stamp: dict[str, Any] = {"data": data, "seed": int(cfg.seed)}
    settings = front_end_settings(cfg.data)
    if settings is not None:  # the denoised copies follow the front-end's weights, not only its name
        stamp["front_end_weights"] = checkpoint_digest(settings[0])
    text = json.dumps(stamp, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    write_atomically(path, lambda tmp: np.savez(tmp, **arrays), ".npz")


def _moments(arrays: list[np.ndarray]) -> tuple[list[float] | float, list[float] | float]:
    stacked = np.concatenate(arrays, axis=0).astype(np.float64)
    mean, std = stacked.mean(axis=0), np.maximum(stacked.std(axis=0), 1e-3)
    return mean.tolist(), std.tolist()


def side_stats(items: list[dict[str, np.ndarray]], side: str) -> dict[str, Any]:
    """Per-dimension frame and scalar log-F0 (voiced frames) / energy statistics of one speaker's items."""
    mels, lf0s, energies = [], [], []
    for item in items:
        n = int(item[f"{side}_frames"])
        mels.append(item[f"{side}_mel"][:n])
        voiced = item[f"{side}_voiced"][:n].astype(bool)
        lf0s.append(item[f"{side}_lf0"][:n][voiced])
        energies.append(item[f"{side}_energy"][:n])
    mel_mean, mel_std = _moments(mels)
    lf0 = np.concatenate(lf0s) if lf0s else np.zeros(0)
    if len(lf0) < 2:
        raise ConfigError(f"the training split's {side} speaker has (almost) no voiced frames: cannot normalise log-F0")
    energy_mean, energy_std = _moments(energies)
    return {
        "mel_mean": mel_mean,
        "mel_std": mel_std,
        "lf0_mean": float(lf0.mean()),
        "lf0_std": float(max(lf0.std(), 1e-3)),
        "energy_mean": float(energy_mean),
        "energy_std": float(energy_std),
    }


def compute_stats(items: list[dict[str, np.ndarray]]) -> dict[str, Any]:
    """Normalisation statistics of each speaker: the source side normalises what the model reads, the target
    side what it predicts (and de-normalises its output)."""
    return {"source": side_stats(items, "src"), "target": side_stats(items, "tgt")}


def run_pairs(cfg) -> list[Pair]:
    """Every pair a VC run trains, validates and tests on: the corpus's, plus with `data.front_end` the
    noisy-then-denoised copies of its train and valid sources (what `vc-gmm` fits a robust GMM on, too)."""
    seed = int(cfg.seed)
    return with_front_end(build_pairs(cfg.data, seed), cfg.data, seed, str(cfg.get("device", "cpu")))


def prepare(cfg, progress: bool = True) -> dict[str, Any]:
    """Compute (or reuse) every pair's features; returns the manifest (names per split, counts, stats)."""
    from tqdm import tqdm

    data = cfg.data
    fs = FeatureSettings.from_config(data)
    r = int(data.reduction_factor)
    out = Path(str(data.prepared_dir))
    pairs = run_pairs(cfg)
    if not pairs:
        raise ConfigError("no parallel pairs to prepare")
    if not any(p.split == "train" for p in pairs):
        raise ConfigError(f"only {len(pairs)} pairs: none left for training after the valid/test split")
    stamp = fingerprint(cfg)
    manifest_path = out / "manifest.json"
    old = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    reuse = old.get("fingerprint") == stamp
    skipped: dict[str, str] = dict(old.get("skipped", {})) if reuse else {}
    max_duration = int(cfg.model.get("max_duration", 20)) if "model" in cfg else 20
    written: list[Path] = []
    computed = 0
    train_items = []
    try:
        for pair in tqdm(pairs, desc="vc-prepare", disable=None if progress else True, leave=False):
            path = out / "features" / f"{pair.name}.npz"
            if pair.name in skipped:
                continue
            if reuse and path.exists():
                if pair.split == "train":
                    with np.load(path) as cached:
                        train_items.append({k: cached[k] for k in cached.files})
                continue
            try:
                arrays = pair_features(pair, fs, data, r)
            except ValueError as exc:
                where = pair.source_path or pair.name
                raise AudioFileError(f"{where}: cannot compute features ({exc})") from None
            problem = alignment_problem(arrays["durations"], max_duration)
            if problem:  # reported by name and left out of every split
                skipped[pair.name] = problem
                print(f"vc-prepare: skipped {pair.name}: DTW cannot align it ({problem})", file=sys.stderr)
                continue
            _save_npz(path, arrays)
            written.append(path)
            computed += 1
            if pair.split == "train":
                train_items.append(arrays)
        if not train_items:
            reasons = "; ".join(f"{name}: {problem}" for name, problem in skipped.items())
            raise ConfigError(f"no training pair could be aligned: {reasons}")
        stats = compute_stats(train_items)
    except BaseException:
        for path in written:  # no half-prepared corpus is left behind
            path.unlink(missing_ok=True)
        raise
    kept = [p for p in pairs if p.name not in skipped]
    manifest = {
        "fingerprint": stamp,
        "splits": {s: [p.name for p in kept if p.split == s] for s in ("train", "valid", "test")},
        "skipped": skipped,
        "sources": {p.name: str(p.source_path) for p in pairs if p.source_path},
        "targets": {p.name: str(p.target_path) for p in pairs if p.target_path},
        "computed": computed,
        "reused": len(kept) - computed,
    }
    write_json(out / "stats.json", stats)
    write_json(manifest_path, manifest)
    return manifest | {"stats": stats}
