"""A 30-minute file is denoised in bounded memory (streamed, resampled on the fly), in a fresh process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import soundfile as sf
from bad_inputs import tiny_checkpoint, write_long_wav
from memory import BOUND_MB_PER_CHANNEL  # why this bound: see there


def test_thirty_minutes_at_8khz_stream_through_a_16khz_model_in_bounded_memory(tmp_path):
    long = write_long_wav(tmp_path / "long.wav", minutes=30, rate=8000)
    checkpoint = tiny_checkpoint(tmp_path / "tiny.pth")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        str(Path(__file__).with_name("memory.py")),
        str(checkpoint),
        str(long),
        str(tmp_path / "out"),
    ]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["audio_s"] == 1800.0
    assert result["float32_mb"] * 2 > 100  # 16 kHz inside the model: 110 MiB as float32
    assert result["increase_mb"] < BOUND_MB_PER_CHANNEL, result
    out = sf.info(tmp_path / "out" / "long" / "long.wav")
    assert (out.frames, out.samplerate, out.channels) == (sf.info(long).frames, 8000, 1)
    assert not [p for p in (tmp_path / "out").rglob(".*")]
