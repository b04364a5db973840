"""The GPU check (a few minutes on one GPU): every registered model trains under AMP, sweeps pack trials onto
a GPU, data-parallel training runs on the visible GPUs, and `denoise` keeps up with a 10-minute file.

    python benchmarks/gpu_check.py [--out gpu_check.json]           # on a GPU machine
    python benchmarks/gpu_check.py --device cpu --quick             # a smoke run of the script itself

1. AMP: for each registered model, `--steps` real Solver training steps (its own loss path, GradScaler,
   skipped-step accounting) in fp32 and under AMP: every loss finite, median step time, AMP speed-up, peak
   GPU memory (a model that refuses AMP, StarGAN with its two optimisers, keeps its fp32 row).
2. A 4-trial Ray Tune sweep with tune.resources.gpu=0.25: the trials' running intervals must overlap.
3. Data-parallel Ray Train on all visible GPUs (trainer.gpu=true; NCCL), items/s.
4. `denoise-vc denoise` of a 10-minute generated recording with the shipped model: real-time factor.
Prints one table per part and writes every figure to `--out` (JSON).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from denoise_vc.cli import main as cli
from denoise_vc.config import compose_config, resolve_paths
from denoise_vc.errors import ConfigError
from denoise_vc.models import MODELS

SMALL = {  # overrides that keep each model's step in the tens of milliseconds on a GPU
    "diffusion": ["model.levels=6"],
    "transformer_unet": [],
    "wave_unet": [],
}
VC_MODELS = {  # the VC models train on the built-in voices: parallel pairs for wgmm, speaker folders for StarGAN
    "wgmm_vc": [],
    "stargan_vc": ["vc/model@model=stargan_vc", "data.speakers=builtin"],
}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed_step(solver, batch, device: str, losses: list[float]) -> float:
    """One optimiser step through the solver's own loss and grad scaler; its seconds."""
    _sync(device)
    started = time.perf_counter()
    solver.optimizer.zero_grad(set_to_none=True)
    loss = solver.train_loss(batch)
    solver.scaler.scale(loss).backward()
    solver.scaler.step(solver.optimizer)
    solver.scaler.update()
    _sync(device)
    losses.append(float(loss.detach()))
    return time.perf_counter() - started


def amp_steps(name: str, device: str, amp: bool, steps: int, root: Path, quick: bool) -> dict:
    """Median step time, peak memory and finiteness of `steps` Solver training steps of one model."""
    if name in VC_MODELS:
        from denoise_vc.solvers.vc import build_vc_solver

        utterances = 4 if quick else 16
        cfg = compose_config(
            [
                f"run_dir={root / name / str(amp)}",
                f"data.prepared_dir={root / name / 'prep'}",
                *VC_MODELS[name],
                f"data.builtin.utterances.train={utterances}",
                "data.builtin.utterances.valid=1",
                "data.builtin.utterances.test=1",
                f"device={device}",
                f"solver.amp={str(amp).lower()}",
                "solver.progress=false",
            ],
            config_name="vc",
        )
        solver = build_vc_solver(cfg)
    else:
        from denoise_vc.solvers.factory import build_solver

        length = 4096 if quick else 32000
        cfg = resolve_paths(
            compose_config(
                [
                    f"run_dir={root / name / str(amp)}",
                    f"model={name}",
                    *SMALL.get(name, []),
                    f"data.segment_length={length}",
                    "data.batch_size=8",
                    f"data.items_per_epoch={8 * steps}",
                    "data.valid_items=2",
                    f"device={device}",
                    f"solver.amp={str(amp).lower()}",
                    "solver.progress=false",
                    "loss=spectral" if name == "subband_crn" else "loss=l1",
                ]
            )
        )
        solver = build_solver(cfg)
    losses, times = [], []
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    solver.model.train()
    while len(times) < steps:  # a small VC corpus holds fewer batches than `steps`: go round again
        for batch in solver.train_loader():
            if len(times) >= steps:
                break
            times.append(_timed_step(solver, batch, device, losses))
    return {
        "model": name,
        "amp": amp,
        "steps": len(times),
        "finite": bool(np.all(np.isfinite(losses))),
        "step_ms": 1000.0 * float(np.median(times[1:] or times)),  # the first step pays for kernel selection
        "peak_mb": torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else float("nan"),
    }


def sweep_overlap(root: Path, device: str, quick: bool) -> dict:
    """Four trials at a quarter GPU each: how many ran at the same time."""
    run = root / "sweep"
    gpu = ["tune.resources.gpu=0.25"] if device.startswith("cuda") else ["tune.num_gpus=1", "tune.resources.gpu=0.25"]
    code = cli(
        [
            "tune",
            f"run_dir={run}",
            "tune=small",
            "tune.num_samples=4",
            "tune.scheduler=fifo",
            "tune.resources.cpu=0.5",
            *gpu,
            "solver.epochs=2",
            "data.items_per_epoch=32" if quick else "data.items_per_epoch=256",
            "data.segment_length=4096" if quick else "data.segment_length=16000",
            "model.levels=4",
            "model.channels_interval=8",
        ]
    )
    with open(run / "trials.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    spans = []
    for row in rows:
        reports = [json.loads(line) for line in open(Path(row["path"]) / "result.json")]
        spans.append((reports[0]["started_at"], reports[-1]["timestamp"]))
    most = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans) if spans else 0
    return {"exit_code": code, "trials": len(rows), "max_running_at_once": most}


def data_parallel(root: Path, device: str, quick: bool) -> dict:
    """Ray Train on every visible GPU (or two CPU workers for the smoke run)."""
    gpus = torch.cuda.device_count() if device.startswith("cuda") else 0
    workers = max(gpus, 1) if gpus else 2
    run = root / "ddp"
    code = cli(
        [
            "train",
            f"run_dir={run}",
            "model=subband_crn",
            "loss=spectral",
            f"trainer.workers={workers}",
            f"trainer.gpu={'true' if gpus else 'false'}",
            "solver.epochs=2",
            "data.items_per_epoch=48" if quick else "data.items_per_epoch=1536",
            "data.segment_length=4096" if quick else "data.segment_length=32000",
            "data.batch_size=12" if quick else f"data.batch_size={24 * workers}",
            "data.valid_items=4",
            "solver.progress=false",
            "solver.plot_every=0",
        ]
    )
    history = json.loads((run / "history.json").read_text())
    return {
        "exit_code": code,
        "workers": workers,
        "backend": "nccl" if gpus else "gloo",
        "items_per_s": history[-1]["train_items_per_s"],
    }


def long_file_rtf(root: Path, device: str, quick: bool) -> dict:
    """`denoise` of a generated 10-minute noisy recording (1 minute in the smoke run) with the shipped model."""
    from denoise_vc.pretrained import EXAMPLE_NOISY

    minutes = 1 if quick else 10
    example, rate = sf.read(EXAMPLE_NOISY, dtype="float32")
    signal = np.tile(example, int(np.ceil(minutes * 60 * rate / len(example))))[: minutes * 60 * rate]
    source = root / "long.wav"
    sf.write(source, signal, rate)
    started = time.perf_counter()
    code = cli(["denoise", str(source), "-o", str(root / "long_out"), "--device", device])
    seconds = time.perf_counter() - started
    return {"exit_code": code, "audio_s": len(signal) / rate, "seconds": seconds, "rtf": seconds * rate / len(signal)}


def amp_pair(name: str, args: argparse.Namespace, root: Path) -> dict:
    """fp32 and AMP steps of one model, printed as a table row."""
    fp32 = amp_steps(name, args.device, False, args.steps, root, args.quick)
    try:
        amp = amp_steps(name, args.device, True, args.steps, root, args.quick)
    except ConfigError as refusal:  # a model that refuses AMP (StarGAN's two optimisers) keeps its fp32 row
        print(
            f"| {name} | {fp32['step_ms']:.1f} | refused | - | {fp32['peak_mb']:.0f} / - | {fp32['finite']} |",
            flush=True,
        )
        return {"fp32": fp32, "amp_refused": str(refusal)}
    print(
        f"| {name} | {fp32['step_ms']:.1f} | {amp['step_ms']:.1f} | {fp32['step_ms'] / amp['step_ms']:.2f}x | "
        f"{fp32['peak_mb']:.0f} / {amp['peak_mb']:.0f} | {fp32['finite'] and amp['finite']} |",
        flush=True,
    )
    return {"fp32": fp32, "amp": amp}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the script on a CPU")
    parser.add_argument("--out", default="gpu_check.json")
    parser.add_argument("--parts", default="amp,sweep,ddp,denoise")
    parser.add_argument("--models", default=",".join(sorted(MODELS)), help="the models of the AMP part")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("no CUDA GPU here: run this on a GPU machine, or use --device cpu --quick to check the script")
    parts = set(args.parts.split(","))
    report: dict = {
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "torch": torch.__version__,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    began = time.monotonic()
    out = Path(args.out)

    def record(key: str, run) -> None:
        """One part's figures, or its error: a failing part must not cost the others (a lease is short)."""
        try:
            report[key] = run()
        except Exception as error:  # noqa: BLE001 - the report names it and the next part runs
            report[key] = {"error": f"{type(error).__name__}: {error}"}
        print(f"{key}:", report[key], flush=True)
        report["total_s"] = time.monotonic() - began
        out.write_text(json.dumps(report, indent=1))

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        if "amp" in parts:
            print("| model | fp32 ms/step | AMP ms/step | AMP speed-up | peak MB fp32 / AMP | finite |")
            print("|---|---|---|---|---|---|")
            for name in args.models.split(","):
                record(f"amp_{name}", lambda name=name: amp_pair(name, args, root))
        if "sweep" in parts:
            record("sweep", lambda: sweep_overlap(root, args.device, args.quick))
        if "ddp" in parts:
            record("data_parallel", lambda: data_parallel(root, args.device, args.quick))
        if "denoise" in parts:
            record("denoise", lambda: long_file_rtf(root, args.device, args.quick))
    print(f"total {report['total_s']:.0f} s; wrote {out}")


if __name__ == "__main__":
    main()
