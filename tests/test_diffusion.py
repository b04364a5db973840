"""The flow/bridge denoiser: sampler cost and shapes, learning, EMA, and an exact resume."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from denoise_vc.checkpoint import load_checkpoint, load_model
from denoise_vc.cli import main
from denoise_vc.config import compose_config, resolve_paths
from denoise_vc.data.synth import speech_like
from denoise_vc.errors import ConfigError
from denoise_vc.models import build_model
from denoise_vc.solvers.diffusion import DiffusionSolver
from denoise_vc.solvers.factory import build_solver
from tests.test_solver import LEARNING_RUN

TINY_NET = ["model=diffusion", "model.levels=4", "model.channels_interval=8", "model.embed_dim=16"]


def tiny_model(**args):
    torch.manual_seed(0)
    return build_model("diffusion", levels=3, channels_interval=4, embed_dim=8, **args).eval()


def count_network_passes(model, x):
    calls = {"n": 0}
    handle = model.out.register_forward_hook(lambda *_: calls.__setitem__("n", calls["n"] + 1))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return calls["n"]


@pytest.mark.parametrize("stochastic", [False, True])
@pytest.mark.parametrize("steps", [1, 2, 5, 8])
def test_n_sampler_steps_call_the_network_n_times(steps, stochastic):
    model = tiny_model(steps=steps, stochastic=stochastic)
    assert count_network_passes(model, 0.1 * torch.randn(2, 1, 500)) == steps


@pytest.mark.parametrize("stochastic", [False, True])
@pytest.mark.parametrize("length", [1, 7, 1001, 16000 + 13])
def test_output_length_equals_input_length(length, stochastic):
    model = tiny_model(steps=3, stochastic=stochastic)
    x = 0.1 * torch.randn(2, 1, length)
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_deterministic_sampler_repeats_and_stochastic_sampler_does_not():
    x = 0.1 * torch.randn(1, 1, 2000)
    det = tiny_model(steps=3)
    sto = tiny_model(steps=3, stochastic=True)
    with torch.no_grad():
        assert torch.equal(det(x), det(x))
        assert not torch.equal(sto(x), sto(x))
        # one deterministic step is the network's clean estimate at t = 1 from the noisy input itself
        one = tiny_model(steps=1)
        assert torch.equal(one(x), one.predict_clean(x, x, torch.ones(1)))


def test_bad_sampler_settings_are_config_errors(tiny_overrides):
    for override, message in (("model.steps=0", "steps must be >= 1"), ("solver.ema_decay=1.5", "ema_decay")):
        with pytest.raises(ConfigError, match=message):
            build_solver(resolve_paths(compose_config([*tiny_overrides, *TINY_NET, override])))


def test_a_few_epochs_improve_si_sdr_and_checkpoints_hold_the_ema(tmp_path):
    """Tiny model on generated data: the EMA model's 4-step sampler lifts SI-SDR by a margin (no timing)."""
    overrides = [
        f"run_dir={tmp_path / 'd'}",
        "model=diffusion",
        "model.levels=5",
        "model.channels_interval=12",
        "model.embed_dim=16",
        "model.batch_norm=false",  # BatchNorm's running statistics lag behind so short a run (eval mode is worse)
        *LEARNING_RUN,
        "data.segment_length=4096",
        "data.items_per_epoch=128",
        "solver.epochs=6",
        "solver.lr=2e-3",
        "solver.ema_decay=0.99",
        "solver.progress=false",
        "solver.plot_every=0",
    ]
    solver = build_solver(resolve_paths(compose_config(overrides)))
    assert isinstance(solver, DiffusionSolver)
    summary = solver.fit()
    improvement = summary["best"]["valid_si_sdr_i"]
    assert improvement >= 3.0, f"SI-SDR improvement only {improvement:.2f} dB"
    # best/last ship the EMA weights, which differ from the raw ones; the loaded model is the EMA model
    last = load_checkpoint(solver.run_dir / "last.pth")
    raw = last["train_state"]["raw_weights"]
    assert any(not torch.equal(raw[k], last["state_dict"][k]) for k in raw)
    for key, value in solver.average.state.items():
        assert torch.equal(last["state_dict"][key], value.cpu()), key
    model, _ = load_model(solver.run_dir / "last.pth")
    assert model.steps == 4 and not model.stochastic


def test_interrupted_diffusion_run_resumes_bit_exactly_with_its_ema_and_the_cli_uses_it(
    tiny_overrides, tmp_path, monkeypatch, capsys
):
    def overrides(name):
        return [f"run_dir={tmp_path / name}", *tiny_overrides[1:], *TINY_NET, "solver.epochs=2", "solver.plot_every=0"]

    build_solver(resolve_paths(compose_config(overrides("a")))).fit()
    interrupted = build_solver(resolve_paths(compose_config(overrides("b"))))
    calls = {"n": 0}
    original = DiffusionSolver.train_loss

    def crash_in_second_epoch(self, batch):
        calls["n"] += 1
        if calls["n"] == 4 + 2:  # 4 batches per epoch: die inside epoch 2
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(DiffusionSolver, "train_loss", crash_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit()
    monkeypatch.setattr(DiffusionSolver, "train_loss", original)
    assert load_checkpoint(tmp_path / "b" / "last.pth")["meta"]["epoch"] == 1

    build_solver(resolve_paths(compose_config(overrides("b")))).fit()
    a = load_checkpoint(tmp_path / "a" / "last.pth")
    b = load_checkpoint(tmp_path / "b" / "last.pth")
    for key in a["state_dict"]:  # EMA weights
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    raw_a, raw_b = a["train_state"]["raw_weights"], b["train_state"]["raw_weights"]
    for key in raw_a:
        assert torch.equal(raw_a[key], raw_b[key]), key
    ha = json.loads((tmp_path / "a" / "history.json").read_text())
    hb = json.loads((tmp_path / "b" / "history.json").read_text())
    assert [r["valid_si_sdr"] for r in ha] == [r["valid_si_sdr"] for r in hb]

    # the checkpoint works with `evaluate` and `denoise` like any denoiser: any rate, length and channels
    best = str(tmp_path / "a" / "best.pth")
    assert main(["evaluate", "--checkpoint", best, "--gains", "1.0", "--json", str(tmp_path / "e4.json")]) == 0
    assert "SI-SDRi" in capsys.readouterr().out
    assert (
        main(["evaluate", "--checkpoint", best, "--gains", "1.0", "--steps", "1", "--json", str(tmp_path / "e1.json")])
        == 0
    )
    four, one = (json.loads((tmp_path / f"e{n}.json").read_text())["levels"]["1"]["si_sdr"] for n in (4, 1))
    assert four != pytest.approx(one, abs=1e-6)  # --steps really changes the sampler
    sf.write(tmp_path / "in.wav", np.stack([speech_like(0.7, 22050, 1)] * 2, 1)[:15013], 22050)
    assert (
        main(
            [
                "denoise",
                str(tmp_path / "in.wav"),
                "-o",
                str(tmp_path / "out"),
                "--checkpoint",
                str(tmp_path / "a" / "best.pth"),
            ]
        )
        == 0
    )
    info = sf.info(tmp_path / "out" / "in.wav")
    assert (info.frames, info.channels, info.samplerate) == (15013, 2, 22050)


def test_steps_option_is_refused_for_models_without_a_sampler():
    from denoise_vc.cli import _set_sampler_steps
    from denoise_vc.errors import DenoiseVCError

    with pytest.raises(DenoiseVCError, match=r"w\.pth: --steps applies to model=diffusion checkpoints only"):
        _set_sampler_steps(torch.nn.Identity(), 2, "w.pth")
