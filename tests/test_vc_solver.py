import pytest
import torch
from vc_tiny import vc_overrides, vc_prepared_dir  # noqa: F401  (fixture)

from denoise_vc.checkpoint import load_checkpoint
from denoise_vc.config import compose_config
from denoise_vc.errors import ConfigError
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


def test_model_and_data_must_agree(tmp_path, shared):
    with pytest.raises(ConfigError, match="reduction"):
        build_vc_solver(_cfg(tmp_path, "model.reduction=2", shared))
