"""Denoise audio files with an exported denoise-vc model.

Needs only torch, numpy and soundfile (see requirements.txt). Usage:

    python denoise.py noisy.wav denoised.wav
    python denoise.py in1.wav in2.flac --output-dir denoised/

Input of any length, sample rate and channel count; the output keeps all three. The signal is resampled
to the model's rate, cut into overlapping windows (each with context that is computed and discarded),
denoised window by window and cross-faded back together, exactly as `denoise-vc denoise` does.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

HERE = Path(__file__).resolve().parent


def resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Band-limited FFT resampling of (channels, time); exact for band-limited periodic signals."""
    if src == dst:
        return x
    n_in = x.shape[-1]
    n_out = max(1, int(round(n_in * dst / src)))
    spectrum = np.fft.rfft(x, axis=-1)
    bins = n_out // 2 + 1
    out = np.zeros(x.shape[:-1] + (bins,), dtype=complex)
    keep = min(bins, spectrum.shape[-1])
    out[..., :keep] = spectrum[..., :keep]
    return (np.fft.irfft(out, n_out, axis=-1) * (n_out / n_in)).astype(np.float32)


def window_weights(window: int, context: int, crossfade: int, last: bool = False) -> np.ndarray:
    """0 over the context, ramp up, 1, ramp down, 0; the last window of a file stays at 1 to its end."""
    w = np.zeros(window, dtype=np.float32)
    ramp = (np.arange(crossfade, dtype=np.float32) + 0.5) / crossfade
    w[context : context + crossfade] = ramp
    w[context + crossfade : window - context - crossfade] = 1.0
    w[window - context - crossfade : window - context] = ramp[::-1]
    if last:
        w[context + crossfade :] = 1.0
    return w


@torch.inference_mode()
def enhance(model, x: np.ndarray, window: int, context: int, crossfade: int, multiple: int) -> np.ndarray:
    """Overlap-add enhancement of (channels, time) at the model's rate; same shape out.

    Full windows advance by `hop`; the stretch left at the end goes through one window cut to its
    length (rounded up to a multiple the model takes), exactly as the package's streaming code does.
    """
    channels, length = x.shape
    hop = window - 2 * context - crossfade
    lead = context + crossfade
    total = lead + length
    padded = np.zeros((channels, total + window), dtype=np.float32)
    padded[:, lead:total] = x
    out = np.zeros_like(padded)
    weights, last_weights = window_weights(window, context, crossfade), window_weights(window, context, crossfade, True)
    start = 0
    while True:
        remaining = total - start
        if remaining > window - context - crossfade:
            size, w = window, weights
        elif remaining <= context and start > 0:
            break  # already covered with weight 1 by the previous window
        else:
            size = min(window, max(multiple, -(-remaining // multiple) * multiple))
            w = last_weights[:size]
        segment = np.zeros((channels, size), dtype=np.float32)
        segment[:, : min(size, remaining)] = padded[:, start : start + min(size, remaining)]
        for c in range(channels):
            y = model(torch.from_numpy(np.ascontiguousarray(segment[c]))[None, None])[0, 0].numpy()
            out[c, start : start + size] += y * w
        if size < window or remaining <= window - context - crossfade:
            break
        start += hop
    return out[:, lead:total]


def denoise_file(model, settings: dict, src: Path, dst: Path) -> None:
    data, rate = sf.read(str(src), dtype="float32", always_2d=True)
    if data.shape[0] == 0:
        raise ValueError(f"{src}: contains no samples")
    if not np.all(np.isfinite(data)):
        raise ValueError(f"{src}: contains NaN or Inf samples")
    x = resample(data.T, rate, settings["sample_rate"])
    y = enhance(model, x, settings["window"], settings["context"], settings["crossfade"], settings["multiple"])
    y = resample(y, settings["sample_rate"], rate)[:, : data.shape[0]]
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.partial{dst.suffix}")
    sf.write(str(tmp), np.clip(y.T, -1.0, 1.0), rate, subtype="FLOAT")
    tmp.replace(dst)


def main() -> int:
    parser = argparse.ArgumentParser(description="Denoise audio with an exported denoise-vc model.")
    parser.add_argument("inputs", nargs="+", help="input files; with two names and no --output-dir: IN OUT")
    parser.add_argument("--output-dir", help="write each input's denoised copy here")
    parser.add_argument("--model", default=str(HERE / "model.ts"))
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = json.loads((HERE / "settings.json").read_text())
    model = torch.jit.load(args.model, map_location="cpu").eval()
    if args.output_dir:
        pairs = [(Path(p), Path(args.output_dir) / Path(p).name) for p in args.inputs]
    elif len(args.inputs) == 2:
        pairs = [(Path(args.inputs[0]), Path(args.inputs[1]))]
    else:
        parser.error("give INPUT OUTPUT, or several inputs with --output-dir")
    failed = 0
    for src, dst in pairs:
        try:
            if dst.resolve() == src.resolve():
                raise ValueError(f"{src}: output would overwrite the input")
            denoise_file(model, settings, src, dst)
            print(f"{src} -> {dst}")
        except (ValueError, RuntimeError, OSError) as exc:  # soundfile raises RuntimeError subclasses
            failed += 1
            print(f"error: {exc}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
