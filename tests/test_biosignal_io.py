"""Amplitude-true biosignal denoising: a model trained on robustly normalised windows (data.normalize=robust)
returns ECG at its own physical scale, and `denoise` writes float WAV, WFDB, .mat and CSV back in their own
format, units and variable names, without clipping."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
import wfdb
from scipy.io import loadmat, savemat

from denoise_vc.cli import main
from denoise_vc.config import compose_config
from denoise_vc.data.synth import heartbeat_like
from denoise_vc.errors import ConfigError
from denoise_vc.models import build_model
from denoise_vc.models.normalized import Normalized
from denoise_vc.solvers.factory import build_denoiser
from tests.conftest import TINY

RATE = 360


@pytest.fixture(scope="module")
def ecg_model(tmp_path_factory):
    """A small Wave-U-Net trained for a minute on built-in heartbeats at 360 Hz whose R waves are 0.8 mV."""
    run = tmp_path_factory.mktemp("ecg") / "run"
    overrides = [*TINY, "data.segment_length=2048", "data.test_segment_length=4096", "data.items_per_epoch=64"]
    overrides += ["data.builtin.utterance_s=20.0", "data.builtin.noise_s=20.0", "solver.epochs=20", "loss=peak_l1"]
    assert main(["train", f"run_dir={run}", "data=heartbeat", f"data.sample_rate={RATE}", *overrides]) == 0
    return run / "best.pth"


def ecg_3mv(seconds: float = 30.0, seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """A real-shaped lead with 3 mV R waves above an isoelectric line at -0.3 mV, and its R-peak samples."""
    beat = heartbeat_like(seconds, RATE, seed)
    return (beat.signal / beat.signal[beat.r_peaks].mean() * 3.0 - 0.3).astype(np.float32), beat.r_peaks


def r_amplitudes(x: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    return x[peaks] - np.median(x)


def test_normalisation_is_inverted_exactly():
    x = torch.tensor(ecg_3mv(5.0)[0])[None, None].repeat(2, 1, 1) * torch.tensor([1.0, 1000.0])[:, None, None]
    out = Normalized(torch.nn.Identity())(x)
    for item_out, item in zip(out, x):  # mV and uV alike: float32 rounding only
        assert (item_out - item).abs().max() <= 1e-6 * item.abs().max()


class Silent(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


def test_a_residual_model_starts_as_the_identity_and_learns_from_there():
    x = torch.tensor(ecg_3mv(5.0)[0])[None, None]
    assert (Normalized(Silent(), residual=True)(x) - x).abs().max() <= 1e-6 * x.abs().max()
    fresh = Normalized(torch.nn.Conv1d(1, 1, 5, padding=2), residual=True)
    assert (fresh(x) - x).abs().max() <= 1e-6 * x.abs().max()  # the gate starts closed
    fresh(x).sub(0.5 * x).abs().mean().backward()
    assert fresh.gate.grad.abs() > 0  # ...and opens as soon as there is something to remove
    assert (Normalized(Silent())(x) - x.median()).abs().max() == 0  # without it, the network owns the whole output


def test_the_window_highpass_is_a_zero_phase_butterworth_and_removes_wander():
    from scipy.signal import butter, sosfiltfilt

    from denoise_vc.models.normalized import highpass

    lead, _ = ecg_3mv(60.0)
    t = np.arange(lead.size) / RATE
    wander = 1.5 * np.sin(2 * np.pi * 0.15 * t)
    noisy = (lead + wander).astype(np.float64)
    ours = highpass(torch.tensor(noisy)[None, None], 0.5 / RATE)[0, 0].numpy()
    reference = sosfiltfilt(butter(2, 0.5, btype="highpass", fs=RATE, output="sos"), noisy)
    middle = slice(10 * RATE, -10 * RATE)  # away from the ends, where the two pad differently
    assert np.abs(ours[middle] - reference[middle]).max() < 0.01 * np.abs(reference).max()
    model = Normalized(Silent(), residual=True, highpass_cycles=0.5 / RATE)
    out = model(torch.tensor(noisy, dtype=torch.float32)[None, None])[0, 0].detach().numpy()
    assert np.abs(out - lead)[middle].max() < 0.15 * np.abs(wander).max()  # the wander is gone, the beats stay


@pytest.mark.parametrize("highpass_target", [False, True])
def test_a_high_passed_model_is_not_asked_for_the_drift_its_filter_removes(tmp_path, highpass_target):
    """`data.highpass_target`: the training and validation target is the clean lead high-passed as the model's
    input is. A fresh residual model (the filter and nothing else) handed a clean but drifting lead then has
    nothing left to learn; asked for the raw lead, its loss is the drift it cannot know."""
    from denoise_vc.config import resolve_paths
    from denoise_vc.solvers.factory import build_solver

    overrides = [f"run_dir={tmp_path / 'r'}", *TINY, "data=heartbeat", f"data.sample_rate={RATE}", "loss=l1"]
    overrides += ["data.residual=true", "data.highpass_hz=0.5", f"data.highpass_target={highpass_target}"]
    solver = build_solver(resolve_paths(compose_config(overrides)))
    lead, _ = ecg_3mv(12.0)
    t = np.arange(lead.size) / RATE
    drifting = torch.tensor(lead + 0.4 * np.sin(2 * np.pi * 0.1 * t), dtype=torch.float32)[None, None]
    loss = solver.train_loss((drifting, drifting)).item()
    if highpass_target:
        assert loss < 1e-4
    else:
        assert loss > 0.15  # the mean |drift| the filter took out (0.4 x 2 / pi ~ 0.25 mV)


def test_a_high_passed_target_needs_the_models_high_pass(tmp_path, capsys):
    code = main(["train", f"run_dir={tmp_path / 'r'}", *TINY, "data=heartbeat", "data.highpass_target=true"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "data.highpass_target=true needs data.highpass_hz" in err and len(err.splitlines()) == 1


def test_residual_is_stored_with_the_model_and_needs_robust_normalisation():
    cfg = compose_config(["data=heartbeat", "data.residual=true", "model=wave_unet", "model.levels=3"])
    model = build_denoiser(cfg.model, 0, 1000, cfg.data.normalize, cfg.data.residual)
    clone = build_model(model.registry_name, **model.init_args)
    assert clone.residual and clone.init_args == {**model.init_args}
    with pytest.raises(ConfigError, match="data.residual=true needs data.normalize=robust"):
        build_denoiser(cfg.model, 0, 1000, "none", True)


def test_a_3_mv_ecg_keeps_its_r_peaks_through_denoise(ecg_model, tmp_path):
    """The model heard 0.8 mV R waves only; a 3 mV lead must come back neither clipped (the old output tanh and
    the [-1, 1] clip of `denoise` held it at 1) nor scaled."""
    clean, peaks = ecg_3mv()
    sf.write(tmp_path / "lead.wav", clean, RATE, subtype="FLOAT")
    assert (
        main(["denoise", str(tmp_path / "lead.wav"), "-o", str(tmp_path / "out"), "--checkpoint", str(ecg_model)]) == 0
    )
    out, rate = sf.read(tmp_path / "out" / "lead.wav", dtype="float32")
    assert rate == RATE and out.shape == clean.shape
    assert out.max() > 2.5, f"output peaks at {out.max():.2f} mV: clipped"
    error = np.abs(r_amplitudes(out, peaks) / r_amplitudes(clean, peaks) - 1)
    assert np.median(error) < 0.08 and error.max() < 0.2, f"R amplitudes off by {np.median(error):.1%} (median)"
    assert np.corrcoef(out, clean)[0, 1] > 0.97
    assert abs(np.median(out) - np.median(clean)) < 0.05 * 3.0  # the isoelectric line stays within 5 % of the R wave


def denoise_one(checkpoint, src, out_dir, *extra) -> int:
    return main(["denoise", str(src), "-o", str(out_dir), "--checkpoint", str(checkpoint), *extra])


def test_wfdb_records_come_back_as_wfdb_with_their_own_header(ecg_model, tmp_path):
    clean, peaks = ecg_3mv()
    leads = np.stack([clean, 0.5 * clean + 0.2], axis=1).astype(np.float64)
    wfdb.wrsamp(
        "rec", fs=RATE, units=["mV", "mV"], sig_name=["MLII", "V5"], p_signal=leads, fmt=["212", "16"],
        adc_gain=[200.0, 400.0], baseline=[1024, -7], comments=["age 61"], write_dir=str(tmp_path),
    )  # fmt: skip
    assert denoise_one(ecg_model, tmp_path / "rec.hea", tmp_path / "out") == 0
    before, after = wfdb.rdrecord(str(tmp_path / "rec")), wfdb.rdrecord(str(tmp_path / "out" / "rec"))
    for field in ("fs", "units", "sig_name", "fmt", "adc_gain", "baseline", "sig_len", "comments"):
        assert getattr(after, field) == getattr(before, field), field
    out = after.p_signal[:, 0]
    assert out.max() > 2.5
    assert np.median(np.abs(r_amplitudes(out, peaks) / r_amplitudes(clean, peaks) - 1)) < 0.08
    assert np.corrcoef(after.p_signal[:, 1], leads[:, 1])[0, 1] > 0.95  # every lead is denoised, none dropped


def test_mat_files_keep_their_variable_orientation_and_other_variables(ecg_model, tmp_path):
    clean, peaks = ecg_3mv()
    savemat(tmp_path / "drive.mat", {"ecg": clean[:, None].astype(np.float64), "fs": float(RATE), "note": "car"})
    assert denoise_one(ecg_model, tmp_path / "drive.mat", tmp_path / "out") == 0
    before, after = loadmat(tmp_path / "drive.mat"), loadmat(tmp_path / "out" / "drive.mat")
    assert after["ecg"].shape == before["ecg"].shape == (clean.size, 1)
    assert float(after["fs"].squeeze()) == RATE and str(after["note"][0]) == "car"
    out = after["ecg"][:, 0]
    assert np.median(np.abs(r_amplitudes(out, peaks) / r_amplitudes(clean, peaks) - 1)) < 0.08


def test_csv_keeps_its_header_delimiter_and_time_column(ecg_model, tmp_path):
    clean, peaks = ecg_3mv()
    time = np.arange(clean.size) / RATE
    rows = "\n".join(f"{t:.6f};{v:.6f}" for t, v in zip(time, clean))
    (tmp_path / "ecg.csv").write_text("time;lead_II\n" + rows + "\n")
    assert denoise_one(ecg_model, tmp_path / "ecg.csv", tmp_path / "out") == 0
    lines = (tmp_path / "out" / "ecg.csv").read_text().splitlines()
    assert lines[0] == "time;lead_II" and len(lines) == clean.size + 1
    table = np.array([[float(c) for c in line.split(";")] for line in lines[1:]])
    np.testing.assert_allclose(table[:, 0], time, atol=1e-6)
    assert np.median(np.abs(r_amplitudes(table[:, 1], peaks) / r_amplitudes(clean, peaks) - 1)) < 0.08


def test_a_mat_file_takes_its_rate_and_variable_from_the_command_line(ecg_model, tmp_path, capsys):
    clean, _ = ecg_3mv(10.0)
    savemat(tmp_path / "a.mat", {"x": clean.astype(np.float64)})
    assert denoise_one(ecg_model, tmp_path / "a.mat", tmp_path / "out", "--rate", str(2 * RATE)) == 0
    out = loadmat(tmp_path / "out" / "a.mat")["x"].ravel()
    assert out.size == clean.size  # resampled to the model's rate and back, same length
    savemat(tmp_path / "two.mat", {"x": clean, "y": clean})
    assert denoise_one(ecg_model, tmp_path / "two.mat", tmp_path / "out2") != 0
    err = capsys.readouterr().err
    assert "two.mat" in err and "--mat-variable" in err and "Traceback" not in err
    noisy = clean + 0.3 * np.random.default_rng(1).standard_normal(clean.size)
    savemat(tmp_path / "two.mat", {"x": clean, "y": noisy})
    assert denoise_one(ecg_model, tmp_path / "two.mat", tmp_path / "out3", "--mat-variable", "y") == 0
    after = loadmat(tmp_path / "out3" / "two.mat")
    np.testing.assert_array_equal(after["x"].ravel(), clean)  # the other variable is kept as it was
    assert np.std(after["y"].ravel() - clean) < 0.5 * np.std(noisy - clean)  # the named one is denoised


def test_bad_csv_files_get_one_line_errors_naming_the_file(ecg_model, tmp_path, capsys):
    cases = {
        "ragged.csv": "time,lead\n0.0,0.1\n0.0027,0.2,0.3\n",
        "words.csv": "time,lead\n0.0,0.1\n0.0027,high\n",
        "header_only.csv": "time,lead\n",
        "backwards.csv": "time,lead\n0.2,0.1\n0.1,0.2\n0.0,0.3\n",
    }
    expected = {
        "ragged.csv": "row 3 has 3 columns, not 2",
        "words.csv": "non-numeric values",
        "header_only.csv": "no data rows",
        "backwards.csv": "does not increase",
    }
    for name, text in cases.items():
        (tmp_path / "in" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "in" / name).write_text(text)
    assert denoise_one(ecg_model, tmp_path / "in", tmp_path / "out") == 1  # every file failed
    err = capsys.readouterr().err
    for name, message in expected.items():
        line = next(line for line in err.splitlines() if name in line)
        assert message in line, line
    assert "Traceback" not in err
    assert not list((tmp_path / "out").rglob("*")) if (tmp_path / "out").exists() else True  # nothing partial
