"""Reduction-factor padding/averaging and DTW durations, in numpy (the data side of the model contract).

Durations are integer counts of reduced target frames per reduced source frame. They always sum to the
reduced target length: DTW gives every target frame exactly one source frame, and `repair_durations`
fixes any sum that padding or editing broke instead of asserting.
"""

from __future__ import annotations

import numpy as np


def pad_to_multiple(x: np.ndarray, r: int, value: float | None = None) -> np.ndarray:
    """Pad axis 0 up to a multiple of r, with `value` (None: repeat the last row)."""
    extra = (-len(x)) % r
    if extra == 0:
        return x
    widths = [(0, extra)] + [(0, 0)] * (x.ndim - 1)
    if value is None:
        return np.pad(x, widths, mode="edge")
    return np.pad(x, widths, mode="constant", constant_values=value)


def reduce_mean(x: np.ndarray, r: int) -> np.ndarray:
    """Average each group of r rows (axis 0 must be a multiple of r)."""
    return x.reshape(len(x) // r, r, *x.shape[1:]).mean(axis=1)


def repair_durations(durations: np.ndarray, total: int) -> np.ndarray:
    """Non-negative integers with sum == total, changing the longest durations first."""
    d = np.maximum(np.asarray(durations, dtype=np.int64), 0).copy()
    if len(d) == 0:
        return d
    diff = int(total) - int(d.sum())
    if diff > 0:
        order = np.argsort(-d, kind="stable")
        np.add.at(d, order[np.arange(diff) % len(d)], 1)
    while diff < 0:
        i = int(np.argmax(d))
        take = min(int(d[i]), -diff, max(1, int(d[i]) // 2))
        d[i] -= take
        diff += take
    return d


def dtw_path(src: np.ndarray, tgt: np.ndarray) -> np.ndarray:
    """(L, 2) monotone path of (source frame, target frame) pairs from DTW on mean/variance-normalised
    frames (per-utterance normalisation removes most of the speaker's spectral tilt)."""
    import librosa

    def norm(x: np.ndarray) -> np.ndarray:
        return (x - x.mean(0)) / (x.std(0) + 1e-5)

    _, path = librosa.sequence.dtw(X=norm(src).T, Y=norm(tgt).T, metric="euclidean", backtrack=True)
    return np.ascontiguousarray(path[::-1])


def durations_from_path(path: np.ndarray, n_src: int, n_tgt: int) -> np.ndarray:
    """Each target frame counts once, for the first source frame the path pairs it with; then repaired."""
    owner = np.full(n_tgt, -1, dtype=np.int64)
    # the path is sorted by source frame, so reversed assignment leaves the first owner in place
    owner[path[::-1, 1]] = path[::-1, 0]
    owner = owner[owner >= 0]
    return repair_durations(np.bincount(owner, minlength=n_src)[:n_src], n_tgt)


def dtw_durations(src_reduced: np.ndarray, tgt_reduced: np.ndarray) -> np.ndarray:
    """Durations (n_src,) from DTW of reduced source frames to reduced target frames; sum == n_tgt."""
    return durations_from_path(dtw_path(src_reduced, tgt_reduced), len(src_reduced), len(tgt_reduced))


def alignment_problem(durations: np.ndarray, max_duration: int) -> str | None:
    """Why DTW's durations cannot be a training target (None when they can): one side more than 3x longer
    than the other (a different sentence, or most of one file silent), or one source frame stretched over
    more reduced target frames than the model may predict at inference."""
    n_src, n_tgt = len(durations), int(np.sum(durations))
    if n_src == 0 or n_tgt == 0:
        return "an empty side"
    if not 1 / 3 <= n_tgt / n_src <= 3:
        return f"lengths differ {max(n_tgt / n_src, n_src / n_tgt):.1f}x ({n_src} and {n_tgt} reduced frames)"
    longest = int(np.max(durations))
    if longest > max_duration:
        return f"one source frame takes {longest} target frames (model.max_duration is {max_duration})"
    return None
