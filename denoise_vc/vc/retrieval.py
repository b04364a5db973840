"""Retrieval (feature-index) conversion, as RVC does with HuBERT features and kNN-VC with WavLM frames.

No pretrained self-supervised model can be downloaded here, so the features are the VC model's own spectral
frames in its target-normalised space: the mel-cepstrum c1..c_order of `vocoder=world` (the log-mel bands of
Griffin-Lim), each dimension normalised with the checkpoint's *target* statistics. `vc-index` stores the
target speaker's real frames (speech only) in a faiss index; at conversion each converted frame is replaced by
    (1 - R) * converted + R * (inverse-distance-weighted mean of its k nearest target frames)
so R = 0 keeps the model's output and R = 1 uses retrieved target frames only. Retrieval pulls over-smoothed
predicted spectra back onto frames the target speaker really produced. The other columns (c0 loudness,
aperiodicity, F0, voicing) stay the model's.

An index file `NAME.index` (faiss) travels with `NAME.index.json`: the vocoder, the feature columns, a
fingerprint of the checkpoint's target statistics (an index is refused by a model it was not built for), and
what was indexed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from denoise_vc.errors import CheckpointError, ConfigError
from denoise_vc.paths import write_atomically, write_json
from denoise_vc.vc.features import FeatureSettings, log_energy
from denoise_vc.vc.vocoders import normalised_spectra, spectral_columns

NEIGHBOURS = 4  # kNN-VC and RVC both average a handful of neighbours
SPEECH_DB = 40.0  # frames this far below an utterance's loudest frame are pauses: not indexed


def stats_fingerprint(target_stats: dict[str, Any]) -> str:
    """Identity of the normalisation an index lives in: the checkpoint's target statistics."""
    text = json.dumps([target_stats["mel_mean"], target_stats["mel_std"]])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def speech_rows(wave: np.ndarray, fs: FeatureSettings, frames: int) -> np.ndarray:
    """(frames,) bool: frames within SPEECH_DB of the utterance's loudest frame."""
    db = log_energy(wave, fs)[:frames] * (20.0 / np.log(10.0))
    keep = np.zeros(frames, dtype=bool)
    keep[: len(db)] = db > db.max() - SPEECH_DB
    return keep


@dataclass
class TargetIndex:
    """A faiss index of one target speaker's frames, with what it was built for."""

    index: Any  # faiss.Index
    meta: dict[str, Any]

    @staticmethod
    def build(vectors: np.ndarray, meta: dict[str, Any], where: str = "the target recordings") -> TargetIndex:
        import faiss

        if len(vectors) < NEIGHBOURS:
            raise ConfigError(f"{where}: only {len(vectors)} speech frames; an index needs at least {NEIGHBOURS}")
        index = faiss.IndexFlatL2(vectors.shape[1])  # exact search: minutes to hours of frames fit in memory
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return TargetIndex(index, meta | {"frames": int(index.ntotal), "dims": int(vectors.shape[1])})

    def save(self, path: str | Path) -> Path:
        import faiss

        path = Path(path)
        write_atomically(path, lambda tmp: faiss.write_index(self.index, str(tmp)), ".index")
        write_json(f"{path}.json", self.meta)
        return path

    @staticmethod
    def load(path: str | Path) -> TargetIndex:
        import faiss

        path, sidecar = Path(path), Path(f"{path}.json")
        if not path.is_file() or not sidecar.is_file():
            raise ConfigError(f"{path}: index not found (vc-index writes NAME.index and NAME.index.json)")
        try:
            index = faiss.read_index(str(path))
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except (RuntimeError, ValueError) as exc:
            raise ConfigError(f"{path}: not a readable vc-index file ({' '.join(str(exc).split())[:120]})") from None
        return TargetIndex(index, meta)

    def check_fits(self, fs: FeatureSettings, target_stats: dict[str, Any], checkpoint: str | Path) -> None:
        """Refuse an index built for another model (other vocoder, features or target statistics)."""
        mine = {"vocoder": fs.vocoder, "stats": stats_fingerprint(target_stats)}
        theirs = {key: self.meta.get(key) for key in mine}
        if mine != theirs:
            raise CheckpointError(
                f"{checkpoint}: the index was built with another VC model ({theirs}, this one {mine}); "
                "run vc-index with this checkpoint"
            )

    def blend(self, vectors: np.ndarray, rate: float, k: int = NEIGHBOURS) -> np.ndarray:
        """(1 - rate) * vectors + rate * inverse-squared-distance-weighted mean of each one's k neighbours."""
        if rate <= 0 or len(vectors) == 0:
            return vectors
        queries = np.ascontiguousarray(vectors, dtype=np.float32)
        distances, ids = self.index.search(queries, k)
        neighbours = self.index.reconstruct_batch(ids.reshape(-1)).reshape(len(queries), k, -1)
        weights = np.square(1.0 / np.maximum(distances, 1e-9))  # faiss gives squared L2; RVC's (1 / score)^2
        weights /= weights.sum(axis=1, keepdims=True)
        retrieved = np.einsum("nk,nkd->nd", weights, neighbours)
        return ((1.0 - rate) * queries + rate * retrieved).astype(np.float32)


def check_index_rate(rate: float) -> float:
    if not np.isfinite(rate) or not 0.0 <= rate <= 1.0:
        raise ConfigError(f"--index-rate {rate}: must be in [0, 1] (0 keeps the model's frames, 1 uses retrieved)")
    return float(rate)


def build_target_index(converter, files: list[Path], progress: bool = False) -> TargetIndex:
    """The index of a target speaker's recordings for one VC checkpoint (a `pipeline.Converter`)."""
    from tqdm import tqdm

    from denoise_vc.audio import load_audio
    from denoise_vc.vc.features import clean_wave
    from denoise_vc.vc.vocoders import acoustic_frames

    fs, target_stats = converter.fs, converter.stats["target"]
    vectors, seconds = [], 0.0
    for path in tqdm(files, desc="vc-index", disable=None if progress else True, leave=False):
        wave, rate = load_audio(path)
        x = clean_wave(wave[0], rate, fs)
        frames = acoustic_frames(x, fs)
        vectors.append(normalised_spectra(frames, target_stats, fs)[speech_rows(x, fs, len(frames))])
        seconds += len(x) / fs.sample_rate
    meta = {
        "vocoder": fs.vocoder,
        "stats": stats_fingerprint(target_stats),
        "features": f"target-normalised spectral columns {spectral_columns(fs)} of the {fs.vocoder} frames",
        "files": len(files),
        "seconds": round(seconds, 2),
    }
    where = str(files[0]) if len(files) == 1 else f"{len(files)} target recordings"
    return TargetIndex.build(np.concatenate(vectors) if vectors else np.zeros((0, 1), np.float32), meta, where)
