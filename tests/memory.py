"""Peak memory of `denoise-vc denoise` on a long file, measured in a fresh process.

Run as `python tests/memory.py CHECKPOINT LONG_FILE OUT_DIR`: it first denoises one
second of audio (so imports, the model and allocator pools are in place), then the long file, and
prints JSON with the peak resident memory before and after. The difference is what the long file
cost, which streaming keeps to a few windows and read blocks whatever the file's length.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import soundfile as sf
from bad_inputs import tone

from denoise_vc.cli import main as cli

# Streaming holds one 10 s read block, a few 5 s windows and one window's activations per channel (the
# channels of a file run as one batch), whatever the file's length. The tiny test model needs about 15 MiB
# per channel; 32 MiB is under a third of the 110 MiB that 30 minutes take as float32 at 16 kHz, so a code
# path that holds the whole signal once cannot pass.
BOUND_MB_PER_CHANNEL = 32


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far: VmHWM, which starts afresh at exec. (ru_maxrss
    does not: a child keeps its parent's peak at fork time, which would hide the child's own.)"""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)


def measure(checkpoint: Path, long_file: Path, out: Path) -> dict[str, float]:
    info = sf.info(long_file)
    warm = out / "warmup.wav"
    warm.parent.mkdir(parents=True, exist_ok=True)
    sf.write(warm, tone(1.0, info.samplerate, info.channels), info.samplerate)
    if cli(["denoise", str(warm), "-o", str(out / "warm"), "--checkpoint", str(checkpoint)]) != 0:
        raise SystemExit("warm-up denoise failed")
    before = peak_rss_mb()
    started = time.perf_counter()
    if cli(["denoise", str(long_file), "-o", str(out / "long"), "--checkpoint", str(checkpoint)]) != 0:
        raise SystemExit("long denoise failed")
    return {
        "seconds": time.perf_counter() - started,
        "audio_s": info.frames / info.samplerate,
        "peak_before_mb": before,
        "peak_after_mb": peak_rss_mb(),
        "increase_mb": peak_rss_mb() - before,
        "float32_mb": info.frames * info.channels * 4 / 2**20,
    }


if __name__ == "__main__":
    print(json.dumps(measure(*map(Path, sys.argv[1:4]))))
