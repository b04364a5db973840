"""Blend two conversions of one utterance: the second is put on the first's timing by DTW, then mixed in.

Two conversion systems that err differently (the wGMM and a joint-density GMM on builtin voices: NOTE.md,
session 18) convert better averaged than either alone. Their outputs have different timings (the wGMM predicts
durations, the GMM keeps the source's), and the wGMM's durations do not say where its decoder put each frame's
content, so the frames are matched by DTW on the spectral columns: both come from the source alone, so the
match needs no target.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from denoise_vc.errors import ConfigError
from denoise_vc.vc.metrics import dtw_pairs


def matching_frames(frames: np.ndarray, other: np.ndarray, columns: slice) -> np.ndarray:
    """(len(frames),) index of the first frame of `other` that DTW on `columns` pairs with each frame."""
    path = dtw_pairs(np.asarray(frames, np.float64)[:, columns], np.asarray(other, np.float64)[:, columns])
    index = np.zeros(len(frames), dtype=np.int64)
    index[path[::-1, 0]] = path[::-1, 1]  # written last to first, so each frame keeps its first match
    return index


def check_fusion_weight(weight: float) -> float:
    """The weight itself: a number in [0, 1] (0 keeps the first conversion's spectra, 1 takes the second's)."""
    number = isinstance(weight, numbers.Real) and not isinstance(weight, bool)
    if not (number and math.isfinite(weight) and 0.0 <= weight <= 1.0):
        raise ConfigError(f"fusion weight (--gmm-weight) must be a number in [0, 1], not {weight!r}")
    return float(weight)


def fuse_frames(frames: np.ndarray, other: np.ndarray, columns: slice, weight: float) -> np.ndarray:
    """`frames` with `columns` replaced by (1 - weight) x its own + weight x the matched frames of `other`;
    every other column (F0, voicing, aperiodicity, loudness) stays `frames`'s."""
    check_fusion_weight(weight)
    frames = np.asarray(frames, np.float64)
    other = np.asarray(other, np.float64)
    if frames.ndim != 2 or other.ndim != 2 or frames.shape[1] != other.shape[1] or not len(frames) or not len(other):
        raise ValueError(
            f"fusion needs two non-empty (frames, dims) arrays of one width, not {frames.shape} and {other.shape}"
        )
    out = frames.copy()
    if weight == 0.0:
        return out
    matched = other[matching_frames(frames, other, columns)]
    out[:, columns] = (1.0 - weight) * frames[:, columns] + weight * matched[:, columns]
    return out
