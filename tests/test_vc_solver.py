import math

import pytest
import torch
from vc_tiny import vc_overrides, vc_prepared_dir  # noqa: F401  (fixture)

from denoise_vc.checkpoint import load_checkpoint
from denoise_vc.config import compose_config
from denoise_vc.errors import CheckpointError, ConfigError
from denoise_vc.models.vc.model import SKIP_GATE_OPEN
from denoise_vc.solvers.vc import build_vc_solver, noam_factor


def test_noam_schedule_warms_up_in_steps_peaks_then_decays():
    assert noam_factor(0, 4) == pytest.approx(0.25)
    assert noam_factor(3, 4) == pytest.approx(1.0)  # the 4th optimiser step runs at the peak
    assert noam_factor(15, 4) == pytest.approx(0.5)  # sqrt(4 / 16)
    assert noam_factor(399, 100) == pytest.approx(0.5)
    values = [noam_factor(s, 10) for s in range(40)]
    assert values.index(max(values)) == 9


def _cfg(tmp_path, *extra):
    return compose_config(vc_overrides(tmp_path, *extra), config_name="vc")


@pytest.fixture
def shared(request):
    return f"data.prepared_dir={request.getfixturevalue('vc_prepared_dir')}"


def test_resume_continues_the_schedule_and_matches_an_uninterrupted_run(tmp_path, shared):
    full = build_vc_solver(_cfg(tmp_path / "a", "solver.epochs=2", shared))
    full.fit()
    half = build_vc_solver(_cfg(tmp_path / "b", "solver.epochs=1", shared))
    half.fit()
    steps_per_epoch = half.step
    resumed = build_vc_solver(_cfg(tmp_path / "b", "solver.epochs=2", shared))
    resumed.fit()
    assert resumed.step == full.step == 2 * steps_per_epoch
    lr = resumed.optimizer.param_groups[0]["lr"]
    assert lr == pytest.approx(1e-3 * noam_factor(full.step, 4))
    assert lr == pytest.approx(full.optimizer.param_groups[0]["lr"])
    for key, value in full.model.state_dict().items():
        assert torch.allclose(value, resumed.model.state_dict()[key], atol=1e-5), key
    ckpt = load_checkpoint(tmp_path / "b" / "vc_run" / "best.pth", kind="vc")
    assert ckpt["model"]["name"] == "wgmm_vc" and len(ckpt["meta"]["stats"]["target"]["mel_mean"]) == 40


def test_cosine_schedule_decays_over_epochs_not_steps(tmp_path, shared):
    """solver.scheduler=cosine anneals to 0 over solver.epochs (it used to be stepped per optimiser step, so the
    rate went round the cosine every `epochs` steps). Noam's per-step rule is checked by the resume test."""
    solver = build_vc_solver(_cfg(tmp_path, "solver.epochs=4", "solver.scheduler=cosine", shared))
    rates = []
    solver.epoch_callbacks.append(lambda s, _row: rates.append(s.optimizer.param_groups[0]["lr"]))
    solver.fit()
    assert solver.step >= 8  # several optimiser steps an epoch, so a per-step schedule would have cycled
    expected = [0.5e-3 * (1 + math.cos(math.pi * epoch / 4)) for epoch in range(1, 5)]
    assert rates == pytest.approx(expected, abs=1e-9)


def test_finetune_copies_weights_and_resets_the_optimiser(tmp_path, shared):
    pre = build_vc_solver(_cfg(tmp_path / "pre", "solver.epochs=1", shared))
    pre.fit()
    source = tmp_path / "pre" / "vc_run" / "last.pth"
    fine = build_vc_solver(_cfg(tmp_path / "fine", "solver.epochs=0", f"solver.init_from={source}", shared))
    fine.fit()
    assert fine.step == 0 and not fine.optimizer.state  # fresh optimiser, warm-up starts again
    assert fine.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * noam_factor(0, 4))
    for key, value in pre.model.state_dict().items():
        assert torch.equal(value, fine.model.state_dict()[key]), key


def test_a_gate_can_be_added_to_a_trained_skip_model(tmp_path, shared):
    """solver.init_from a source-skip model into one with model.source_skip_gate: every trained weight is
    copied and the new gate starts open; a checkpoint missing any other weight is still refused."""
    skip = "model.source_skip=true"
    pre = build_vc_solver(_cfg(tmp_path / "pre", "solver.epochs=1", skip, shared))
    pre.fit()
    source = tmp_path / "pre" / "vc_run" / "last.pth"
    gated = "model.source_skip_gate=true"
    fine = build_vc_solver(
        _cfg(tmp_path / "fine", "solver.epochs=0", skip, gated, f"solver.init_from={source}", shared)
    )
    fine.fit()
    for key, value in pre.model.state_dict().items():
        assert torch.equal(value, fine.model.state_dict()[key]), key
    assert torch.all(fine.model.skip_gate.bias == SKIP_GATE_OPEN) and not fine.model.skip_gate.weight.any()
    plain = tmp_path / "plain"
    build_vc_solver(_cfg(plain, "solver.epochs=1", shared)).fit()
    with pytest.raises(CheckpointError, match="weights do not fit the model: 2 missing keys"):
        build_vc_solver(
            _cfg(tmp_path / "refused", skip, f"solver.init_from={plain / 'vc_run' / 'last.pth'}", shared)
        ).fit()


def test_model_and_data_must_agree(tmp_path, shared):
    with pytest.raises(ConfigError, match="reduction"):
        build_vc_solver(_cfg(tmp_path, "model.reduction=2", shared))


def test_ema_is_validated_shipped_and_resumed_exactly(tmp_path, shared):
    """With solver.ema_decay the checkpoints hold the average (not the last step's weights), and a run resumed
    from last.pth continues both the raw weights and the average as the uninterrupted run does."""
    ema = "solver.ema_decay=0.9"
    full = build_vc_solver(_cfg(tmp_path / "a", "solver.epochs=2", ema, shared))
    full.fit()
    build_vc_solver(_cfg(tmp_path / "b", "solver.epochs=1", ema, shared)).fit()
    resumed = build_vc_solver(_cfg(tmp_path / "b", "solver.epochs=2", ema, shared))
    resumed.fit()
    last = load_checkpoint(tmp_path / "b" / "vc_run" / "last.pth", kind="vc")
    raw = last["train_state"]["raw_weights"]
    moved = [k for k in raw if raw[k].is_floating_point() and not torch.equal(raw[k], last["state_dict"][k])]
    assert len(moved) > len(raw) // 2  # the shipped weights are the average, not the raw ones
    for key, value in full.average.state.items():
        assert torch.allclose(value, last["state_dict"][key], atol=1e-5), key
        assert torch.allclose(full.model.state_dict()[key], raw[key], atol=1e-5), key
