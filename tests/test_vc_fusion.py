"""Fusing two conversions of one utterance (denoise_vc.vc.fusion): DTW placement, the blend, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from denoise_vc.errors import ConfigError
from denoise_vc.vc.fusion import fuse_frames, matching_frames

SPECTRAL = slice(1, 5)


def _utterance(frames: int = 40, dims: int = 7, seed: int = 0) -> np.ndarray:
    """Smooth, distinct spectral trajectories (so DTW has one right answer) and random other columns."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, frames)[:, None]
    x = rng.normal(size=(frames, dims))
    x[:, SPECTRAL] = np.cumsum(rng.normal(size=(frames, 4)), axis=0) + 5 * t * np.arange(1, 5)
    return x


def test_each_frame_is_matched_to_its_own_copy_in_a_time_stretched_other():
    frames = _utterance()
    stretched = np.repeat(frames, 2, axis=0)  # the other system spoke twice as slowly
    index = matching_frames(frames, stretched, SPECTRAL)
    assert np.array_equal(index, 2 * np.arange(len(frames)))
    fused = fuse_frames(frames, stretched, SPECTRAL, 1.0)
    assert np.allclose(fused, frames)


def test_the_blend_moves_only_the_spectral_columns_by_the_weight():
    frames = _utterance()
    other = _utterance(seed=1)
    other[:, SPECTRAL] = frames[:, SPECTRAL] + 0.2  # same timing, every spectral value a little higher
    assert np.array_equal(matching_frames(frames, other, SPECTRAL), np.arange(len(frames)))
    fused = fuse_frames(frames, other, SPECTRAL, 0.25)
    assert np.allclose(fused[:, SPECTRAL], frames[:, SPECTRAL] + 0.05)
    assert np.array_equal(np.delete(fused, np.s_[1:5], axis=1), np.delete(frames, np.s_[1:5], axis=1))
    assert np.array_equal(fuse_frames(frames, other, SPECTRAL, 0.0), frames)


@pytest.mark.parametrize("weight", [-0.1, 1.5, float("nan"), float("inf"), "0.5", None, True])
def test_a_weight_outside_0_1_is_refused_by_name(weight):
    frames = _utterance()
    with pytest.raises(ConfigError, match=r"fusion weight \(--gmm-weight\) must be a number in \[0, 1\], not"):
        fuse_frames(frames, frames, SPECTRAL, weight)


def test_arrays_of_different_widths_or_empty_are_refused():
    frames = _utterance()
    with pytest.raises(ValueError, match="of one width"):
        fuse_frames(frames, frames[:, :6], SPECTRAL, 0.5)
    with pytest.raises(ValueError, match="non-empty"):
        fuse_frames(frames, frames[:0], SPECTRAL, 0.5)
