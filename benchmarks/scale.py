"""Training throughput: one process against Ray Train data-parallel workers, and the cost of Ray itself.

    python benchmarks/scale.py [--epochs 4] [--items 96] [--gpu | --gpu-only]

Each row is one `denoise-vc train` in a fresh subprocess on generated speech (subband_crn, the shipped
model's recipe at 2 s segments and a global batch of 12): items/s is the median over epochs after the first
of items trained / training seconds (validation excluded); "start-up" is the wall time before the first
epoch began (process start, data, and for Ray: cluster, controller and workers); memory is the peak RSS of
each process (`workers.json` for Ray workers) or, on GPU, its peak allocated GPU memory. With `--gpu`: one
GPU with and without AMP, and all visible GPUs data-parallel.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RECIPE = [
    "model=subband_crn",
    "loss=spectral",
    "data.segment_length=32000",
    "data.batch_size=12",
    "data.valid_items=4",
    "solver.progress=false",
    "solver.plot_every=0",
]


def run(name: str, overrides: list[str], threads: int, root: Path) -> dict:
    run_dir = root / name.replace(" ", "_").replace(",", "")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    code = (
        f"import resource, sys, torch; torch.set_num_threads({threads}); from denoise_vc.cli import main; "
        "code = main(sys.argv[1:]); print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); "
        "print('PEAK_GPU_MB', torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0); "
        "sys.exit(code)"
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", code, "train", f"run_dir={run_dir}", *overrides],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.monotonic() - started
    if done.returncode:
        raise SystemExit(f"{name}: failed\n{done.stderr[-2000:]}")
    history = json.loads((run_dir / "history.json").read_text())
    rates = [row["train_items_per_s"] for row in history[1:]] or [history[0]["train_items_per_s"]]
    epoch_seconds = sum(row["seconds"] for row in history)
    workers = run_dir / "workers.json"
    if workers.exists():
        memory = json.loads(workers.read_text())["peak_memory_mb"]
    else:
        peaks = dict(line.split() for line in done.stdout.splitlines() if line.startswith("PEAK_"))
        gpu = "device=cuda" in overrides
        memory = [float(peaks["PEAK_GPU_MB"]) if gpu else int(peaks["PEAK_RSS_KB"]) / 1024.0]
    return {
        "setup": name,
        "items_per_s": float(np.median(rates)),
        "startup_s": wall - epoch_seconds,
        "wall_s": wall,
        "memory_mb": memory,
    }


def cpu_setups(base: list[str], cpus: int) -> list[tuple[str, list[str], int]]:
    """One process on 1 and on all threads, and two Ray Train workers (of 1 and, with >= 4 CPUs, half the threads)."""
    cpu = [*base, "device=cpu"]
    setups = [
        ("1 process, 1 thread", cpu, 1),
        (f"1 process, {cpus} threads", cpu, cpus),
        ("Ray Train, 2 workers x 1 thread", [*cpu, "trainer.workers=2"], 1),
    ]
    if cpus >= 4:
        half = cpus // 2
        ray2 = [*cpu, "trainer.workers=2", f"trainer.cpus_per_worker={half}"]
        setups.append((f"Ray Train, 2 workers x {half} threads", ray2, half))
    return setups


def gpu_setups(base: list[str]) -> list[tuple[str, list[str], int]]:
    """One GPU in fp32 and under AMP, and every visible GPU on Ray Train (AMP) when there are several."""
    import torch

    setups = [
        ("1 GPU, fp32", [*base, "device=cuda", "solver.amp=false"], 4),
        ("1 GPU, AMP", [*base, "device=cuda", "solver.amp=true"], 4),
    ]
    gpus = torch.cuda.device_count()
    if gpus > 1:
        ray = [*base, f"trainer.workers={gpus}", "trainer.gpu=true", "solver.amp=true"]
        setups.append((f"Ray Train, {gpus} GPUs, AMP", ray, 4))
    return setups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--items", type=int, default=96, help="items per epoch (global)")
    parser.add_argument("--gpu", action="store_true", help="also one GPU (fp32, AMP) and all GPUs on Ray")
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--gpu-only", action="store_true", help="only the GPU rows (a short device lease)")
    args = parser.parse_args()
    base = [*RECIPE, f"solver.epochs={args.epochs}", f"data.items_per_epoch={args.items}"]
    setups = [] if args.gpu_only else cpu_setups(base, args.cpus)
    if args.gpu or args.gpu_only:
        setups += gpu_setups(base)
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, {args.items} items x {args.epochs} epochs")
    print("| setup | items/s | start-up s | wall s | peak memory per process (MB) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for name, overrides, threads in setups:
            row = run(name, overrides, threads, Path(folder))
            memory = ", ".join(f"{m:.0f}" for m in row["memory_mb"])
            print(
                f"| {row['setup']} | {row['items_per_s']:.1f} | {row['startup_s']:.1f} | {row['wall_s']:.1f} "
                f"| {memory} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
