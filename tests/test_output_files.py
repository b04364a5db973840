"""Outputs are written with the user's umask, `-o NAME.wav` for one input names the output file, and an output path
that is an existing file is refused."""

import os
import stat

import pytest
import soundfile as sf
import torch
from bad_inputs import tiny_checkpoint, tiny_vc_checkpoint, tone

from denoise_vc.cli import main
from denoise_vc.errors import InferenceError
from denoise_vc.inference import WindowPlan, enhance_file


def test_denoised_files_get_the_users_umask_and_existing_file_outputs_are_refused(tmp_path, capsys):
    checkpoint = tiny_checkpoint(tmp_path / "tiny.pth")
    src = tmp_path / "in.wav"
    sf.write(src, tone(1.0, 16000), 16000)
    old = os.umask(0o002)
    try:
        assert main(["denoise", str(src), "-o", str(tmp_path / "out"), "--checkpoint", str(checkpoint)]) == 0
        mode = stat.S_IMODE((tmp_path / "out" / "in.wav").stat().st_mode)
        assert mode == 0o664  # group-readable and -writable, as umask 002 asks (mkstemp alone gives 0600)
        os.umask(0o077)
        assert main(["denoise", str(src), "-o", str(tmp_path / "private"), "--checkpoint", str(checkpoint)]) == 0
        assert stat.S_IMODE((tmp_path / "private" / "in.wav").stat().st_mode) == 0o600
    finally:
        os.umask(old)
    capsys.readouterr()
    existing = tmp_path / "existing.wav"
    existing.write_bytes(b"keep me")
    assert main(["denoise", str(src), "-o", str(existing), "--checkpoint", str(checkpoint)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "existing file" in err and existing.read_bytes() == b"keep me"


def test_one_input_and_an_output_file_name_write_that_file_once(tmp_path, capsys):
    checkpoint = tiny_checkpoint(tmp_path / "tiny.pth")
    src = tmp_path / "in.wav"
    sf.write(src, tone(1.5, 16000), 16000, subtype="PCM_16")
    out = tmp_path / "cleaned" / "take 1.wav"
    assert main(["denoise", str(src), "-o", str(out), "--checkpoint", str(checkpoint)]) == 0
    assert out.is_file() and capsys.readouterr().out.strip() == f"{src} -> {out}"
    info = sf.info(str(out))
    assert (info.frames, info.samplerate, info.subtype) == (24000, 16000, "PCM_16")
    first = out.read_bytes()
    assert main(["denoise", str(src), "-o", str(out), "--checkpoint", str(checkpoint)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "existing file" in err and out.read_bytes() == first
    # a format denoise does not write for this input is refused before the (absent) checkpoint is even read
    absent = str(tmp_path / "absent.pth")
    assert main(["denoise", str(src), "-o", str(tmp_path / "x.flac"), "--checkpoint", absent]) == 1
    err = capsys.readouterr().err.strip()
    expected = f"-o {tmp_path / 'x.flac'}: this command writes .wav for {src}; name the output so, or give a folder"
    assert err == f"denoise-vc: error: {expected}"
    assert not (tmp_path / "x.flac").exists()
    # a WFDB record is a .hea and a .dat: an existing .dat of that name is refused as well, before any loading
    (tmp_path / "rec.dat").write_bytes(b"keep me")
    assert main(["denoise", str(tmp_path / "in.hea"), "-o", str(tmp_path / "rec.hea"), "--checkpoint", absent]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{tmp_path / 'rec.dat'} is an existing file" in err, err
    assert (tmp_path / "rec.dat").read_bytes() == b"keep me" and not (tmp_path / "rec.hea").exists()
    # several inputs: -o stays a folder, whatever its name
    other = tmp_path / "other.wav"
    sf.write(other, tone(0.5, 16000), 16000)
    many = tmp_path / "many.wav"
    assert main(["denoise", str(src), str(other), "-o", str(many), "--checkpoint", str(checkpoint)]) == 0
    assert sorted(p.name for p in many.iterdir()) == ["in.wav", "other.wav"]


def test_convert_writes_one_input_to_the_named_wav(tmp_path, capsys):
    vc = tiny_vc_checkpoint(tmp_path / "vc.pth")
    src = tmp_path / "source.flac"
    sf.write(src, tone(1.0, 16000), 16000)
    assert main(["convert", str(src), "-o", str(tmp_path / "x.flac"), "--vc", str(tmp_path / "absent.pth")]) == 1
    assert "-o " in capsys.readouterr().err and not (tmp_path / "x.flac").exists()  # refused before loading
    out = tmp_path / "converted.wav"
    assert main(["convert", str(src), "-o", str(out), "--vc", str(vc)]) == 0
    assert out.is_file() and sf.info(str(out)).frames > 0
    assert main(["convert", str(src), "-o", str(out), "--vc", str(vc)]) == 1
    assert "existing file" in capsys.readouterr().err


def test_evaluate_refuses_nan_and_negative_levels_before_loading_anything(tmp_path, capsys):
    for args in (["--gains", "nan"], ["--gains", "-1"], ["--snrs", "inf"]):
        assert main(["evaluate", "--checkpoint", str(tmp_path / "absent.pth"), *args]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "out of range" in err, err


class _Failing(torch.nn.Module):
    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message
        self.scale = torch.nn.Parameter(torch.ones(1))

    def forward(self, x):
        raise RuntimeError(self.message)


@pytest.mark.parametrize(
    "message, expected",
    [
        (
            "CUDA out of memory. Tried to allocate 2.00 GiB",
            "out of GPU memory while denoising: lower inference.window_s",
        ),
        ("boom in layer 3", "the model failed on this file while denoising (RuntimeError: boom in layer 3)"),
    ],
)
def test_model_errors_name_the_file_and_the_real_cause_not_decoding(tmp_path, message, expected):
    src = tmp_path / "in.wav"
    sf.write(src, tone(1.0, 16000), 16000)
    plan = WindowPlan.from_seconds(0.5, 0.05, 0.02, 16000)
    with pytest.raises(InferenceError) as info:
        enhance_file(_Failing(message), 16000, src, tmp_path / "out" / "in.wav", plan)
    assert str(info.value) == f"{src}: {expected}" or str(info.value).startswith(f"{src}: {expected}")
    assert "cannot decode" not in str(info.value) and not (tmp_path / "out" / "in.wav").exists()
    assert list((tmp_path / "out").iterdir()) == []  # no partial or temp file left


@pytest.mark.parametrize(
    "message, expected",
    [
        ("CUDA out of memory. Tried to allocate 2.00 GiB", "out of GPU memory while converting: convert shorter"),
        ("boom in the decoder", "the model failed on this file while converting (RuntimeError: boom in the decoder)"),
    ],
)
def test_convert_names_the_file_and_the_models_own_error(tmp_path, monkeypatch, message, expected):
    from denoise_vc.vc.pipeline import Converter

    def failing(self, wave, rate):
        raise RuntimeError(message)

    monkeypatch.setattr(Converter, "convert", failing)
    converter = Converter.__new__(Converter)  # no checkpoint needed: the model call itself fails
    src = tmp_path / "in.wav"
    sf.write(src, tone(1.0, 16000), 16000)
    with pytest.raises(InferenceError) as info:
        converter.convert_file(src, tmp_path / "out" / "in.wav")
    assert str(info.value).startswith(f"{src}: {expected}")
    assert not (tmp_path / "out").exists()
