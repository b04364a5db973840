"""Does the VC back-end really convert, and does denoising first help? Built-in and espeak-ng corpora.

This is the Griffin-Lim (log-mel) path of issue 6. The comparison with the joint-density GMM peer on these same
corpora (and on VCC 2016), with `vocoder=world`, is benchmarks/vc_real.py --pairs builtin espeak SF1:TF1 ...

For each parallel corpus: train the default wGMM VC model for a fixed wall-clock budget (a subprocess, so its
peak RSS is measured alone), then on the held-out test pairs report median MCD (WORLD mel-cepstra c1-c24,
DTW), F0 RMSE (cents), F0 correlation and V/UV error against the target speaker for
  vocoded target->target    the target's own mel through Griffin-Lim (the floor the vocoder leaves)
  source->target            the unconverted source (what "no conversion" scores)
  converted->target         convert(clean source)
  noisy conv->target        convert(source + 1.0 x real noise)           (noise scaled to the source's RMS: 0 dB)
  denoised conv->target     convert(denoise(source + 1.0 x real noise))
Real noises: ../shared/data/noise (see PROVENANCE.md), one random recording and offset per utterance, cut
only from the TEST stretch of each recording (its last 20 %, NOISE_SPLIT).
Denoiser (--denoiser-data):
  generated  the default wave_unet trained here on generated speech and generated noises (it never hears the
             real noises), unless --denoiser gives a checkpoint;
  matched    per corpus, a wave_unet trained (fine-tuned from --denoiser when given) on that corpus's
             TRAINING-split clean source utterances mixed with the real noises, `data.split_by=time` with
             NOISE_SPLIT: it trains on the first 70 % of every noise recording and validates on the next 10 %,
             so neither the test utterances nor the test noise stretches are ever heard in training.
--finetune-minutes M (> 0): the VC model is then fine-tuned for M minutes (solver.init_from) with the package's
`data.front_end`: its training/validation sources are the clean sources AND denoise(source + real noise from the
noises' training stretch) with the clean targets, so it has seen denoiser output. Rows "ft converted",
"ft noisy conv" and "denoised conv" then use that model (the verdict compares the last two: one VC model, with
and without the front-end); "converted", "noisy conv" (and "generic-denoised conv": the --denoiser starting
point) keep the clean-trained one.

    python benchmarks/vc.py --vc-minutes 8 --denoiser-minutes 5       # built-in + espeak-ng corpora
    python benchmarks/vc.py --reuse-runs --denoiser D.pth             # same VC models, another denoiser
    python benchmarks/vc.py --reuse-runs --denoiser D.pth --denoiser-data matched   # fine-tune D per corpus
    python benchmarks/vc.py --reuse-runs --denoiser D.pth --denoiser-data matched --denoiser-minutes 12 \
        --finetune-minutes 6        # the measured pipeline in which denoising first wins (D: 30-min generated)
The espeak-ng corpus needs the espeak-ng program: `apt-get update && apt-get install -y espeak-ng`
(`--install-espeak` runs exactly that first).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, header  # noqa: E402

from denoise_vc.audio import list_audio_files, load_audio, resample, write_audio_atomic  # noqa: E402
from denoise_vc.config import apply_overrides  # noqa: E402
from denoise_vc.data.mixing import mix  # noqa: E402
from denoise_vc.vc.corpus import build_pairs  # noqa: E402
from denoise_vc.vc.pipeline import Converter, evaluate_pairs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOISE_SPLIT = {"valid": 0.1, "test": 0.2}  # time fractions of every noise recording: train first, test last
ESPEAK_VOICES = {"source": ("en+m3", 38, 145), "target": ("en+f2", 62, 170)}  # voice, pitch 0-99, words/min
SUBJECTS = [
    "the old captain",
    "a young painter",
    "my neighbour",
    "the tired farmer",
    "our new teacher",
    "the quiet child",
    "a clever doctor",
    "the tall singer",
]
VERBS = ["carried", "painted", "found", "sold", "cleaned", "watched", "borrowed", "mended"]
OBJECTS = [
    "a heavy wooden box",
    "the broken garden gate",
    "seven yellow apples",
    "an old silver watch",
    "the small red boat",
    "a bright blue kite",
    "the long iron chain",
    "some fresh brown bread",
]
ENDINGS = [
    "before the rain began",
    "near the busy market",
    "on a cold winter morning",
    "after a long day",
    "while the band was playing",
    "beside the river",
    "in the evening light",
    "without saying a word",
]


def sentences(count: int, seed: int) -> list[str]:
    """Distinct generated sentences (subject verb object ending), with a comma pause in half of them."""
    rng = np.random.default_rng(seed)
    seen, out = set(), []
    while len(out) < count:
        parts = tuple(int(rng.integers(8)) for _ in range(4))
        if parts in seen:
            continue
        seen.add(parts)
        s, v, o, e = parts
        comma = "," if rng.random() < 0.5 else ""
        out.append(f"{SUBJECTS[s].capitalize()} {VERBS[v]} {OBJECTS[o]}{comma} {ENDINGS[e]}.")
    return out


def espeak_corpus(folder: Path, count: int, seed: int) -> Path:
    """source/NNN.wav and target/NNN.wav: two espeak-ng voices (pitch, speed) saying the same sentences."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SystemExit("espeak-ng not found: apt-get update && apt-get install -y espeak-ng (or --install-espeak)")
    for i, text in enumerate(sentences(count, seed)):
        for side, (voice, pitch, speed) in ESPEAK_VOICES.items():
            path = folder / side / f"{i:03d}.wav"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                subprocess.run(
                    [exe, "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", str(path), text], check=True
                )
    return folder


def cli(args: list[str], log: Path) -> tuple[float, int]:
    """Run `denoise-vc ARGS` in a fresh process; returns (seconds, peak RSS in MiB of that process)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    started = time.monotonic()
    with open(log, "w") as handle:
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from denoise_vc.cli import main; r = main(sys.argv[1:]); "
                "import resource; print('maxrss_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(r)",
                *args,
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"denoise-vc {' '.join(args[:1])} failed, see {log}")
    rss = [int(line.split()[1]) for line in log.read_text().splitlines() if line.startswith("maxrss_kib")]
    return seconds, (rss[-1] // 1024 if rss else -1)


def real_noises(rate: int) -> list[np.ndarray]:
    """The test stretch (last NOISE_SPLIT["test"] of the samples) of every real noise recording: the same
    boundary as data.split_by=time, so a matched denoiser trained with NOISE_SPLIT never hears it."""
    stretches = []
    for f in list_audio_files(SHARED_DATA / "noise"):
        x = load_audio(f, rate)[0][0]
        stretches.append(x[len(x) - int(round(NOISE_SPLIT["test"] * len(x))) :])
    return stretches


def noisy_transform(noises: list[np.ndarray], seed: int, gain: float):
    """source -> source + gain * (real noise cut at a random offset, scaled to the source's RMS)."""

    def add(wave: np.ndarray, rate: int, index: int) -> np.ndarray:
        rng = np.random.default_rng([seed, index])
        noise = resample(noises[int(rng.integers(len(noises)))], 16000, rate)
        if len(noise) < len(wave):
            noise = np.tile(noise, len(wave) // len(noise) + 1)
        start = int(rng.integers(0, len(noise) - len(wave) + 1))
        segment = noise[start : start + len(wave)].astype(np.float32)
        segment *= np.sqrt(np.mean(wave**2)) / (np.sqrt(np.mean(segment**2)) + 1e-12)
        return mix(wave, segment, gain=gain)

    return add


def train_corpus(name: str, overrides: list[str], out: Path, minutes: float, seed: int, reuse: bool) -> dict:
    """vc-prepare + vc-train in subprocesses; with `reuse`, an earlier run's model and figures are kept."""
    run_dir, prep = out / name / "run", out / name / "prepared"
    facts_path = out / name / "train_facts.json"
    if reuse and (run_dir / "best.pth").exists():
        print(f"# {name}: reusing the VC model trained by an earlier run in {run_dir}")
        unknown = {"prepare_s": float("nan"), "train_s": float("nan"), "peak_rss_mib": -1}
        return json.loads(facts_path.read_text()) if facts_path.exists() else unknown
    common = [f"data.prepared_dir={prep}", f"seed={seed}", *overrides]
    prep_s, _ = cli(["vc-prepare", *common], out / f"{name}_prepare.log")
    train_s, rss = cli(
        [
            "vc-train",
            f"run_dir={run_dir}",
            f"solver.max_minutes={minutes}",
            "solver.epochs=100000",
            "solver.progress=false",
            *common,
        ],
        out / f"{name}_train.log",
    )
    facts = {"prepare_s": prep_s, "train_s": train_s, "peak_rss_mib": rss}
    facts_path.write_text(json.dumps(facts))
    return facts


def train_denoiser(log: Path, run_dir: Path, minutes: float, seed: int, extra: list[str]) -> float:
    """`denoise-vc train` for a wall-clock budget in a subprocess; returns its seconds."""
    seconds, _ = cli(
        [
            "train",
            f"run_dir={run_dir}",
            f"solver.max_minutes={minutes}",
            "solver.epochs=100000",
            "solver.progress=false",
            "solver.plot_every=0",
            f"seed={seed}",
            *extra,
        ],
        log,
    )
    return seconds


def matched_denoiser(name: str, pairs: list, out: Path, args: argparse.Namespace, init: Path | None) -> Path:
    """A denoiser for this corpus: its training-split clean sources + the real noises' training stretches."""
    run_dir, clean_dir = out / name / "denoiser", out / name / "denoiser_clean"
    if args.reuse_runs and (run_dir / "best.pth").exists():
        print(f"# {name}: reusing the matched denoiser in {run_dir}")
        return run_dir / "best.pth"
    for pair in pairs:
        if pair.split == "train":
            write_audio_atomic(clean_dir / f"{pair.name}.wav", *pair.source())
    split = ",".join(f"{k}:{v}" for k, v in NOISE_SPLIT.items())
    extra = [
        "data=folder",
        f"data.clean={clean_dir}",
        f"data.noise={SHARED_DATA / 'noise'}",
        "data.split_by=time",
        f"data.split={{{split}}}",
        *([f"solver.init_from={init}"] if init else []),
    ]
    seconds = train_denoiser(out / f"{name}_denoiser_train.log", run_dir, args.denoiser_minutes, args.seed, extra)
    print(f"# {name}: matched denoiser trained {seconds / 60:.1f} min" + (f" from {init}" if init else ""))
    return run_dir / "best.pth"


def finetune_vc(name: str, overrides: list[str], out: Path, args: argparse.Namespace, denoiser: Path) -> Path:
    """Fine-tune the corpus's VC model with `data.front_end` (its train and valid sources also noisy at --gain,
    noise from the training stretches, then cleaned by `denoiser`); returns the new run dir."""
    run_dir, prep, noise_dir = out / name / "finetuned", out / name / "finetune_prep", out / name / "finetune_noise"
    if args.reuse_runs and (run_dir / "best.pth").exists():
        print(f"# {name}: reusing the fine-tuned VC model in {run_dir}")
        return run_dir
    for f in list_audio_files(SHARED_DATA / "noise"):
        x = load_audio(f, 16000)[0][0]
        stretch = x[: len(x) - int(round((NOISE_SPLIT["valid"] + NOISE_SPLIT["test"]) * len(x)))]
        write_audio_atomic(noise_dir / f"{f.stem}.wav", stretch, 16000, subtype="FLOAT")
    snr_db = -20.0 * np.log10(args.gain)  # the gain scales noise cut to the source's RMS
    seconds, _ = cli(
        [
            "vc-train",
            *overrides,
            f"data.front_end.denoiser={denoiser}",
            f"data.front_end.noise={noise_dir}",
            f"data.front_end.snr_db=[{snr_db:.3f},{snr_db:.3f}]",
            f"data.prepared_dir={prep}",
            f"run_dir={run_dir}",
            f"solver.init_from={out / name / 'run' / 'best.pth'}",
            "solver.lr=3e-4",
            "solver.warmup_steps=50",
            f"solver.max_minutes={args.finetune_minutes}",
            "solver.epochs=100000",
            "solver.progress=false",
            f"seed={args.seed}",
        ],
        out / f"{name}_finetune.log",
    )
    print(f"# {name}: VC fine-tuned {seconds / 60:.1f} min on clean + denoised training sources")
    return run_dir


def run_corpus(name: str, overrides: list[str], out: Path, args: argparse.Namespace, denoiser: Path | None) -> dict:
    seed, gain = args.seed, args.gain
    run_dir, prep = out / name / "run", out / name / "prepared"
    facts = train_corpus(name, overrides, out, args.vc_minutes, seed, args.reuse_runs)
    history = json.loads((run_dir / "history.json").read_text())
    manifest = json.loads((prep / "manifest.json").read_text())
    n_train = len(manifest["splits"]["train"])
    speed = len(history) * n_train / sum(row["seconds"] for row in history)
    plain = Converter(run_dir / "best.pth")
    cfg = apply_overrides(plain.cfg, [])
    every = build_pairs(cfg.data, int(cfg.seed))
    pairs = [p for p in every if p.split == "test"]
    add_noise = noisy_transform(real_noises(16000), seed, gain)
    started = time.monotonic()
    clean = evaluate_pairs(plain, pairs, vocoded=True)
    noisy = evaluate_pairs(plain, pairs, transform=add_noise)["converted"]
    rows = {"vocoded target": clean["vocoded"], "source": clean["source"], "converted": clean["converted"]}
    rows["noisy conv"] = noisy
    if args.denoiser_data == "matched":
        if denoiser is not None:  # the starting point, scored too, so the gain of matching shows
            generic = Converter(run_dir / "best.pth", denoiser)
            rows["generic-denoised conv"] = evaluate_pairs(generic, pairs, transform=add_noise)["converted"]
        denoiser = matched_denoiser(name, every, out, args, denoiser)
    if args.finetune_minutes > 0:
        run_dir = finetune_vc(name, overrides, out, args, denoiser)
        plain = Converter(run_dir / "best.pth")
        pairs = [p for p in build_pairs(apply_overrides(plain.cfg, []).data, int(cfg.seed)) if p.split == "test"]
        clean = evaluate_pairs(plain, pairs)
        rows = {**rows, "ft converted": clean["converted"]}
        rows["ft noisy conv"] = evaluate_pairs(plain, pairs, transform=add_noise)["converted"]
    with_denoiser = Converter(run_dir / "best.pth", denoiser)
    rows["denoised conv"] = evaluate_pairs(with_denoiser, pairs, transform=add_noise)["converted"]
    front = front_end_rows(pairs, add_noise, with_denoiser)
    eval_s = time.monotonic() - started
    example = out / name / "examples"
    source, rate = pairs[0].source()
    write_audio_atomic(example / "source.wav", source, rate)
    write_audio_atomic(example / "target.wav", *pairs[0].target())
    write_audio_atomic(example / "converted.wav", plain.convert(source, rate), plain.sample_rate)
    best = min(history, key=lambda row: row["valid_mel_l1"])
    return {
        "rows": rows,
        "front_end": front,
        "pairs": {"train": n_train, "test": len(pairs)},
        "epochs": len(history),
        "steps": history[-1]["step"],
        "best_valid_mel_l1": best["valid_mel_l1"],
        **facts,
        "utt_per_s": speed,
        "eval_s": eval_s,
    }


def front_end_rows(pairs: list, add_noise, converter: Converter) -> dict[str, dict[str, float]]:
    """Diagnostics of the front-end alone: noisy and denoised source against the clean source."""
    from denoise_vc.metrics import si_sdr
    from denoise_vc.vc.features import clean_wave
    from denoise_vc.vc.metrics import score_conversion, summarise

    rows: dict[str, list[dict[str, float]]] = {"noisy source": [], "denoised source": []}
    fs, rate = converter.fs, converter.sample_rate
    for index, pair in enumerate(pairs):
        source, source_rate = pair.source()
        noisy = add_noise(source, source_rate, index)
        denoised = resample(*converter.denoiser(noisy, source_rate), source_rate)
        reference = clean_wave(source, source_rate, fs)
        for name, wave in (("noisy source", noisy), ("denoised source", denoised)):
            scores = score_conversion(clean_wave(wave, source_rate, fs), reference, rate)
            n = min(len(source), len(wave))
            scores["si_sdr"] = si_sdr(wave[:n], source[:n])
            rows[name].append(scores)
    return {name: summarise(values) for name, values in rows.items()}


def table(name: str, result: dict) -> str:
    lines = [
        f"## {name}: {result['pairs']['train']} training pairs, {result['pairs']['test']} test pairs; trained "
        f"{result['epochs']} epochs / {result['steps']} steps (best valid mel L1 {result['best_valid_mel_l1']:.3f})",
        f"| {'system':<24} | MCD dB | F0 RMSE ct | F0 corr | V/UV err |",
        "|---|---|---|---|---|",
    ]
    for row_name, row in result["rows"].items():
        lines.append(
            f"| {row_name + '->target':<24} | {row['mcd']:.2f} | {row['f0_rmse_cents']:.0f} | "
            f"{row['f0_corr']:.3f} | {row['vuv_error']:.3f} |"
        )
    for row_name, row in result["front_end"].items():
        lines.append(
            f"| {row_name + '->clean src':<24} | {row['mcd']:.2f} | {row['f0_rmse_cents']:.0f} | "
            f"{row['f0_corr']:.3f} | {row['vuv_error']:.3f} | (SI-SDR {row['si_sdr']:.2f} dB)"
        )
    gap = result["rows"]["source"]["mcd"] - result["rows"]["converted"]["mcd"]
    noisy_row = "ft noisy conv" if "ft noisy conv" in result["rows"] else "noisy conv"
    help_ = result["rows"][noisy_row]["mcd"] - result["rows"]["denoised conv"]["mcd"]
    lines.append(
        f"converts: MCD {gap:+.2f} dB below the source ({'PASS' if gap >= 2 else 'FAIL'} at >= 2 dB); "
        f"denoising first: {help_:+.2f} dB ({'PASS' if help_ > 0 else 'FAIL'}); "
        f"training {result['utt_per_s']:.2f} utterances/s (incl. validation), peak RSS {result['peak_rss_mib']} MiB; "
        f"prepare {result['prepare_s']:.0f} s, train {result['train_s'] / 60:.1f} min, "
        f"evaluate {result['eval_s']:.0f} s"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vc-minutes", type=float, default=8.0, help="training budget per VC model")
    parser.add_argument("--denoiser", help="a denoiser checkpoint (default: train one for --denoiser-minutes)")
    parser.add_argument("--denoiser-minutes", type=float, default=5.0)
    parser.add_argument(
        "--denoiser-data",
        default="generated",
        choices=["generated", "matched"],
        help="generated speech + noises, or per corpus its training sources + real noises' training stretches",
    )
    parser.add_argument("--finetune-minutes", type=float, default=0.0, help="fine-tune VC on denoised sources")
    parser.add_argument("--corpora", nargs="+", default=["builtin", "espeak"], choices=["builtin", "espeak"])
    parser.add_argument("--espeak-sentences", type=int, default=56)
    parser.add_argument("--install-espeak", action="store_true", help="apt-get install espeak-ng first")
    parser.add_argument("--gain", type=float, default=1.0, help="noise gain (1.0 = 0 dB SNR)")
    parser.add_argument("--out", default="runs/bench_vc")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json")
    parser.add_argument("--reuse-runs", action="store_true", help="evaluate the VC models an earlier run left in --out")
    args = parser.parse_args()
    print(header("VC: conversion MCD, denoise-then-convert, training speed and memory", args.seed))
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.install_espeak and "espeak" in args.corpora and shutil.which("espeak-ng") is None:
        subprocess.run(["apt-get", "update"], check=True)
        subprocess.run(["apt-get", "install", "-y", "espeak-ng"], check=True)
    denoiser = Path(args.denoiser) if args.denoiser else None
    if denoiser is None and args.denoiser_data == "generated":
        seconds = train_denoiser(out / "denoiser_train.log", out / "denoiser", args.denoiser_minutes, args.seed, [])
        denoiser = out / "denoiser" / "best.pth"
        print(f"# denoiser: default wave_unet trained {seconds / 60:.1f} min on generated speech + generated noises")
    print(
        f"# VC budget {args.vc_minutes} min per corpus; noise gain {args.gain} (real noises); medians over test pairs"
    )
    results = {}
    for name in args.corpora:
        overrides = []
        if name == "espeak":
            folder = espeak_corpus(out / "espeak_corpus", args.espeak_sentences, args.seed)
            overrides = [f"data.source={folder / 'source'}", f"data.target={folder / 'target'}"]
        results[name] = run_corpus(name, overrides, out, args, denoiser)
        print(table(name, results[name]), flush=True)
    print(f"# benchmark process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
