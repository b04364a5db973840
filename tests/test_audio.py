import numpy as np
import pytest
import soundfile as sf
from scipy.io import savemat

from denoise_vc.audio import load_audio, resample, write_audio_atomic
from denoise_vc.errors import AudioFileError


def test_stereo_is_mixed_to_mono_and_resampled(tmp_path):
    x = np.stack([np.full(4410, 0.2), np.full(4410, 0.4)], axis=1)
    sf.write(tmp_path / "s.wav", x, 44100, subtype="FLOAT")
    y, sr = load_audio(tmp_path / "s.wav", 16000)
    assert sr == 16000 and y.shape == (1, 1600)
    assert np.median(y) == pytest.approx(0.3, abs=1e-3)
    both, _ = load_audio(tmp_path / "s.wav", mono=False)
    assert both.shape == (2, 4410)


def test_resample_keeps_a_tone():
    t = np.arange(48000) / 48000
    y = resample(np.sin(2 * np.pi * 440 * t).astype(np.float32), 48000, 16000)
    assert len(y) == 16000
    spectrum = np.abs(np.fft.rfft(y))
    assert np.argmax(spectrum) == 440


@pytest.mark.parametrize(
    "content,message",
    [
        (None, "file not found"),
        (b"RIFF\x00\x00garbage-not-a-wav", "not a readable audio file"),
        (b"", "not a readable audio file"),
    ],
)
def test_bad_files_give_one_line_errors_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.wav"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AudioFileError, match=message) as info:
        load_audio(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_nan_samples_are_refused(tmp_path):
    x = np.zeros(100, dtype=np.float32)
    x[7] = np.nan
    sf.write(tmp_path / "nan.wav", x, 8000, subtype="FLOAT")
    with pytest.raises(AudioFileError, match="NaN or Inf"):
        load_audio(tmp_path / "nan.wav")


def test_zero_length_audio_is_refused(tmp_path):
    sf.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), 8000)
    with pytest.raises(AudioFileError, match="no samples|not a readable"):
        load_audio(tmp_path / "empty.wav")


def test_mat_files_need_the_named_variable(tmp_path):
    savemat(tmp_path / "a.mat", {"ecg": np.arange(50.0), "fs": np.array([[1000.0]])})
    x, sr = load_audio(tmp_path / "a.mat", mat_variable="ecg", mat_sample_rate=1000)
    assert sr == 1000 and x.shape == (1, 50)
    with pytest.raises(AudioFileError, match="no variable 'sig'"):
        load_audio(tmp_path / "a.mat", mat_variable="sig", mat_sample_rate=1000)
    only, _ = load_audio(tmp_path / "a.mat", mat_sample_rate=1000)  # a scalar `fs` is not a second signal
    np.testing.assert_array_equal(only, x)
    savemat(tmp_path / "b.mat", {"ecg": np.arange(50.0), "resp": np.arange(50.0), "fs": 1000.0})
    with pytest.raises(
        AudioFileError, match=r"holds 2 numeric array variables \(.*\); name the signal with data.mat_variable"
    ):
        load_audio(tmp_path / "b.mat", mat_sample_rate=1000)


def test_atomic_write_leaves_no_temp_files(tmp_path):
    write_audio_atomic(tmp_path / "out" / "a.wav", np.zeros((2, 10), np.float32), 8000)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.wav"]
    assert sf.info(tmp_path / "out" / "a.wav").channels == 2
