import json

import numpy as np
import pytest
import soundfile as sf
import torch

from denoise_vc.checkpoint import save_checkpoint
from denoise_vc.cli import main
from denoise_vc.data.synth import speech_like
from denoise_vc.metrics import si_sdr


@pytest.fixture
def trained(tiny_overrides, tmp_path_factory):
    assert main(["train", *tiny_overrides, "solver.epochs=1"]) == 0
    return tiny_overrides[0].split("=", 1)[1]


def test_train_evaluate_denoise_end_to_end(trained, tmp_path, capsys):
    ckpt = f"{trained}/best.pth"
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                ckpt,
                "--json",
                str(tmp_path / "m.json"),
                "--gains",
                "0.3",
                "1.0",
                "--snrs",
                "5",
            ]
        )
        == 0
    )
    table = capsys.readouterr().out
    assert "SI-SDRi" in table and "PESQ wb" in table
    assert all(h in table for h in ("SI-SDR in", "PESQ in", "PESQ out", "STOI in", "STOI out"))  # noisy beside output
    result = json.loads((tmp_path / "m.json").read_text())
    assert set(result["levels"]) == {"5dB", "0.3", "1"}
    for level in result["levels"].values():
        assert {"si_sdr", "si_sdr_noisy", "pesq", "pesq_noisy", "stoi", "stoi_noisy"} <= set(level)
        assert 1.0 <= level["pesq_noisy"] <= 4.6 and 0.0 < level["stoi_noisy"] <= 1.0
    assert result["levels"]["0.3"]["stoi_noisy"] > result["levels"]["1"]["stoi_noisy"]
    assert result["levels"]["0.3"]["si_sdr_noisy"] > result["levels"]["1"]["si_sdr_noisy"] + 5

    audio = tmp_path / "in"
    audio.mkdir()
    sf.write(audio / "a.wav", speech_like(1.2, 22050, 1), 22050)
    sf.write(audio / "b.flac", np.stack([speech_like(0.5, 16000, 2)] * 2, 1), 16000)
    assert main(["denoise", str(audio), "-o", str(tmp_path / "out"), "--checkpoint", ckpt]) == 0
    assert sf.info(tmp_path / "out" / "a.wav").frames == int(1.2 * 22050)
    assert sf.info(tmp_path / "out" / "b.flac").channels == 2


def test_a_folder_with_bad_files_processes_the_good_ones(trained, tmp_path, capsys):
    audio = tmp_path / "mixed"
    audio.mkdir()
    sf.write(audio / "good.wav", speech_like(0.5, 16000, 1), 16000)
    (audio / "broken.wav").write_bytes(b"RIFF....WAVEfmt nonsense")
    code = main(["denoise", str(audio), "-o", str(tmp_path / "out"), "--checkpoint", f"{trained}/best.pth"])
    err = capsys.readouterr().err
    assert code == 3
    assert "broken.wav" in err and "1 of 2 files denoised" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.wav"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["train", "model=nope"], "Could not find 'model/nope'"),
        (["train", "solver.no_such_key=1"], "invalid config override"),
        (["train", "data=folder"], "data.clean"),
        (["evaluate", "--checkpoint", "missing.pth"], "missing.pth: checkpoint not found"),
    ],
)
def test_user_errors_are_one_line_with_non_zero_exit(args, message, capsys):
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_wrong_checkpoint_kind_and_missing_keys_are_refused(trained, tmp_path, capsys):
    ckpt = torch.load(f"{trained}/best.pth", weights_only=True)
    save_checkpoint({**ckpt, "kind": "vc"}, tmp_path / "vc.pth")
    assert main(["evaluate", "--checkpoint", str(tmp_path / "vc.pth")]) == 1
    assert "is a 'vc' checkpoint" in capsys.readouterr().err
    state = dict(ckpt["state_dict"])
    state.pop(next(iter(state)))
    state["extra.weight"] = torch.zeros(1)
    save_checkpoint({**ckpt, "state_dict": state}, tmp_path / "keys.pth")
    assert (
        main(["denoise", str(tmp_path / "vc.pth"), "-o", str(tmp_path), "--checkpoint", str(tmp_path / "keys.pth")])
        == 1
    )
    err = capsys.readouterr().err
    assert "1 missing keys" in err and "1 unexpected keys" in err


def test_heartbeat_data_at_1khz_reports_peak_metrics(tmp_path, capsys):
    run = tmp_path / "ecg"
    assert (
        main(
            [
                "train",
                f"run_dir={run}",
                "data=heartbeat",
                "model.levels=5",
                "model.channels_interval=8",
                "data.items_per_epoch=16",
                "data.valid_items=4",
                "data.test_items=2",
                "data.builtin.utterance_s=12",
                "data.builtin.noise_s=20",
                "data.builtin.utterances.train=2",
                "data.builtin.utterances.valid=1",
                "data.builtin.utterances.test=1",
                "solver.epochs=1",
                "solver.progress=false",
                "loss=peak_l1",
                "solver.valid_metric=r_f1",
            ]
        )
        == 0
    )
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith("finished after 1 epochs; best epoch 1: valid r_f1 ") and "valid SI-SDR" in summary
    assert main(["evaluate", "--checkpoint", str(run / "best.pth"), "--json", str(tmp_path / "e.json")]) == 0
    out = capsys.readouterr().out
    assert "PESQ omitted" in out and "R F1 out" in out and "bandSNR in" in out
    levels = json.loads((tmp_path / "e.json").read_text())["levels"]
    assert set(levels) == {"0.3", "0.5", "0.6", "1"}
    for row in levels.values():
        assert row["pesq"] is None and row["stoi"] is None
        assert 0.0 <= row["r_f1"] <= 1.0 and 0.0 <= row["r_f1_noisy"] <= 1.0 and row["r_amp_error"] >= 0.0
        assert row["band_snr_i"] == pytest.approx(row["band_snr"] - row["band_snr_noisy"])


def test_export_bundle_verifies_and_runs_standalone(trained, tmp_path, capsys):
    import ast
    import zipfile

    bundle = tmp_path / "bundle.zip"
    assert main(["export", "--checkpoint", f"{trained}/best.pth", "-o", str(bundle)]) == 0
    assert main(["export", "--verify", str(bundle)]) == 0
    assert "OK, standalone output matches" in capsys.readouterr().out
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in archive.infolist())
        requirements = archive.read("requirements.txt").decode()
        script = archive.read("denoise.py").decode()
        archive.extract("model.pth", tmp_path)
    assert {
        "model.pth",
        "model.ts",
        "config.yaml",
        "requirements.txt",
        "README.md",
        "denoise.py",
        "settings.json",
        "MANIFEST.json",
    } <= names
    pins = [line for line in requirements.splitlines() if line and not line.startswith("#")]
    assert pins == [f"{p}=={v}" for p, v in (line.split("==") for line in pins)]
    assert {p.split("==")[0] for p in pins} == {"torch", "numpy", "soundfile"}
    assert not any(tag in requirements.lower() for tag in ("+cpu", "+cu", "nvidia", "cuda-", "--index-url"))
    imports = {n.names[0].name.split(".")[0] for n in ast.walk(ast.parse(script)) if isinstance(n, ast.Import)}
    imports |= {n.module.split(".")[0] for n in ast.walk(ast.parse(script)) if isinstance(n, ast.ImportFrom)}
    assert imports - {"__future__", "argparse", "json", "sys", "pathlib"} == {"numpy", "soundfile", "torch"}
    assert torch.load(tmp_path / "model.pth", weights_only=True)["kind"] == "denoiser"


def test_tampered_bundles_and_wrong_checkpoints_are_refused(trained, tmp_path, capsys):
    import zipfile

    bundle = tmp_path / "b.zip"
    assert main(["export", "--checkpoint", f"{trained}/best.pth", "-o", str(bundle)]) == 0
    tampered = tmp_path / "t.zip"
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(tampered, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            dst.writestr(item, data + b"\n# extra" if item.filename == "denoise.py" else data)
    assert main(["export", "--verify", str(tampered)]) == 1
    assert "denoise.py was modified after export" in capsys.readouterr().err

    ckpt = torch.load(f"{trained}/best.pth", weights_only=True)
    save_checkpoint({**ckpt, "kind": "vc"}, tmp_path / "vc.pth")
    assert main(["export", "--checkpoint", str(tmp_path / "vc.pth"), "-o", str(tmp_path / "x.zip")]) == 1
    assert "is a 'vc' checkpoint, expected 'denoiser'" in capsys.readouterr().err
    assert not (tmp_path / "x.zip").exists()


SMALL_MODELS = {
    "conv_ae": ["model.levels=3", "model.channels=4"],
    "demucs": ["model.depth=2", "model.hidden=4"],
    "subband_crn": ["model.channels=4", "model.hidden=8", "model.levels=2", "model.dilations=[1]"],
    "diffusion": ["model.levels=3", "model.channels_interval=4", "model.embed_dim=8", "model.steps=2"],
    "wave_unet": ["model.levels=3", "model.channels_interval=4"],
    "transformer_unet": [
        "model.levels=3",
        "model.channels_interval=4",
        "model.d_model=8",
        "model.nhead=2",
        "model.attention=dual_path",
        "model.chunk=4",
    ],
    "pixelshuffle_ae": ["model.levels=3", "model.channels=4"],
    "pixelshuffle_transformer_ae": ["model.levels=3", "model.channels=4", "model.d_model=8", "model.nhead=2"],
}


def test_every_registered_model_has_a_small_export_config():
    from denoise_vc.models import denoisers

    assert set(denoisers()) == set(SMALL_MODELS)


@pytest.mark.parametrize("name", sorted(SMALL_MODELS))
def test_every_denoiser_type_exports_and_verifies(name, tmp_path):
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                f"run_dir={run}",
                f"model={name}",
                *SMALL_MODELS[name],
                "data.segment_length=2048",
                "data.items_per_epoch=8",
                "data.valid_items=2",
                "data.builtin.utterances.train=1",
                "data.builtin.utterances.valid=1",
                "data.builtin.utterance_s=1.0",
                "data.builtin.noise_s=2.0",
                "data.noise_kinds=[white]",
                "solver.epochs=1",
                "solver.progress=false",
                "solver.plot_every=0",
                "loss=l1",
            ]
        )
        == 0
    )
    assert main(["export", "--checkpoint", str(run / "best.pth"), "-o", str(tmp_path / "b.zip")]) == 0
    assert main(["export", "--verify", str(tmp_path / "b.zip")]) == 0


def test_demo_trains_denoises_the_example_and_writes_metrics(tiny_overrides, tmp_path, capsys):
    small = [o for o in tiny_overrides if not o.startswith(("model.", "loss="))]  # the demo's model is subband_crn
    assert main(["demo", *small, *SMALL_MODELS["subband_crn"], "solver.epochs=1", "solver.plot_every=0"]) == 0
    run_dir = tmp_path / "run"
    denoised, rate = sf.read(run_dir / "example" / "denoised" / "noisy.wav", dtype="float32")
    clean, _ = sf.read(run_dir / "example" / "clean.wav", dtype="float32")
    assert rate == 16000 and denoised.shape == clean.shape and np.all(np.isfinite(denoised))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["example"]["si_sdr"] == pytest.approx(si_sdr(denoised, clean), abs=1e-3)
    assert {"pesq_noisy", "stoi_noisy"} <= set(metrics["example"]) and "pesq_noisy" in metrics["levels"]["1"]
    out = capsys.readouterr().out
    assert "SI-SDRi" in out and "PESQ in" in out
    example = next(line for line in out.splitlines() if line.startswith("example"))
    assert "noisy -> denoised" in example and "PESQ wb" in example and example.count("->") == 4
    real = next(line for line in out.splitlines() if line.startswith("real recording"))  # the shipped model's
    assert real.count("->") == 4 and (run_dir / "example_real" / "example_noisy.flac").is_file()
    shipped = metrics["shipped_model_real"]
    assert shipped["pesq"] > shipped["pesq_noisy"] and shipped["stoi"] > shipped["stoi_noisy"]
