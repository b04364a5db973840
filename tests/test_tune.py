"""Ray Tune sweeps on generated data with seconds-long trials (CPU only; logical GPUs where needed)."""

import csv
import json
from pathlib import Path

import faults
import pytest
import torch

from denoise_vc.cli import main
from denoise_vc.config import compose_config, load_yaml
from denoise_vc.errors import ConfigError
from denoise_vc.tune import parse_distribution, search_space

SWEEP = [
    "tune=small",
    "solver.epochs=2",
    "model.channels_interval=4",
    "data.segment_length=2048",
    "data.test_segment_length=4096",
    "data.items_per_epoch=16",
    "data.valid_items=4",
    "data.test_items=2",
    "data.builtin.utterances.train=2",
    "data.builtin.utterances.valid=1",
    "data.builtin.utterances.test=1",
    "data.builtin.utterance_s=1.0",
    "data.builtin.noise_s=2.0",
    "data.noise_kinds=[white,pink]",
    "loss=l1",
    "solver.plot_every=0",
    "tune.resources.cpu=1",
]


def trials(run_dir: Path) -> list[dict]:
    with open(run_dir / "trials.csv") as handle:
        return list(csv.DictReader(handle))


def test_distributions_parse_and_bad_ones_are_refused():
    from ray.tune.search.sample import Categorical, Float

    assert isinstance(parse_distribution("a", "loguniform(1e-4, 3e-3)"), Float)
    assert isinstance(parse_distribution("a", "choice([2, 4, 6])"), Categorical)
    assert parse_distribution("a", 5) == 5
    for bad in ("gaussian(0, 1)", "uniform(0, x)", "not a distribution"):
        with pytest.raises(ConfigError, match="tune.space.a"):
            parse_distribution("a", bad)


def test_space_keys_must_exist_in_the_run_config():
    assert set(search_space(compose_config(["tune=default"]))) == {
        "solver.lr",
        "model.channels_interval",
        "loss.peak_weight",
    }
    with pytest.raises(ConfigError, match="loss.peak_weight"):
        search_space(compose_config(["tune=default", "loss=l1"]))


def test_asha_sweep_writes_table_best_config_and_checkpoint(tmp_path):
    run = tmp_path / "sweep"
    assert main(["tune", f"run_dir={run}", *SWEEP, "tune.num_samples=4"]) == 0
    rows = trials(run)
    assert len(rows) == 4 and all(r["status"] == "ok" for r in rows)
    scores = [float(r["best_valid_si_sdr"]) for r in rows]
    assert (run / "best.pth").exists() and (run / "ray" / "sweep").is_dir()
    best = load_yaml(run / "best_config.yaml")
    best_row = max(rows, key=lambda r: float(r["best_valid_si_sdr"]))
    assert best.solver.lr == pytest.approx(float(best_row["solver.lr"]))
    assert best.model.levels == int(best_row["model.levels"])
    ckpt = torch.load(run / "best.pth", weights_only=True)
    assert ckpt["meta"]["metrics"]["si_sdr"] == pytest.approx(max(scores), abs=1e-4)
    assert ckpt["model"]["args"]["levels"] == best.model.levels

    # the sweep's product is usable as is: denoise with best.pth, retrain from best_config.yaml
    import soundfile as sf

    from denoise_vc.data.synth import speech_like

    sf.write(tmp_path / "in.wav", speech_like(0.5, 16000, 1), 16000)
    assert (
        main(["denoise", str(tmp_path / "in.wav"), "-o", str(tmp_path / "out"), "--checkpoint", str(run / "best.pth")])
        == 0
    )
    assert sf.info(tmp_path / "out" / "in.wav").frames == 8000
    assert (
        main(["train", "--config", str(run / "best_config.yaml"), f"run_dir={tmp_path / 'again'}", "solver.epochs=1"])
        == 0
    )
    assert json.loads((tmp_path / "again" / "history.json").read_text())[0]["epoch"] == 1


def test_a_crashed_trial_is_completed_by_resume(tmp_path, capsys, monkeypatch):
    run = tmp_path / "crash"
    marker = tmp_path / "failed-once"
    args = [
        "tune",
        f"run_dir={run}",
        *SWEEP,
        "tune.num_samples=2",
        "tune.scheduler=fifo",
        faults.arm(monkeypatch, 1, marker),
    ]
    assert main(args) == 3
    assert marker.exists()
    first = trials(run)
    assert [r["status"] for r in first].count("error") == 1
    assert "tune.resume=true" in capsys.readouterr().out
    assert main([*args, "tune.resume=true"]) == 0
    after = trials(run)
    assert all(r["status"] == "ok" and r["epochs"] == "2" for r in after)
    crashed = next(r for r in first if r["status"] == "error")
    history = json.loads((Path(crashed["path"]) / "run" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]  # resumed after epoch 1, not restarted


def test_fractional_gpus_pack_four_trials_onto_two_logical_gpus(tmp_path):
    run = tmp_path / "pack"
    assert (
        main(
            [
                "tune",
                f"run_dir={run}",
                *SWEEP,
                "tune.num_samples=4",
                "tune.scheduler=fifo",
                "tune.num_gpus=2",
                "tune.resources.gpu=0.5",
                "tune.resources.cpu=0.25",
            ]
        )
        == 0
    )
    rows = trials(run)
    assert len(rows) == 4
    reports = [[json.loads(line) for line in open(Path(r["path"]) / "result.json")] for r in rows]
    starts = [r[0]["started_at"] for r in reports]
    ends = [r[-1]["timestamp"] for r in reports]
    assert max(starts) < min(ends)  # all four were running at the same time


def test_asking_for_a_gpu_without_one_fails_at_once(tmp_path, capsys):
    assert main(["tune", f"run_dir={tmp_path / 'gpu'}", *SWEEP, "tune.resources.gpu=1", "tune.num_gpus=0"]) == 1
    err = capsys.readouterr().err
    assert "tune.resources.gpu=1 per trial, but this machine has 0 GPUs" in err
