"""Shared fixtures: tiny configs that train in seconds on a CPU, on generated data only."""

from __future__ import annotations

import os

import pytest
import torch

# The networks here are tiny: a second intra-op thread mostly adds contention. Under pytest-xdist (pyproject's
# addopts) each worker process takes its share of the cores instead.
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // WORKERS)))

TINY = [
    "model.levels=4",
    "model.channels_interval=8",
    "data.segment_length=4096",
    "data.test_segment_length=8192",
    "data.items_per_epoch=32",
    "data.valid_items=8",
    "data.test_items=3",
    "data.batch_size=8",
    "data.builtin.utterances.train=4",
    "data.builtin.utterances.valid=2",
    "data.builtin.utterances.test=2",
    "data.builtin.utterance_s=2.0",
    "data.builtin.noise_s=4.0",
    "data.noise_kinds=[white,pink,hum]",
    "solver.epochs=2",
    "solver.progress=false",
    "loss=l1",
    "data.snr_db=null",  # one noise gain (data.gain) as these tests assume; tests/test_levels.py covers ranges
    "data.level_dbfs=null",
]


@pytest.fixture
def tiny_overrides(tmp_path):
    """Overrides for a seconds-long training run whose outputs land in a fresh temp folder."""
    return [f"run_dir={tmp_path / 'run'}", *TINY]
