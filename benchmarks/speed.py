"""Speed and memory: real-time factor of `denoise` per model, sample rate and thread count; training
step time per loss; peak resident memory. Each measurement runs in a fresh process so its peak RSS is
its own.

    python benchmarks/speed.py [--seconds 60] [--models wave_unet conv_ae ...]

RTF = processing seconds / audio seconds for chunked enhancement of an in-memory signal (the `denoise`
path without file I/O); model construction is excluded and timed separately.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import header, median_seconds  # noqa: E402


def _model(name: str, overrides=(), rate: int | None = None):
    """The default-config model, built for `rate` (models with STFT sizes in ms take it) or the data's rate."""
    from denoise_vc.config import compose_config
    from denoise_vc.solvers.factory import build_denoiser

    cfg = compose_config([f"model={name}", *overrides])
    return build_denoiser(cfg.model, 0, int(rate or cfg.data.sample_rate)).eval(), cfg


def measure_rtf(name: str, rate: int, threads: int, seconds: float) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    started = time.perf_counter()
    model, cfg = _model(name, rate=rate)
    build_s = time.perf_counter() - started
    from denoise_vc.data.synth import speech_like
    from denoise_vc.inference import WindowPlan, enhance_array

    inf = cfg.inference
    plan = WindowPlan.for_model(model, inf, rate)
    x = speech_like(seconds, rate, 0) + 0.01 * np.random.default_rng(0).standard_normal(int(seconds * rate))
    x = x.astype(np.float32)
    elapsed = median_seconds(lambda: enhance_array(model, x, plan, batch_windows=int(inf.batch_windows)), 3)
    return {"rtf": elapsed / seconds, "build_s": build_s}


def measure_step(loss_name: str, threads: int, batch: int, length: int) -> dict:
    import torch

    from denoise_vc.solvers.factory import build_denoise_loss

    torch.set_num_threads(threads)
    model, cfg = _model("wave_unet", [f"loss={loss_name}"])
    model.train()
    loss_fn = build_denoise_loss(cfg.loss, int(cfg.data.sample_rate))
    optimizer = torch.optim.Adam(model.parameters(), 3e-4)
    gen = torch.Generator().manual_seed(0)
    noisy, clean = (
        torch.randn(batch, 1, length, generator=gen) * 0.1,
        torch.randn(batch, 1, length, generator=gen) * 0.05,
    )

    def step():
        optimizer.zero_grad()
        loss_fn(model(noisy), clean).backward()
        optimizer.step()

    return {"step_s": median_seconds(step, 3)}


def _child(queue, fn, args):
    result = fn(*args)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(result)


def isolated(fn, *args) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, fn, args))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--models", nargs="+", default=None, help="default: every registered model")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--segment", type=int, default=16384)
    parser.add_argument("--skip-training", action="store_true", help="only the denoise RTF table")
    args = parser.parse_args()
    print(header("speed", 0))
    from denoise_vc.models import denoisers

    args.models = args.models or denoisers()

    print(f"\n## denoise real-time factor ({args.seconds:g} s of audio, chunked, median of 3)\n")
    print("| model | rate | threads | RTF | x real time | model build (s) | peak RSS (MB) |")
    print("|---|---|---|---|---|---|---|")
    for name in args.models:
        for rate in (16000, 1000):
            for threads in (1, 2):
                r = isolated(measure_rtf, name, rate, threads, args.seconds)
                print(
                    f"| {name} | {rate} | {threads} | {r['rtf']:.4f} | {1 / r['rtf']:.0f} | {r['build_s']:.2f} | "
                    f"{r['peak_rss_mb']:.0f} |",
                    flush=True,
                )

    if args.skip_training:
        return
    print(f"\n## training step, wave_unet default, batch {args.batch} x {args.segment} samples, 2 threads\n")
    print("| loss | step (s) | vs L1 | peak RSS (MB) |")
    print("|---|---|---|---|")
    base = None
    for loss in ("l1", "wavelet", "combined", "mrstft", "spectral"):
        r = isolated(measure_step, loss, 2, args.batch, args.segment)
        base = base or r["step_s"]
        print(f"| {loss} | {r['step_s']:.3f} | {r['step_s'] / base:.2f}x | {r['peak_rss_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
