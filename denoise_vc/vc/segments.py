"""Pause-delimited segments: one rule for training and inference.

A pause is a run of at least `min_silence_s` of frames whose energy is more than `threshold_db` below the
utterance's loudest frame; each internal pause is cut at its centre. Segments then live on the reduced
frame grid; a segment the reduction factor collapses simply disappears into its neighbour (merged). The
target side takes the source's boundaries through the durations, so both sides always have the same count.
"""

from __future__ import annotations

import numpy as np


def pause_segments(log_energy: np.ndarray, hop_s: float, min_silence_s: float, threshold_db: float) -> np.ndarray:
    """(frames,) segment index per frame, 0..S-1, from natural-log frame energies."""
    n = len(log_energy)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    db = np.asarray(log_energy, dtype=np.float64) * (20.0 / np.log(10.0))
    silent = db < db.max() + threshold_db
    min_frames = max(1, int(np.ceil(min_silence_s / hop_s)))
    cuts = np.zeros(n, dtype=np.int64)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], silent.astype(np.int8), [0]])))
    for start, end in zip(edges[::2], edges[1::2]):
        if end - start >= min_frames and start > 0 and end < n:  # leading/trailing silence cuts nothing
            cuts[(start + end) // 2] = 1
    return np.cumsum(cuts)


def relabel(ids: np.ndarray) -> np.ndarray:
    """Consecutive labels 0..S-1 in order of appearance (ids must be non-decreasing)."""
    if len(ids) == 0:
        return ids.astype(np.int64)
    return np.concatenate([[0], np.cumsum(np.diff(ids) != 0)]).astype(np.int64)


def reduce_segments(frame_ids: np.ndarray, r: int, n_reduced: int) -> np.ndarray:
    """(n_reduced,) segment index per reduced frame: the segment of its first frame; collapsed ones merge."""
    ids = np.asarray(frame_ids, dtype=np.int64)
    if len(ids) == 0:
        return np.zeros(n_reduced, dtype=np.int64)
    picks = np.minimum(np.arange(n_reduced) * r, len(ids) - 1)
    return relabel(ids[picks])


def match_target_segments(src_ids: np.ndarray, durations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(source ids, target ids) with the same segment count: target frames inherit the segment of the
    source frame they were aligned to; a source segment that received no target frame merges with the
    segment before it (or after it, for the first one)."""
    src_ids = np.asarray(src_ids, dtype=np.int64)
    durations = np.asarray(durations, dtype=np.int64)
    if len(src_ids) == 0:
        return src_ids, np.zeros(int(durations.sum()), dtype=np.int64)
    n_seg = int(src_ids.max()) + 1
    received = np.bincount(src_ids, weights=durations, minlength=n_seg) > 0
    if received.any():
        kept = np.flatnonzero(received)
        # nearest kept segment at or before each segment, else the first kept one
        before = np.searchsorted(kept, np.arange(n_seg), side="right") - 1
        mapping = kept[np.maximum(before, 0)]
        src_ids = relabel(mapping[src_ids])
    else:
        src_ids = np.zeros_like(src_ids)
    return src_ids, np.repeat(src_ids, durations)
