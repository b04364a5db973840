"""DNSMOS P.835: a no-reference speech quality score (SIG speech, BAK background, OVRL overall, each 1-5).

The models are Microsoft's DNSMOS ONNX networks as shipped inside the `speechmos` wheel (MIT licence:
`dnsmos_models/sig_bak_ovr.onnx` for P.835 and `model_v8.onnx` for P.808), run with onnxruntime on the CPU;
nothing is downloaded. Input is mixed to mono, resampled to 16 kHz (soxr HQ) and clipped to [-1, 1]; clips
shorter than the networks' 9.01 s input are repeated to that length and longer ones scored in 9.01 s windows at
a 1 s hop and averaged, as speechmos (and the DNS Challenge's reference script) does.

Reference: C. K. A. Reddy, V. Gopal, R. Cutler, "DNSMOS P.835: a non-intrusive perceptual objective speech
quality metric to evaluate noise suppressors", ICASSP 2022.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from denoise_vc.audio import resample
from denoise_vc.errors import DenoiseVCError

RATE = 16000
MODEL_FILES = ("sig_bak_ovr.onnx", "model_v8.onnx")  # P.835 (SIG, BAK, OVRL) and P.808, in speechmos/dnsmos_models


@lru_cache(maxsize=1)
def _scorer():
    """speechmos's DNSMOS scorer on its shipped models, loaded once; a one-line error when anything is missing."""
    try:
        import onnxruntime  # noqa: F401  (speechmos needs it but does not declare it)
        from speechmos import dnsmos as speechmos_dnsmos
    except ImportError as exc:
        raise DenoiseVCError(
            f"DNSMOS needs the speechmos and onnxruntime packages ({exc}); pip install speechmos onnxruntime"
        ) from None
    folder = Path(speechmos_dnsmos.__file__).resolve().parent / "dnsmos_models"
    paths = [folder / name for name in MODEL_FILES]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DenoiseVCError(
            f"{missing[0]}: DNSMOS model file missing from the speechmos package; "
            "reinstall it (pip install --force-reinstall speechmos)"
        )
    try:
        return speechmos_dnsmos.DNSMOS(str(paths[0]), str(paths[1]))
    except Exception as exc:  # onnxruntime raises its own types for unreadable models
        raise DenoiseVCError(f"{folder}: cannot load the DNSMOS models ({type(exc).__name__}: {exc})") from None


def check_available() -> None:
    """Raise the one-line error now (before any denoising) if DNSMOS cannot run."""
    _scorer()


def dnsmos(x: np.ndarray, sample_rate: int) -> dict[str, float]:
    """{'sig', 'bak', 'ovrl'} of a (time,) or (channels, time) signal at any rate."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=0)
    if x.size == 0:
        raise DenoiseVCError("DNSMOS: the signal has no samples")
    x = np.clip(resample(x, int(sample_rate), RATE), -1.0, 1.0)
    scores = _scorer()(x, RATE, False)
    return {"sig": float(scores["sig_mos"]), "bak": float(scores["bak_mos"]), "ovrl": float(scores["ovrl_mos"])}
