"""`preset=NAME` selects the ablation's best data/model/loss for a signal, and never beats the command line."""

import pytest

from denoise_vc.config import compose_config
from denoise_vc.errors import ConfigError


def test_no_preset_keeps_the_defaults():
    cfg = compose_config([])
    assert (cfg.data.name, cfg.model.name) == ("speech", "wave_unet")
    assert "preset" not in cfg


@pytest.mark.parametrize("preset", ["ecg", "heartbeat"])
def test_a_preset_selects_its_signal_and_model(preset):
    cfg = compose_config([f"preset={preset}"])
    assert cfg.data.name == preset
    assert cfg.model.name == "transformer_unet"


@pytest.mark.parametrize("order", [["preset=ecg", "model=wave_unet"], ["model=wave_unet", "preset=ecg"]])
def test_the_command_line_wins_over_a_preset_in_any_order(order):
    cfg = compose_config(order + ["model.levels=6"])
    assert (cfg.data.name, cfg.model.name, cfg.model.levels) == ("ecg", "wave_unet", 6)


def test_an_unknown_preset_is_a_one_line_config_error():
    with pytest.raises(ConfigError, match="preset") as info:
        compose_config(["preset=nope"])
    assert "\n" not in str(info.value)


def test_the_ecg_preset_trains_the_deeper_model_longer_and_the_command_line_still_wins():
    cfg = compose_config(["preset=ecg"])
    assert (cfg.model.num_layers, cfg.solver.epochs, cfg.solver.scheduler) == (4, 300, "cosine")
    cfg = compose_config(["preset=ecg", "model.num_layers=2", "solver.epochs=5"])
    assert (cfg.model.name, cfg.model.num_layers, cfg.solver.epochs) == ("transformer_unet", 2, 5)
