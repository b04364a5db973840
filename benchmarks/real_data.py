"""The real recordings of ../shared/data, split once for training the shipped model and for scoring it.

Training speech: LibriSpeech train-clean-100 (137 speakers) and VCTK p225-p227, all CC BY 4.0. Test speech:
speakers never trained on: LibriSpeech dev-clean (5 speakers) and VCTK p228. LibriSpeech test-other is a
standard test set and is never trained on. Noise: the openly licensed recordings (noise_open, CC0 / CC BY),
split in time: training reads the first 80 % of each file, validation the next 10 %, the test mixtures only
the last 10 %. Out-of-domain test noise (never trained on by any model here): the first nine recordings
(noise/, several of unknown origin, so never used for a shipped model) and UrbanSound8K (CC BY-NC, experiments
only). Real room responses: rir/ (CC BY 4.0 / CC0).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
LIBRISPEECH = SHARED / "speech" / "librispeech"
VCTK = SHARED / "speech" / "vctk"
TRAIN_VCTK, TEST_VCTK = ("p225", "p226", "p227"), ("p228",)
NOISE_TRAIN_FRACTION, NOISE_VALID_FRACTION = 0.8, 0.1


def librispeech(subset: str) -> list[Path]:
    """Files of one LibriSpeech subset (train-clean-100, dev-clean, test-other), from provenance.tsv."""
    with open(LIBRISPEECH / "provenance.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return sorted(LIBRISPEECH / r["file"] for r in rows if subset in r["path_in_repo"].replace("_", "-"))


def vctk(speakers: tuple[str, ...]) -> list[Path]:
    return sorted(p for s in speakers for p in (VCTK / s).glob("*.wav"))


def training_speech() -> list[Path]:
    return librispeech("train-clean-100") + vctk(TRAIN_VCTK)


def test_speech() -> list[Path]:
    return librispeech("dev-clean") + vctk(TEST_VCTK)


def open_noises() -> list[Path]:
    return sorted((SHARED / "noise_open").glob("*.flac"))


def out_of_domain_noises() -> list[Path]:
    return sorted((SHARED / "noise").glob("*.wav")) + sorted((SHARED / "noise_noncommercial").glob("*.flac"))[::12]


def link_folder(files: list[Path], dest: Path) -> Path:
    """A folder of symbolic links to `files` (names made unique by their parent folder), replaced if present."""
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.iterdir():
        old.unlink()
    for f in files:
        os.symlink(f.resolve(), dest / f"{f.parent.name}_{f.name}")
    return dest


def train_stretch(x: np.ndarray) -> np.ndarray:
    """The first 80 % of a noise recording: what training reads (data.noise_split_by=time)."""
    return x[: int(round(NOISE_TRAIN_FRACTION * len(x)))]


def test_stretch(x: np.ndarray) -> np.ndarray:
    """The last 10 % of a noise recording: what no training or validation ever reads (data.noise_split_by=time)."""
    return x[len(x) - int(round((1.0 - NOISE_TRAIN_FRACTION - NOISE_VALID_FRACTION) * len(x))) :]
