"""The research notes' own workflow end to end through the CLI: a folder of 1 kHz heartbeat `.mat` recordings and
car-noise `.mat` recordings (100km.mat, Stop.mat) -> peak-weighted + wavelet loss with a progressive gain ->
evaluation at gains 0.3/0.5/0.6/1.0 through 5 s sliding windows -> figures of clean/noisy/denoised beats."""

import json

import numpy as np
from scipy.io import savemat

from denoise_vc.cli import main
from denoise_vc.data.noises import generate_noise
from denoise_vc.data.synth import heartbeat_like

RATE = 1000


def write_recordings(root):
    (root / "clean").mkdir(parents=True)
    (root / "noise").mkdir()
    for i in range(5):  # five drives: three train, one valid, one test (split by files)
        savemat(root / "clean" / f"drive{i}.mat", {"ecg": heartbeat_like(40.0, RATE, 100 + i).signal[:, None]})
    savemat(root / "noise" / "100km.mat", {"noise": generate_noise("engine", 60.0, RATE, 1)[:, None]})
    savemat(root / "noise" / "Stop.mat", {"noise": generate_noise("brown", 60.0, RATE, 2)[:, None]})


def test_mat_folder_to_trained_model_to_gain_table_and_beat_figures(tmp_path, capsys):
    write_recordings(tmp_path)
    run = tmp_path / "run"
    train = [
        "train", f"run_dir={run}", "data=heartbeat", f"data.clean={tmp_path / 'clean'}",
        f"data.noise={tmp_path / 'noise'}", "data.noise_split_by=time", f"data.mat_sample_rate={RATE}",
        "loss=combined", "curriculum=ramp", "curriculum.gain.start_epoch=1", "curriculum.gain.end_epoch=3",
        "model.levels=5", "model.channels_interval=8", "data.segment_length=4096", "data.test_segment_length=12000",
        "data.items_per_epoch=48", "data.valid_items=4", "data.test_items=2", "solver.epochs=4",
        "solver.progress=false", "solver.plot_every=0",
    ]  # fmt: skip
    assert main(train) == 0
    history = json.loads((run / "history.json").read_text())
    gains = [row["gain"] for row in history]
    assert gains[0] < gains[-1] == 1.0  # the noise came in progressively
    capsys.readouterr()
    figures, report = tmp_path / "figures", tmp_path / "eval.json"
    evaluate = ["evaluate", "--checkpoint", str(run / "best.pth"), "--plots", str(figures), "--json", str(report)]
    assert main([*evaluate, "--gains", "0.3", "0.5", "0.6", "1.0"]) == 0
    table = capsys.readouterr().out
    assert "R F1 out" in table and "bandSNR in" in table and "PESQ omitted" in table
    levels = json.loads(report.read_text())["levels"]
    assert list(levels) == ["0.3", "0.5", "0.6", "1"]
    for row in levels.values():
        assert 0.0 <= row["r_f1"] <= 1.0 and row["r_amp_error"] >= 0.0 and np.isfinite(row["band_snr"])
    # the input's band SNR falls as the gain rises: the levels really are 0.3 .. 1.0 of the same noise
    assert levels["0.3"]["band_snr_noisy"] > levels["1"]["band_snr_noisy"] + 8
    assert sorted(p.name for p in figures.iterdir()) == [f"beats_{g}.png" for g in ("0.3", "0.5", "0.6", "1")]
    # 12 s test segments run through the checkpoint's 5 s windows: another window length gives other numbers
    assert main([*evaluate, "inference.window_s=2.0", "--gains", "1.0"]) == 0
    shorter = json.loads(report.read_text())["levels"]["1"]
    assert shorter["band_snr"] != levels["1"]["band_snr"] and shorter["band_snr_noisy"] == levels["1"]["band_snr_noisy"]
