"""Voice conversion next to the classic joint-density GMM on every corpus, clean and noisy sources.

Corpora (`--pairs`):
  SRC:TGT  a source:target pair of ../shared/data/speech/vcc2016 (VCC 2016, real parallel speech, 162 sentences
           per speaker; the folder split of configs/vc: first 80 % train, next 10 % valid, last 10 % test, i.e.
           100147-100162 are the test sentences, never trained on and never used for selection);
  builtin  the package's generated parallel voices (configs/vc/data/builtin.yaml: 64 train, 6 valid, 8 test);
  espeak   two espeak-ng voices saying the same generated sentences (benchmarks/vc.py makes them; needs the
           espeak-ng program: `apt-get install espeak-ng`), split like a folder.
Systems, on the same train pairs and the same WORLD features at 5 ms:
  wgmm   `denoise-vc vc-train vocoder=world` (FastSpeech2-style + wGMM prosody predicting WORLD frames; best
         checkpoint by free-running validation MCD), trained here in a subprocess;
  gmm    sprocket's joint-density GMM recipe (`denoise-vc vc-gmm`, `denoise_vc.vc.gmm`);
  wgmm+gmm  the wGMM with the GMM's spectra fused in (`convert --gmm`, weight --gmm-weight); with --robust-vc
         also gmm-robust (the GMM fitted on the robust finetune's pairs: clean and noisy-then-denoised sources,
         what `vc-gmm` fits for a robust checkpoint) and wgmm-robust+gmm-robust, the two fused.
Each converts the test sources: clean; with real noise at 5 dB SNR (../shared/data/noise_open, cut only from
the last 10 % of each recording, which no denoiser or VC model trains on); and that noisy source cleaned first
by RNNoise and by this package's shipped default denoiser (with --adapt-denoiser M, also by that denoiser
finetuned for M minutes on the corpus's own training sources: `train preset=real_speech solver.init_from=default`;
--adapt-override changes that training, e.g. `model=demucs solver.init_from=null` for a larger front-end).
With --robust-vc M the wGMM is then finetuned M minutes with `data.front_end` on that front-end: its training
sources both clean and noisy-then-denoised (--robust-copies copies at --robust-snr dB; noise from the training
stretches only; clean targets), and converts every input again as "wgmm-robust": the VC model learns the
front-end's residue instead of meeting it first at test time. --robust-override passes a vc-train override to
that finetune only (e.g. `solver.lr=1e-4`, `solver.valid_denoised_weight=0.25`: NOTE.md's LSKGW recipe in one
command; a clean-stage run refuses the weight).
Scores against the clean target recording: MCD (SPTK mel-cepstrum c1-c24, alpha by rate, and the WORLD-coded one),
F0 RMSE (cents), F0 correlation, V/UV error (medians, `denoise_vc.vc.metrics`), and the conversion real-time
factor on the clean sources. The "input: ..." rows score what each condition hands the VC model against the
clean source recording (no conversion): how much of the source each front-end restores, in the VC's features.

    python benchmarks/vc_real.py --pairs SF1:TF1 SM1:TM1 builtin espeak --epochs 80 --minutes 25 --test-utterances 32
    python benchmarks/vc_real.py --pairs SF1:TF1 --reuse-runs            # score existing runs again
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import header, rnnoise  # noqa: E402
from real_data import SHARED, link_folder, open_noises, test_stretch, train_stretch  # noqa: E402
from vc import espeak_corpus  # noqa: E402

from denoise_vc.audio import load_audio, resample, write_audio_atomic  # noqa: E402
from denoise_vc.data.mixing import gain_for_snr  # noqa: E402
from denoise_vc.pretrained import resolve_checkpoint  # noqa: E402
from denoise_vc.vc.corpus import build_pairs  # noqa: E402
from denoise_vc.vc.features import clean_wave  # noqa: E402
from denoise_vc.vc.gmm import JointDensityGMM  # noqa: E402
from denoise_vc.vc.metrics import score_conversion, summarise  # noqa: E402
from denoise_vc.vc.pipeline import Converter, Denoiser  # noqa: E402
from denoise_vc.vc.prepare import run_pairs  # noqa: E402
from denoise_vc.vc.vocoders import acoustic_frames  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VCC = ROOT.parent / "shared" / "data" / "speech" / "vcc2016"
RATE = 16000
SNR_DB = 5.0
COLUMNS = (("mcd_sptk", "MCD SPTK", 9, 2), ("mcd", "MCD WORLD", 10, 2), ("f0_rmse_cents", "F0 RMSE ct", 11, 1))
COLUMNS += (("f0_corr", "F0 corr", 8, 3), ("vuv_error", "V/UV err", 9, 3))


def corpus(spec: str, args: argparse.Namespace) -> tuple[str, list[str]]:
    """(run folder name, vc-train data overrides) of one --pairs entry."""
    if spec == "builtin":
        return "builtin", []
    if spec == "espeak":
        folder = espeak_corpus(Path(args.out) / "espeak_corpus", args.espeak_sentences, args.seed)
        return "espeak", [f"data.source={folder / 'source'}", f"data.target={folder / 'target'}"]
    source, _, target = spec.partition(":")
    if not (VCC / source).is_dir() or not (VCC / target).is_dir():
        raise SystemExit(f"--pairs {spec}: expected builtin, espeak or SRC:TGT speakers of {VCC}")
    return f"{source}_{target}", [f"data.source={VCC / source}", f"data.target={VCC / target}"]


def train_wgmm(data: list[str], out: Path, args: argparse.Namespace) -> float:
    """vc-train (preparing the corpus first) in a subprocess; returns its wall-clock seconds (0 when reused)."""
    if args.reuse_runs and (out / "run" / "best.pth").exists():
        return 0.0
    command = [
        sys.executable, "-m", "denoise_vc.cli", "vc-train", "vocoder=world", *data,
        f"run_dir={out / 'run'}", f"data.prepared_dir={out / 'prepared'}",
        f"solver.epochs={args.epochs}", f"solver.max_minutes={args.minutes}", "solver.progress=false",
        *args.override,
    ]  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(out / "train.log", "w") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    return time.perf_counter() - start


def fit_gmm(
    converter: Converter, train: list, out: Path, args: argparse.Namespace, name: str = "gmm"
) -> tuple[Path, float]:
    """The GMM on these training pairs, saved beside the run (a fit takes ~15-50 CPU-minutes)."""
    path = out / f"{name}_{args.mixtures}.pt"
    if args.reuse_runs and path.exists():
        return path, float(JointDensityGMM.load(path).meta.get("fit_seconds", float("nan")))
    start = time.perf_counter()
    gmm = JointDensityGMM.fit([(p.source(), p.target()) for p in train], converter.fs, args.mixtures)
    gmm.meta["fit_seconds"] = time.perf_counter() - start
    gmm.save(path)
    return path, gmm.meta["fit_seconds"]


def adapt_denoiser(train: list, out: Path, args: argparse.Namespace) -> Path:
    """The shipped denoiser finetuned on this corpus's training sources (the VC model's train split, clean)
    mixed with the noise_open training stretches (first 80 %: the test stretch is never read), for
    --adapt-denoiser wall-clock minutes: what a user does before converting an unusual voice."""
    run = out / "adapted_denoiser"
    if args.reuse_runs and (run / "best.pth").exists():
        return run / "best.pth"
    data = out / "adapt_data"
    clean = data / "clean"
    clean.mkdir(parents=True, exist_ok=True)
    for pair in train:
        wave, rate = pair.source()
        write_audio_atomic(clean / f"{Path(pair.name).stem}.wav", resample(wave, rate, RATE), RATE)
    link_folder(open_noises(), data / "noise")
    link_folder(sorted((SHARED / "rir").glob("*.flac")), data / "rir")
    command = [
        sys.executable, "-m", "denoise_vc.cli", "train", "preset=real_speech", f"data.root={data}",
        f"run_dir={run}", "solver.init_from=default", "solver.lr=1.0e-3",
        f"solver.max_minutes={args.adapt_denoiser}", "solver.progress=false", *args.adapt_override,
    ]  # fmt: skip
    with open(out / "adapt_denoiser.log", "w") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    return run / "best.pth"


def robust_vc(data: list[str], front: Path, out: Path, args: argparse.Namespace) -> Path:
    """The wGMM finetuned with `data.front_end` (the package's noise-robust training): its train and valid
    sources also noisy (noise: the first 80 % of each noise_open recording, written to out/robust_noise) and then
    cleaned by the front-end `front`, clean targets; validation scores both forms, test pairs are untouched."""
    run = out / "robust_run"
    if args.reuse_runs and (run / "best.pth").exists():
        return run / "best.pth"
    noise_dir = out / "robust_noise"
    for path in open_noises():
        write_audio_atomic(noise_dir / f"{path.stem}.wav", train_stretch(noise_wave(path)), RATE, subtype="FLOAT")
    low, high = args.robust_snr
    command = [
        sys.executable, "-m", "denoise_vc.cli", "vc-train", "vocoder=world", *data,
        f"data.front_end.denoiser={front}", f"data.front_end.noise={noise_dir}",
        f"data.front_end.copies={args.robust_copies}", f"data.front_end.snr_db=[{low},{high}]",
        f"data.prepared_dir={out / 'robust_prepared'}", f"run_dir={run}",
        f"solver.init_from={out / 'run' / 'best.pth'}", "solver.lr=3e-4", "solver.warmup_steps=50",
        f"solver.epochs={args.epochs}", f"solver.max_minutes={args.robust_vc}", "solver.progress=false",
        f"seed={args.seed}", *args.override, *args.robust_override,
    ]  # fmt: skip
    with open(out / "robust_vc.log", "w") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    return run / "best.pth"


def noise_wave(path: Path) -> np.ndarray:
    return load_audio(path, RATE)[0][0]


def noisy(waves: list[tuple[np.ndarray, int]], seed: int) -> list[np.ndarray]:
    """Each source (at RATE) plus a random test-stretch cut of a real noise recording at SNR_DB."""
    noises = [test_stretch(noise_wave(f)) for f in open_noises()]
    out = []
    for index, (wave, rate) in enumerate(waves):
        wave = resample(wave, rate, RATE)
        rng = np.random.default_rng([seed, index])
        noise = noises[int(rng.integers(len(noises)))]
        if len(noise) < len(wave):
            noise = np.tile(noise, len(wave) // len(noise) + 1)
        start = int(rng.integers(0, len(noise) - len(wave) + 1))
        segment = noise[start : start + len(wave)]
        out.append((wave + gain_for_snr(wave, segment, SNR_DB) * segment).astype(np.float32))
    return out


def scores(converted: list[np.ndarray], targets: list[np.ndarray]) -> dict[str, float]:
    return summarise([score_conversion(c, t, RATE) for c, t in zip(converted, targets)])


def rtf(convert, waves: list[tuple[np.ndarray, int]]) -> float:
    start = time.perf_counter()
    for wave, rate in waves:
        convert(wave, rate)
    return (time.perf_counter() - start) / sum(len(w) / r for w, r in waves)


def run_pair(spec: str, args: argparse.Namespace) -> dict:
    name, data = corpus(spec, args)
    out = Path(args.out) / name
    train_s = train_wgmm(data, out, args)
    converter = Converter(out / "run" / "best.pth")
    data_cfg = converter.cfg.data
    if spec == "builtin" and args.test_utterances:  # utterance i depends on (seed, split, i) only: 0..7 stay
        data_cfg = OmegaConf.merge(data_cfg, {"builtin": {"utterances": {"test": args.test_utterances}}})
    pairs = build_pairs(data_cfg, int(converter.cfg.seed))
    train = [p for p in pairs if p.split == "train"]
    test = [p for p in pairs if p.split == "test"]
    gmm_path, gmm_s = (None, float("nan")) if args.skip_gmm else fit_gmm(converter, train, out, args)
    sources = [p.source() for p in test]
    targets = [clean_wave(*p.target(), converter.fs) for p in test]
    noisy_sources = noisy(sources, args.seed)
    denoiser = Denoiser.load(resolve_checkpoint(args.denoiser), converter.device)
    inputs = {
        "clean": sources,
        f"noisy {SNR_DB:g} dB": [(x, RATE) for x in noisy_sources],
        "RNNoise": [(rnnoise(x, RATE), RATE) for x in noisy_sources],
        "denoised": [denoiser(x, RATE) for x in noisy_sources],
    }
    front = resolve_checkpoint(args.denoiser)
    if args.adapt_denoiser:
        front = adapt_denoiser(train, out, args)
        adapted = Denoiser.load(front, converter.device)
        inputs["adapted denoiser"] = [adapted(x, RATE) for x in noisy_sources]
    inputs = chosen("--conditions", inputs, args.conditions)
    clean_sources = [clean_wave(w, r, converter.fs) for w, r in sources]
    rows = {
        "source (no conversion)": scores(clean_sources, targets),
        "target through WORLD": scores([converter.vocoder(acoustic_frames(t, converter.fs)) for t in targets], targets),
    }
    for condition, waves in inputs.items():  # what each front-end hands the VC model, against the clean source
        if condition != "clean":
            rows[f"input: {condition}"] = scores([clean_wave(w, r, converter.fs) for w, r in waves], clean_sources)
    systems = {"wgmm": converter.convert}
    if gmm_path:
        systems["gmm"] = gmm_system(gmm_path, converter)
        systems["wgmm+gmm"] = Converter(out / "run" / "best.pth", gmm=gmm_path, gmm_weight=args.gmm_weight).convert
    if args.robust_vc:
        robust_run = robust_vc(data, front, out, args)
        robust = Converter(robust_run)
        systems["wgmm-robust"] = robust.convert
        if gmm_path:  # the GMM fitted on the robust run's pairs: clean and noisy-then-denoised sources
            robust_train = [p for p in run_pairs(robust.cfg) if p.split == "train"]
            robust_gmm_path, _ = fit_gmm(robust, robust_train, out, args, "gmm_robust")
            systems["gmm-robust"] = gmm_system(robust_gmm_path, converter)
            systems["wgmm-robust+gmm-robust"] = Converter(
                robust_run, gmm=robust_gmm_path, gmm_weight=args.gmm_weight
            ).convert
    systems = chosen("--systems", systems, args.systems)
    for condition, waves in inputs.items():
        for name, convert in systems.items():
            rows[f"{name}: {condition}"] = scores([convert(w, r) for w, r in waves], targets)
    return {
        "pairs": {"train": len(train), "test": len(test)},
        "train_seconds": {"wgmm": train_s, "gmm": gmm_s},
        "rtf": {name: rtf(convert, sources) for name, convert in systems.items()},
        "best_epoch": int(converter_meta(out)["epoch"]),
        "rows": rows,
    }


def gmm_system(path: Path, converter: Converter):
    """The GMM alone as a system: its converted frames through the wGMM's vocoder (WORLD)."""
    gmm = JointDensityGMM.load(path)
    return lambda wave, rate: converter.vocoder(gmm.convert_frames(wave, rate))


def chosen(option: str, available: dict, names: list[str] | None) -> dict:
    """The entries of `available` that `option` names, in its order (all of them when it is not given)."""
    unknown = sorted(set(names or []) - set(available))
    if unknown:
        raise SystemExit(f"{option} {' '.join(unknown)}: this run has {', '.join(available)}")
    return {name: available[name] for name in names} if names else available


def converter_meta(out: Path) -> dict:
    from denoise_vc.checkpoint import load_checkpoint

    return load_checkpoint(out / "run" / "best.pth", kind="vc")["meta"]


def table(name: str, result: dict) -> str:
    lines = [
        f"{name}: {result['pairs']['train']} train / {result['pairs']['test']} test pairs; "
        f"wgmm best epoch {result['best_epoch']}, trained {result['train_seconds']['wgmm'] / 60:.1f} min; "
        f"gmm fit {result['train_seconds']['gmm'] / 60:.1f} min; RTF "
        + ", ".join(f"{name} {value:.3f}" for name, value in result["rtf"].items()),
        f"| {'system: source':<28} | " + " | ".join(title for _, title, _, _ in COLUMNS) + " |",
        "|" + "---|" * (len(COLUMNS) + 1),
    ]
    for row_name, row in result["rows"].items():
        cells = " | ".join(f"{row[key]:>{width}.{digits}f}" for key, _, width, digits in COLUMNS)
        lines.append(f"| {row_name:<28} | {cells} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", nargs="+", default=["SF1:TF1", "SM1:TM1"], help="SRC:TGT, builtin, espeak")
    parser.add_argument("--espeak-sentences", type=int, default=56, help="size of the espeak-ng corpus")
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--minutes", type=float, default=25.0, help="vc-train wall-clock budget per pair")
    parser.add_argument("--mixtures", type=int, default=32, help="GMM components of the peer")
    parser.add_argument("--gmm-weight", type=float, default=0.5, help="the GMM's share of wgmm+gmm's spectra")
    parser.add_argument("--denoiser", default="default", help="front-end checkpoint (default: the shipped model)")
    parser.add_argument(
        "--adapt-denoiser", type=float, default=0.0, help="minutes: also finetune the shipped denoiser on each corpus"
    )
    parser.add_argument(
        "--adapt-override",
        action="append",
        default=[],
        help="train override of the adaptation only (e.g. model=demucs solver.init_from=null: another front-end)",
    )
    parser.add_argument(
        "--robust-vc", type=float, default=0.0, help="minutes: also finetune wGMM on clean + denoised sources"
    )
    parser.add_argument(
        "--robust-override", action="append", default=[], help="vc-train override of the robust finetune only"
    )
    parser.add_argument("--robust-copies", type=int, default=3, help="noisy-then-denoised copies per source")
    parser.add_argument("--robust-snr", type=float, nargs=2, default=[0.0, 15.0], help="SNR range (dB) of the copies")
    parser.add_argument(
        "--test-utterances", type=int, default=0, help="builtin: score this many test pairs (default: the config's 8)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "runs" / "vc_real"))
    parser.add_argument("--reuse-runs", action="store_true", help="score existing runs instead of training")
    parser.add_argument("--override", action="append", default=[], help="extra vc-train override (repeatable)")
    parser.add_argument("--skip-gmm", action="store_true", help="score the wGMM rows only (the GMM fit is ~25 min)")
    parser.add_argument("--systems", nargs="+", help="score only these systems (e.g. wgmm+gmm gmm)")
    parser.add_argument("--conditions", nargs="+", help="score only these inputs (e.g. clean RNNoise)")
    parser.add_argument("--json", help="write every figure here")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    print(header("VC: wGMM (vocoder=world) vs joint-density GMM, clean and noisy sources", args.seed))
    results = {}
    for spec in args.pairs:
        results[spec] = run_pair(spec, args)
        print(table(spec, results[spec]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
