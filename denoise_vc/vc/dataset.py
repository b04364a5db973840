"""Training batches in the acoustic model's contract: normalised, r-averaged, zero-padded, length-bucketed."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from denoise_vc.errors import ConfigError
from denoise_vc.vc.align import reduce_mean


def normalise_side(arrays: dict[str, np.ndarray], stats: dict[str, Any], r: int) -> dict[str, np.ndarray]:
    """mel (T, frame dims), pitch and energy (T/r,) normalised with one speaker's statistics (stats["source"]
    or stats["target"]); an utterance without voiced frames (NaN log-F0) gets the mean pitch."""
    mel = (arrays["mel"] - np.asarray(stats["mel_mean"], np.float32)) / np.asarray(stats["mel_std"], np.float32)
    pitch = (reduce_mean(arrays["lf0"].astype(np.float64), r) - stats["lf0_mean"]) / stats["lf0_std"]
    energy = (reduce_mean(arrays["energy"].astype(np.float64), r) - stats["energy_mean"]) / stats["energy_std"]
    return {
        "mel": mel.astype(np.float32),
        "pitch": np.nan_to_num(pitch, nan=0.0).astype(np.float32),
        "energy": energy.astype(np.float32),
    }


def denormalise_frames(frames: np.ndarray, stats: dict[str, Any]) -> np.ndarray:
    """Model-space frames back to the vocoder's units with one speaker's statistics."""
    return frames * np.asarray(stats["mel_std"], np.float32) + np.asarray(stats["mel_mean"], np.float32)


class PairSet(Dataset):
    """Cached pairs of one split, loaded once into memory (the corpora here are small)."""

    def __init__(self, prepared_dir: str | Path, names: Sequence[str], stats: dict[str, Any], r: int) -> None:
        self.items: list[dict[str, torch.Tensor]] = []
        self.names = list(names)
        for name in names:
            path = Path(prepared_dir) / "features" / f"{name}.npz"
            if not path.exists():
                raise ConfigError(f"{path}: cached features missing; run `denoise-vc vc-prepare` again")
            with np.load(path) as z:
                src = normalise_side({k: z[f"src_{k}"] for k in ("mel", "lf0", "energy")}, stats["source"], r)
                tgt = normalise_side({k: z[f"tgt_{k}"] for k in ("mel", "lf0", "energy")}, stats["target"], r)
                item = {f"src_{k}": torch.from_numpy(v) for k, v in src.items()}
                item |= {f"tgt_{k}": torch.from_numpy(v) for k, v in tgt.items()}
                item["durations"] = torch.from_numpy(z["durations"].astype(np.int64))
                item["src_segment"] = torch.from_numpy(z["src_segment"].astype(np.int64))
                item["tgt_segment"] = torch.from_numpy(z["tgt_segment"].astype(np.int64))
            self.items.append(item)
        self.r = r

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.items[index]

    def lengths(self) -> list[int]:
        return [len(item["src_pitch"]) + len(item["tgt_pitch"]) for item in self.items]


def _pad(tensors: list[torch.Tensor], value: float = 0.0) -> torch.Tensor:
    return torch.nn.utils.rnn.pad_sequence(tensors, batch_first=True, padding_value=value)


def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The batch dict of the model contract (zero padding; segments -1 on padding)."""
    batch = {
        "src_mel": _pad([i["src_mel"] for i in items]),
        "src_pitch": _pad([i["src_pitch"] for i in items]),
        "src_energy": _pad([i["src_energy"] for i in items]),
        "src_len": torch.tensor([len(i["src_pitch"]) for i in items], dtype=torch.int64),
        "tgt_mel": _pad([i["tgt_mel"] for i in items]),
        "tgt_pitch": _pad([i["tgt_pitch"] for i in items]),
        "tgt_energy": _pad([i["tgt_energy"] for i in items]),
        "tgt_len": torch.tensor([len(i["tgt_pitch"]) for i in items], dtype=torch.int64),
        "durations": _pad([i["durations"] for i in items]),
        "src_segment": _pad([i["src_segment"] for i in items], -1),
        "tgt_segment": _pad([i["tgt_segment"] for i in items], -1),
        "n_segments": torch.tensor([int(i["src_segment"].max()) + 1 for i in items], dtype=torch.int64),
    }
    return batch


class BucketSampler(Sampler[list[int]]):
    """Batches of similar length: shuffle, cut into groups of batch_size x group_size, sort each group by
    length, split it into batches, shuffle the batches. Seeded by (seed, epoch) so resume reproduces it."""

    def __init__(self, lengths: Sequence[int], batch_size: int, group_size: int, seed: int) -> None:
        if batch_size < 1 or group_size < 1:
            raise ConfigError(f"data.batch_size ({batch_size}) and data.group_size ({group_size}) must be >= 1")
        self.lengths = np.asarray(lengths)
        self.batch_size, self.group_size, self.seed = batch_size, group_size, seed
        self.epoch = 0

    def _batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.lengths))
        size = self.batch_size * self.group_size
        batches = []
        for start in range(0, len(order), size):
            group = order[start : start + size]
            group = group[np.argsort(self.lengths[group], kind="stable")]
            batches += [group[i : i + self.batch_size].tolist() for i in range(0, len(group), self.batch_size)]
        return [batches[i] for i in rng.permutation(len(batches))]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        size = self.batch_size * self.group_size
        full, rest = divmod(len(self.lengths), size)
        return full * self.group_size + -(-rest // self.batch_size)
