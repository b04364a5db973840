"""Interrupted and failing runs lose nothing: SIGKILL mid-training, a crash mid-checkpoint-write."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from denoise_vc.checkpoint import load_checkpoint, save_checkpoint

RUN = [
    "model.levels=4",
    "model.channels_interval=8",
    "data.segment_length=4096",
    "data.items_per_epoch=64",
    "data.valid_items=8",
    "data.batch_size=8",
    "data.builtin.utterances.train=4",
    "data.builtin.utterances.valid=2",
    "data.builtin.utterance_s=2.0",
    "data.builtin.noise_s=4.0",
    "data.noise_kinds=[white,pink,hum]",
    "solver.epochs=4",
    "solver.progress=false",
    "solver.plot_every=0",
    "loss=l1",
]


def train(run_dir, wait=True):
    cmd = [sys.executable, "-m", "denoise_vc.cli", "train", f"run_dir={run_dir}", *RUN]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if wait:
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_sigkill_at_a_random_point_resumes_to_the_same_result(tmp_path):
    straight = train(tmp_path / "straight")
    assert straight.returncode == 0, straight.stderr
    victim = tmp_path / "killed"
    proc = train(victim, wait=False)
    deadline = time.monotonic() + 300
    while not (victim / "last.pth").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(random.Random(os.getpid()).uniform(0.0, 1.5))  # somewhere in a later epoch or a later write
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert load_checkpoint(victim / "last.pth")["meta"]["epoch"] >= 1  # what was on disk is loadable
    resumed = train(victim)
    assert resumed.returncode == 0, resumed.stderr
    a = json.loads((tmp_path / "straight" / "history.json").read_text())
    b = json.loads((victim / "history.json").read_text())
    assert [r["epoch"] for r in b] == [1, 2, 3, 4]
    for key in ("train_loss", "valid_loss", "valid_si_sdr"):
        assert [r[key] for r in b] == pytest.approx([r[key] for r in a], abs=1e-6)
    wa = load_checkpoint(tmp_path / "straight" / "last.pth")["state_dict"]
    wb = load_checkpoint(victim / "last.pth")["state_dict"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not [p for p in victim.iterdir() if p.name.startswith(".")]  # no temp files left behind


def test_a_write_interrupted_mid_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    path = tmp_path / "last.pth"
    save_checkpoint({"kind": "denoiser", "state_dict": {"w": torch.ones(3)}, "meta": {"epoch": 1}}, path)

    def dies_half_way(obj, handle, *args, **kwargs):
        handle.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"kind": "denoiser", "state_dict": {"w": torch.zeros(3)}, "meta": {"epoch": 2}}, path)
    monkeypatch.undo()
    survivor = load_checkpoint(path)
    assert survivor["meta"]["epoch"] == 1 and torch.equal(survivor["state_dict"]["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pth"]
