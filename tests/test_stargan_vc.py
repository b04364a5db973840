"""`model=stargan_vc`: many-to-many VC from non-parallel generated speakers (labels, cycle loss, CLI, convert)."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from denoise_vc.checkpoint import load_checkpoint
from denoise_vc.cli import main
from denoise_vc.config import compose_config
from denoise_vc.models import build_model
from denoise_vc.vc.corpus import BUILTIN_SPEAKERS, make_script, render

RATE = 16000
# four built-in voices, each with 3 scripts of its own (2 train, 1 valid, 1 test), a small model
TINY = [
    "vc/model@model=stargan_vc",
    "data.speakers=builtin",
    "data.builtin.utterances.train=2",
    "data.builtin.utterances.valid=1",
    "data.builtin.utterances.test=1",
    "data.builtin.words=4",
    "data.n_mels=40",
    "data.batch_size=4",
    "data.patches_per_epoch=16",
    "model.channels=8",
    "model.bottleneck=64",
    "model.n_res=2",
    "model.d_channels=8",
    "solver.progress=false",
    "solver.plot_every=0",
]


def _overrides(tmp, run: str, *extra: str) -> list[str]:
    return [f"run_dir={tmp / run}", f"data.prepared_dir={tmp / 'prep'}", *TINY, *extra]


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    return tmp_path_factory.mktemp("stargan")


def test_the_target_label_changes_the_output_and_any_length_works():
    torch.manual_seed(0)
    model = build_model("stargan_vc", dims=25, n_speakers=4, channels=8, bottleneck=32, n_res=2, d_channels=8)
    x = torch.randn(1, 37, 25)  # neither axis a multiple of 2**n_down: padded inside, cropped back
    to_a, to_b = model.infer(x, torch.tensor([0])), model.infer(x, torch.tensor([1]))
    assert to_a.shape == x.shape and torch.isfinite(to_a).all()
    assert (to_a - to_b).abs().mean() > 0.1 * to_a.abs().mean()  # a clear margin, not rounding noise
    assert torch.equal(model.infer(x, torch.tensor([0])), to_a)  # deterministic in eval mode
    scores, logits = model.discriminator(torch.randn(2, 3, 25))  # a very short utterance still gets a patch
    assert scores.shape[0] == 2 and logits.shape == (2, 4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d) for m in model.modules())
    with pytest.raises(ValueError, match="n_speakers"):
        build_model("stargan_vc", dims=24, n_speakers=1)


def test_cycle_consistency_falls_during_a_few_dozen_steps(shared):
    from denoise_vc.solvers.stargan import build_stargan_solver

    cfg = compose_config(_overrides(shared, "cycle", "solver.epochs=10"), config_name="vc")
    solver = build_stargan_solver(cfg)
    assert cfg.solver.valid_metric == "score"  # the vocoder group's parallel metric is replaced
    before = solver.validate()["cycle_l1"]
    solver.fit()  # 10 epochs x 4 steps of 4 one-second patches
    history = solver.history
    assert history[-1]["step"] == 40
    after = history[-1]["valid_cycle_l1"]
    assert after < 0.8 * before, (before, after)  # held-out utterances, whole (0.90 -> 0.56 when written)
    patches = [row["g_cyc"] for row in history]  # training patches, two epochs at each end
    assert np.mean(patches[-2:]) < 0.85 * np.mean(patches[:2]), patches


@pytest.fixture(scope="module")
def cli_run(shared):
    """vc-train through the CLI: 2 epochs, then resumed to 3."""
    args = _overrides(shared, "run")
    assert main(["vc-train", *args, "solver.epochs=2"]) == 0
    first = json.loads((shared / "run" / "history.json").read_text())
    assert main(["vc-train", *args, "solver.epochs=3"]) == 0
    return shared / "run", first


def test_vc_train_writes_both_losses_and_resumes(cli_run, capsys):
    run, first = cli_run
    history = json.loads((run / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2, 3] and history[:2] == first  # continued, not restarted
    for row in history:
        assert {"g_loss", "d_loss", "g_adv", "g_cls", "g_cyc", "d_adv", "d_cls", "valid_score"} <= set(row)
        assert np.isfinite([row["g_loss"], row["d_loss"]]).all() and row["g_loss"] == row["train_loss"]
    last = load_checkpoint(run / "last.pth", kind="vc")
    assert last["meta"]["step"] == 12 and last["meta"]["speakers"] == ["f1", "f2", "m1", "m2"]
    assert "d_optimizer" in last["train_state"]["extra"] and last["train_state"]["optimizer"]["state"]
    assert any(k.startswith("discriminator.") for k in last["state_dict"])
    best = load_checkpoint(run / "best.pth", kind="vc")
    assert "train_state" not in best and set(best["meta"]["stats"]["speakers"]) == set(BUILTIN_SPEAKERS)


def test_convert_to_a_named_speaker(cli_run, tmp_path, capsys):
    run, _ = cli_run
    wave = render(make_script(99, 4), BUILTIN_SPEAKERS["m1"], RATE, 99)
    sf.write(tmp_path / "a.wav", wave, RATE)
    base = ["convert", str(tmp_path / "a.wav"), "--vc", str(run / "best.pth")]
    assert main([*base, "-o", str(tmp_path / "out"), "--target-speaker", "f1"]) == 0
    out, rate = sf.read(tmp_path / "out" / "a.wav")
    assert rate == RATE and np.isfinite(out).all() and np.abs(out).max() > 1e-4
    assert 0.75 * len(wave) < len(out) < 1.1 * len(wave)  # leading/trailing silence is trimmed
    capsys.readouterr()
    refusals = [([], "choose --target-speaker from f1, f2, m1, m2"), (["--target-speaker", "zz"], "zz")]
    refusals += [(["--target-speaker", "f1", "--gmm", "g.pt"], "a GMM fuses into one-to-one (wGMM) models")]
    for extra, says in refusals:
        assert main([*base, "-o", str(tmp_path / "x"), *extra]) != 0
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and says in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_a_one_to_one_checkpoint_refuses_a_target_speaker(tmp_path, capsys):
    from bad_inputs import tiny_vc_checkpoint

    ckpt = tiny_vc_checkpoint(tmp_path / "wgmm.pth")
    sf.write(tmp_path / "a.wav", render(make_script(5, 2), BUILTIN_SPEAKERS["m1"], RATE, 5), RATE)
    args = ["convert", str(tmp_path / "a.wav"), "-o", str(tmp_path / "out"), "--vc", str(ckpt)]
    assert main([*args, "--target-speaker", "f1"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "fixed speaker pair" in err


def test_world_frames_keep_c0_aperiodicity_and_voicing_and_move_f0(shared):
    """vocoder=world: only c1..c24 go through the generator; log-F0 moves log-linearly to the target's range."""
    from denoise_vc.vc.pipeline import Converter
    from denoise_vc.vc.speakers import utterance_features
    from denoise_vc.vc.vocoders import world_layout
    from denoise_vc.vc.world import f0_of

    args = _overrides(shared, "world", "vocoder=world", "solver.epochs=1", f"data.prepared_dir={shared / 'prep_w'}")
    assert main(["vc-train", *args]) == 0
    converter = Converter(shared / "world" / "best.pth", target_speaker="f1")
    wave = render(make_script(99, 4), BUILTIN_SPEAKERS["m1"], RATE, 99)
    source = utterance_features(wave, RATE, converter.fs)["frames"]
    assert converter.speakers.source_speaker(source) == "m1"  # the input's speaker, found by its statistics
    converted = converter.convert_frames(wave, RATE)
    layout = world_layout(converter.fs)
    assert converted.shape == source.shape
    for part in (0, layout.bap, layout.voiced):  # c0, band aperiodicity, voiced flag: the source's
        np.testing.assert_allclose(converted[:, part], source[:, part], atol=1e-4)
    f0_in, f0_out = f0_of(source, layout), f0_of(converted, layout)
    assert 95 < np.median(f0_in[f0_in > 0]) < 130 and 180 < np.median(f0_out[f0_out > 0]) < 260  # m1 -> f1
