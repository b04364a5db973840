import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from denoise_vc.checkpoint import load_checkpoint, load_model, save_checkpoint
from denoise_vc.config import compose_config, resolve_paths
from denoise_vc.errors import CheckpointError, ConfigError, TrainingError
from denoise_vc.pretrained import resolve_checkpoint
from denoise_vc.solvers.factory import build_solver


def make_solver(overrides):
    return build_solver(resolve_paths(compose_config(overrides)))


def test_checkpoints_load_with_weights_only_and_rebuild_the_model(tiny_overrides, tmp_path):
    solver = make_solver(tiny_overrides + ["solver.epochs=1"])
    solver.fit()
    for name in ("best.pth", "last.pth"):
        raw = torch.load(solver.run_dir / name, weights_only=True)
        assert raw["kind"] == "denoiser" and raw["model"]["name"] == "wave_unet"
        assert raw["meta"]["sample_rate"] == 16000
    model, _ = load_model(solver.run_dir / "best.pth")
    x = torch.randn(1, 1, 3000)
    solver.model.eval()
    with torch.no_grad():
        assert torch.allclose(model(x), solver.model(x), atol=1e-6)
    files = {p.name for p in solver.run_dir.iterdir()}
    assert {"best.pth", "last.pth", "config.yaml", "history.json", "history.csv", "plots", "samples"} <= files
    assert not any(name.endswith(".tmp") for name in files)


def test_checkpoint_of_the_wrong_kind_or_with_code_is_refused(tmp_path):
    save_checkpoint({"kind": "vc", "state_dict": {}}, tmp_path / "vc.pth")
    with pytest.raises(CheckpointError, match="is a 'vc' checkpoint, expected 'denoiser'"):
        load_checkpoint(tmp_path / "vc.pth", kind="denoiser")

    class Exploit:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(tmp_path / "evil.pth", "wb") as handle:
        torch.save({"kind": "denoiser", "state_dict": {}, "payload": Exploit()}, handle, pickle_module=pickle)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(tmp_path / "evil.pth")
    (tmp_path / "cut.pth").write_bytes((tmp_path / "vc.pth").read_bytes()[:50])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(tmp_path / "cut.pth")


def test_interrupted_run_resumes_to_the_same_result(tiny_overrides, tmp_path, monkeypatch):
    straight = make_solver([f"run_dir={tmp_path / 'a'}", *tiny_overrides[1:], "solver.epochs=3"])
    straight.fit()

    interrupted = make_solver([f"run_dir={tmp_path / 'b'}", *tiny_overrides[1:], "solver.epochs=3"])
    calls = {"n": 0}
    original = type(interrupted).train_loss

    def crash_in_third_epoch(self, batch):
        calls["n"] += 1
        if calls["n"] == 2 * 4 + 2:  # 4 batches per epoch: die inside epoch 3
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(type(interrupted), "train_loss", crash_in_third_epoch)
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit()
    monkeypatch.setattr(type(interrupted), "train_loss", original)
    assert load_checkpoint(tmp_path / "b" / "last.pth")["meta"]["epoch"] == 2

    resumed = make_solver([f"run_dir={tmp_path / 'b'}", *tiny_overrides[1:], "solver.epochs=3"])
    resumed.fit()
    a = load_checkpoint(tmp_path / "a" / "last.pth")
    b = load_checkpoint(tmp_path / "b" / "last.pth")
    for key in a["state_dict"]:
        assert torch.allclose(a["state_dict"][key].float(), b["state_dict"][key].float(), atol=1e-6), key
    ha = json.loads((tmp_path / "a" / "history.json").read_text())
    hb = json.loads((tmp_path / "b" / "history.json").read_text())
    assert [r["valid_si_sdr"] for r in ha] == pytest.approx([r["valid_si_sdr"] for r in hb], abs=1e-5)


def test_best_checkpoint_is_judged_at_the_target_gain(tiny_overrides):
    """Epoch 1 trains at gain 0 (an identity map scores very well there); validation must ignore that."""
    solver = make_solver(
        tiny_overrides
        + [
            "solver.epochs=3",
            "curriculum=stepped",
            "curriculum.gain.milestones=[0,1]",
            "curriculum.gain.values=[0.0,1.0]",
            "data.gain=1.0",
        ]
    )
    solver.fit()
    history = json.loads((solver.run_dir / "history.json").read_text())
    assert [row["gain"] for row in history] == [0.0, 1.0, 1.0]
    noisy_in = [row["valid_si_sdr"] - row["valid_si_sdr_i"] for row in history]
    assert max(noisy_in) - min(noisy_in) < 1e-3  # the same target-level inputs every epoch
    assert noisy_in[0] < 5.0  # ... and that level is the hard one, not gain 0
    best = load_checkpoint(solver.run_dir / "best.pth")
    assert best["meta"]["metrics"]["si_sdr"] == pytest.approx(max(r["valid_si_sdr"] for r in history))


def test_validation_reports_si_sdr_at_each_level_of_a_range(tiny_overrides, capsys):
    """A range is validated at four levels; each level's SI-SDR is kept beside their mean, so a trade of the clean
    end for the noisy end is visible epoch by epoch."""
    solver = make_solver(tiny_overrides + ["solver.epochs=2", "data.gain=null", "data.snr_db=[-5,25]"])
    solver.fit()
    history = json.loads((solver.run_dir / "history.json").read_text())
    names = ["valid_si_sdr_at_snr-5", "valid_si_sdr_at_snr5", "valid_si_sdr_at_snr15", "valid_si_sdr_at_snr25"]
    for row in history:  # every level has the same items, so the mean of the levels is the average
        assert np.mean([row[name] for name in names]) == pytest.approx(row["valid_si_sdr"], abs=1e-5)
    together = solver.validate()
    for level in list(solver.valid_levels):  # each figure is that level's alone
        solver.valid_levels = [level]
        alone = solver.validate()
        assert "si_sdr_at_snr-5" not in alone  # one level: nothing to split
        assert together[f"si_sdr_at_snr{level[1]:g}"] == pytest.approx(alone["si_sdr"], abs=1e-5)
    assert "valid_si_sdr_at_snr-5" in (solver.run_dir / "history.csv").read_text().splitlines()[0]
    assert "valid_si_sdr by level [snr-5:" in capsys.readouterr().out
    best = load_checkpoint(solver.run_dir / "best.pth")
    assert best["meta"]["metrics"]["si_sdr_at_snr25"] == pytest.approx(
        next(r["valid_si_sdr_at_snr25"] for r in history if r["best"])
    )


def test_best_can_be_chosen_at_one_level_of_the_range(tiny_overrides):
    metric = "valid_si_sdr_at_snr-5"
    solver = make_solver(
        tiny_overrides
        + ["solver.epochs=3", "data.gain=null", "data.snr_db=[-5,25]", "solver.valid_metric=si_sdr_at_snr-5"]
    )
    solver.fit()
    history = json.loads((solver.run_dir / "history.json").read_text())
    chosen = max(history, key=lambda row: row[metric])
    assert [row["epoch"] for row in history if row["best"]][-1] == chosen["epoch"]
    best = load_checkpoint(solver.run_dir / "best.pth")
    assert best["meta"]["epoch"] == chosen["epoch"]


@pytest.mark.parametrize(
    ("overrides", "needs"),
    [
        (["data.gain=null", "data.snr_db=[-5,25]", "solver.valid_metric=si_sdr_at_snr0"], "one of si_sdr_at_snr-5, "),
        (["solver.valid_metric=si_sdr_at_snr-5"], "a noise range"),  # one gain: one level, nothing to pick
    ],
)
def test_an_unknown_level_to_choose_at_is_refused_in_one_line(tiny_overrides, overrides, needs):
    with pytest.raises(ConfigError, match="validation has no such level") as refused:
        make_solver(tiny_overrides + overrides)
    assert needs in str(refused.value) and "\n" not in str(refused.value)


def test_non_finite_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tiny_overrides, monkeypatch):
    solver = make_solver(tiny_overrides + ["solver.epochs=2"])
    original = type(solver).train_loss
    calls = {"n": 0}

    def nan_in_second_epoch(self, batch):
        calls["n"] += 1
        loss = original(self, batch)
        return loss * float("nan") if calls["n"] > 4 else loss

    monkeypatch.setattr(type(solver), "train_loss", nan_in_second_epoch)
    with pytest.raises(TrainingError, match="loss is not finite"):
        solver.fit()
    last = load_checkpoint(solver.run_dir / "last.pth")
    assert last["meta"]["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())


def test_non_finite_steps_can_be_skipped(tiny_overrides, monkeypatch):
    solver = make_solver(tiny_overrides + ["solver.epochs=1", "solver.nonfinite=skip"])
    original = type(solver).train_loss
    calls = {"n": 0}

    def every_other_nan(self, batch):
        calls["n"] += 1
        loss = original(self, batch)
        return loss * float("nan") if calls["n"] % 2 else loss

    monkeypatch.setattr(type(solver), "train_loss", every_other_nan)
    solver.fit()
    assert solver.skipped_steps == 2 and solver.step == 2


def test_init_from_starts_from_another_checkpoint(tiny_overrides, tmp_path):
    first = make_solver(tiny_overrides + ["solver.epochs=1"])
    first.fit()
    second = make_solver(
        [
            f"run_dir={tmp_path / 'second'}",
            *tiny_overrides[1:],
            "solver.epochs=0",
            f"solver.init_from={first.run_dir / 'best.pth'}",
        ]
    )
    second.fit()
    for key, value in load_checkpoint(first.run_dir / "best.pth")["state_dict"].items():
        assert torch.equal(second.model.state_dict()[key].cpu(), value)


def test_init_from_default_finetunes_the_shipped_model(tiny_overrides):
    data = [o for o in tiny_overrides if not o.startswith("model.")]
    solver = make_solver(data + ["model=subband_crn", "solver.epochs=0", "solver.init_from=default"])
    solver.fit()
    shipped = load_checkpoint(resolve_checkpoint("default"))["state_dict"]
    assert shipped and all(torch.equal(solver.model.state_dict()[k].cpu(), v) for k, v in shipped.items())


def test_init_from_an_unknown_name_is_one_line(tiny_overrides):
    with pytest.raises(ConfigError, match=r"solver.init_from=nosuchmodel: no shipped model named"):
        make_solver(tiny_overrides + ["solver.init_from=nosuchmodel"])


def test_early_stopping_stops_after_patience(tiny_overrides):
    solver = make_solver(tiny_overrides + ["solver.epochs=30", "solver.patience=1", "solver.lr=0.0"])
    summary = solver.fit()
    assert summary["stop_reason"] == "early stopping" and summary["epochs"] < 30


# A short training run on easy generated noise, shared by the learning tests (each adds model and epochs).
LEARNING_RUN = [
    "loss=l1",
    "data.snr_db=null",
    "data.level_dbfs=null",
    "data.segment_length=8192",
    "data.items_per_epoch=256",
    "data.batch_size=16",
    "data.valid_items=16",
    "data.builtin.utterances.train=12",
    "data.builtin.utterances.valid=3",
    "data.builtin.noise_s=12",
    "data.noise_kinds=[white,pink,hum]",
]


def test_a_few_epochs_lift_si_sdr_by_three_db(tmp_path):
    """Quality check on generated data: a small Wave-U-Net learns to denoise (margin, no timing)."""
    overrides = [
        f"run_dir={tmp_path / 'q'}",
        "model.levels=6",
        "model.channels_interval=16",
        *LEARNING_RUN,
        "solver.epochs=6",
        "solver.lr=1e-3",
        "solver.progress=false",
        "solver.plot_every=0",
    ]
    solver = make_solver(overrides)
    summary = solver.fit()
    improvement = summary["best"]["valid_si_sdr_i"]
    assert improvement >= 3.0, f"SI-SDR improvement only {improvement:.2f} dB"
    assert np.isfinite(summary["best"]["valid_loss"])


NEW_MODELS = {
    "transformer_unet": [
        "model=transformer_unet",
        "model.levels=6",
        "model.channels_interval=16",
        "model.d_model=32",
        "model.nhead=4",
        "model.dropout=0.0",
    ],
    "transformer_unet_dual_path": [
        "model=transformer_unet",
        "model.levels=6",
        "model.channels_interval=16",
        "model.d_model=32",
        "model.nhead=4",
        "model.dropout=0.0",
        "model.attention=dual_path",
        "model.chunk=16",
    ],
    "pixelshuffle_ae": ["model=pixelshuffle_ae", "model.levels=4", "model.channels=24"],
    "pixelshuffle_transformer_ae": [
        "model=pixelshuffle_transformer_ae",
        "model.levels=4",
        "model.channels=24",
        "model.d_model=32",
        "model.nhead=4",
        "model.dropout=0.0",
    ],
}


@pytest.mark.parametrize("name", sorted(NEW_MODELS))
def test_a_few_epochs_of_each_new_model_improve_si_sdr(name, tmp_path):
    overrides = [
        f"run_dir={tmp_path / name}",
        *NEW_MODELS[name],
        *LEARNING_RUN,
        "solver.epochs=8",
        "solver.lr=1e-3",
        "solver.progress=false",
        "solver.plot_every=0",
    ]
    summary = make_solver(overrides).fit()
    improvement = summary["best"]["valid_si_sdr_i"]
    assert improvement >= 3.0, f"{name}: SI-SDR improvement only {improvement:.2f} dB"


def test_progressive_peak_weight_follows_its_schedule(tiny_overrides):
    solver = make_solver(
        tiny_overrides
        + [
            "solver.epochs=3",
            "loss=peak_l1",
            "loss.peak_weight=2.0",
            "curriculum.peak_weight={kind: ramp, start: 0.0, start_epoch: 0, end_epoch: 2}",
        ]
    )
    solver.fit()
    history = json.loads((solver.run_dir / "history.json").read_text())
    assert [row["peak_weight"] for row in history] == pytest.approx([0.0, 1.0, 2.0])
    assert solver.loss_fn.peak_weight == pytest.approx(2.0)


def test_resume_refuses_other_settings_in_one_line_but_accepts_budgets_and_force(tiny_overrides, capsys):
    from denoise_vc.cli import main

    run = [*tiny_overrides, "solver.epochs=1", "solver.plot_every=0"]
    assert main(["train", *run]) == 0
    config_before = (Path(tiny_overrides[0].split("=", 1)[1]) / "config.yaml").read_text()
    assert main(["train", *run, "loss=peak_l1", "solver.lr=0.01"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "loss.name: l1 -> peak_l1" in err and "solver.lr: 0.001 -> 0.01" in err
    assert "solver.resume=force" in err
    assert (Path(tiny_overrides[0].split("=", 1)[1]) / "config.yaml").read_text() == config_before  # untouched
    assert main(["train", *run, "solver.epochs=2", "solver.progress=true"]) == 0  # budgets may change
    assert main(["train", *run, "solver.epochs=3", "loss=peak_l1", "solver.resume=force"]) == 0
    history = json.loads((Path(tiny_overrides[0].split("=", 1)[1]) / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2, 3]


def _weights(solver) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in solver.model.parameters()])


def test_solver_seed_repeats_a_training_on_the_same_split_with_other_draws(tiny_overrides):
    plain = make_solver(tiny_overrides)
    same = make_solver([*tiny_overrides, "solver.seed=0"])  # the top-level seed is 0
    other = make_solver([*tiny_overrides, "solver.seed=7"])
    assert torch.equal(_weights(plain), _weights(same))  # null means the top-level seed: runs as before
    assert torch.equal(plain.train_set[0][0], same.train_set[0][0])
    assert not torch.allclose(_weights(plain), _weights(other))  # other initial weights ...
    assert not torch.allclose(plain.train_set[0][0], other.train_set[0][0])  # ... and other training mixtures
    for a, b in zip(plain.train_set.corpus.clean, other.train_set.corpus.clean):  # but the same split
        assert np.array_equal(a, b)
    for i in range(len(plain.valid_set)):  # and the same validation items to select on
        assert all(torch.equal(x, y) for x, y in zip(plain.valid_set[i], other.valid_set[i]))


def test_a_run_saved_before_a_null_defaulted_setting_existed_still_resumes():
    from denoise_vc.solvers.base import config_changes

    saved = {"solver": {"lr": 0.001}}
    assert config_changes(saved, {"solver": {"lr": 0.001, "seed": None}}) == []
    assert config_changes(saved, {"solver": {"lr": 0.001, "seed": 3}}) == ["solver.seed: <absent> -> 3"]


@pytest.mark.parametrize("value", ["abc", "true", "1.5", "-1"])
def test_a_bad_solver_seed_is_refused_in_one_line_before_any_run_folder(tiny_overrides, capsys, value):
    from denoise_vc.cli import main

    assert main(["train", *tiny_overrides, f"solver.seed={value}"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "solver.seed" in err, err
    assert not Path(tiny_overrides[0].split("=", 1)[1]).exists()


def test_ema_of_a_denoiser_is_what_is_validated_and_shipped_and_off_by_default(tiny_overrides, tmp_path):
    """`solver.ema_decay` > 0 ships the average for any denoiser (last.pth keeps the raw weights to resume);
    left null, only the diffusion solver averages."""
    plain = make_solver(tiny_overrides + ["solver.epochs=1"])
    assert plain.average is None
    averaged = make_solver(
        [f"run_dir={tmp_path / 'ema'}", *tiny_overrides[1:], "solver.epochs=2", "solver.ema_decay=0.9"]
    )
    averaged.fit()
    last = load_checkpoint(averaged.run_dir / "last.pth")
    raw = last["train_state"]["raw_weights"]
    floats = [k for k in raw if raw[k].is_floating_point()]
    moved = [k for k in floats if not torch.equal(raw[k], last["state_dict"][k])]
    assert len(moved) > len(floats) // 2  # the shipped weights are the average, not the last step's
    for key, value in averaged.average.state.items():
        assert torch.equal(value.cpu(), last["state_dict"][key]), key
        assert torch.equal(averaged.model.state_dict()[key].cpu(), raw[key]), key


def test_resume_compares_the_average_kept_not_how_it_was_asked_for(tiny_overrides):
    """Runs saved when every config said ema_decay=0.999 (only diffusion used it) still resume; a run cannot
    switch an average on half-way."""
    make_solver(tiny_overrides + ["solver.epochs=1"]).fit()
    last = Path(tiny_overrides[0].split("=", 1)[1]) / "last.pth"
    ckpt = load_checkpoint(last)
    ckpt["config"]["solver"]["ema_decay"] = 0.999  # what a non-diffusion run saved before ema_decay: null
    save_checkpoint(ckpt, last)
    resumed = make_solver(tiny_overrides + ["solver.epochs=2"])
    resumed.fit()
    assert resumed.epoch == 2 and resumed.average is None
    with pytest.raises(ConfigError, match=r"solver\.ema_decay: 0\.0 -> 0\.9"):
        make_solver(tiny_overrides + ["solver.epochs=3", "solver.ema_decay=0.9"]).fit()
