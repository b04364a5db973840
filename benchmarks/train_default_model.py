"""Re-create the model shipped as `denoise_vc/pretrained/default.pth` (the one `denoise` uses without --checkpoint).

    python benchmarks/train_default_model.py [--minutes 15] [--run-dir runs/default_model] [--install] [key=value ...]

The shipped model is two such runs (NOTE.md): 15 minutes at the preset's lr 3e-3, then 15 minutes at lr 1e-3
from the first run's best (`--run-dir runs/default_model_cont --install solver.init_from=runs/default_model/
best.pth solver.lr=1.0e-3`).

Links the openly licensed training recordings of ../shared/data (real_data.py: LibriSpeech train-clean-100 and
VCTK p225-p227, CC BY 4.0; noise_open, CC0 / CC BY; rir, CC BY 4.0 / CC0; never the non-commercial noise, never
a standard test set) into RUN_DIR/data, trains `preset=real_speech` for `--minutes` of wall-clock time, scores
the best checkpoint on unseen speakers with unseen noise stretches, and with `--install` copies it and its card
(training data, licence, metrics, this command) into the package.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_data import SHARED, link_folder, open_noises, training_speech  # noqa: E402
from real_speech import RATE, ModelSystem, mixtures, score  # noqa: E402

from denoise_vc.checkpoint import load_checkpoint  # noqa: E402
from denoise_vc.cli import main as cli  # noqa: E402
from denoise_vc.pretrained import HERE  # noqa: E402

LEVELS = (0, 5, 10, 15)


def card_metrics(checkpoint: Path, items: int) -> dict[str, dict[str, float]]:
    """Mean PESQ wb / STOI / SI-SDR of the model and of its input per SNR (unseen speakers and noise stretches)."""
    model = ModelSystem(str(checkpoint))
    out = {}
    for level in LEVELS:
        rows = [
            (score(model(noisy, RATE), clean, False), score(noisy, clean, False))
            for clean, noisy in mixtures(open_noises(), items, level, 0, True)
        ]
        out[f"{level} dB"] = {
            **{k: round(float(np.mean([r[0][k] for r in rows])), 3) for k in ("pesq", "stoi", "si_sdr")},
            **{f"{k}_noisy": round(float(np.mean([r[1][k] for r in rows])), 3) for k in ("pesq", "stoi", "si_sdr")},
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=15.0, help="wall-clock training budget (2 threads)")
    parser.add_argument("--run-dir", default="runs/default_model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--items", type=int, default=12, help="test mixtures per SNR for the card")
    parser.add_argument("--install", action="store_true", help="copy the result into denoise_vc/pretrained/")
    parser.add_argument("overrides", nargs="*", help="extra key=value overrides for the training run")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    run_dir = Path(args.run_dir).resolve()
    data = run_dir / "data"
    link_folder(training_speech(), data / "clean")
    link_folder(open_noises(), data / "noise")
    link_folder(sorted((SHARED / "rir").glob("*.flac")), data / "rir")
    command = [
        "train",
        "preset=real_speech",
        f"data.root={data}",
        f"run_dir={run_dir}",
        f"solver.max_minutes={args.minutes}",
        "solver.progress=false",
        *args.overrides,
    ]
    print("denoise-vc " + " ".join(command))
    before = resource.getrusage(resource.RUSAGE_SELF)
    code = cli(command)
    if code:
        sys.exit(code)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_minutes = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / 60.0
    best = run_dir / "best.pth"
    ckpt = load_checkpoint(best)
    model_cfg = ckpt["config"]["model"]
    metrics = card_metrics(best, args.items)
    system = ModelSystem(str(best))
    card = {
        "description": "speech denoiser for 16 kHz recordings: compact STFT-domain model with a complex ratio mask",
        "model": model_cfg["name"],
        "parameters": system.parameters,
        "sample_rate": int(ckpt["meta"]["sample_rate"]),
        "causal": bool(model_cfg.get("causal", False)),
        "latency": f"{model_cfg.get('win_ms')} ms (one STFT window)"
        if model_cfg.get("causal")
        else "non-causal: each 5 s inference window uses its whole context",
        "training_data": "LibriSpeech train-clean-100 (137 speakers) + VCTK p225-p227 (CC BY 4.0); noise_open "
        "first 80 % of each file (CC0 / CC BY); rir (CC BY 4.0 / CC0) + 16 simulated rooms; SNR -5..20 dB",
        "licence": "weights trained only on CC BY 4.0 / CC0 / public-domain data; attribution: LibriSpeech, VCTK, "
        "OpenAIR, Speech Commands, freesound authors (authors and licence of each recording: the PROVENANCE.md "
        "files of the data folders the recipe reads)",
        "training": f"{ckpt['meta'].get('epoch')} epochs, {cpu_minutes:.1f} CPU-minutes on {args.threads} threads"
        + (f", from {ckpt['config']['solver']['init_from']}" if ckpt["config"]["solver"].get("init_from") else ""),
        "recipe": "python benchmarks/train_default_model.py " + " ".join(sys.argv[1:]),
        "metrics": metrics,
    }
    print(json.dumps(card, indent=1))
    if args.install:
        shutil.copyfile(best, HERE / "default.pth")
        (HERE / "default.json").write_text(json.dumps(card, indent=1) + "\n")
        print(f"installed {HERE / 'default.pth'} ({(HERE / 'default.pth').stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
