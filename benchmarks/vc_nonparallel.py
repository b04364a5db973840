"""Non-parallel many-to-many VC on real speech (issue 16): the StarGAN-VC model, with and without retrieval, beside
the parallel wGMM model where parallel data allow.

Speakers (8, one GAN trained on all of them, no sentence shared between the training files of any two speakers):
  VCC 2016 SF1 SM1 TF1 TM1 (../shared/data/speech/vcc2016, 162 parallel sentences each). The test sentences
      100147-100162 (the last 16 sorted files: the test split of benchmarks/vc_real.py) are never linked into the
      training folder. The other 146 sentences are dealt out by sentence number mod 4 (SF1 1, SM1 2, TF1 3,
      TM1 0): each VCC speaker trains on its own ~37 sentences (~2 min), which no other speaker trains on;
      the GAN's few validation files (checkpoint choice only) are that speaker's recordings of the next
      quarter's sentences, never trained on by it.
  VCTK p225 (F) and p226 (M) (10 files each, the same sentence numbers): 022 023 024 held out (parallel between
      the two, so p225 <-> p226 also gets MCD); p225 trains on 003 011 019 020, p226 on 005 008 016 021.
  LibriSpeech dev-clean 84 (F, 29 files) and 2033 (M, 10 files): the last 4 / 3 files held out, the first
      others trained on (LibriSpeech never repeats a sentence).
The training folder (`<out>/speakers/<name>/a/*` train, `<name>/b/*` GAN validation, symbolic links) is built so
that `denoise_vc.vc.speakers`' `data.split` (valid 0.05, test 0.01; at least one file each) takes exactly the
`b/` files out of training; the script checks the prepared manifest against the plan.

GAN: `denoise-vc vc-train vc/model@model=stargan_vc data.speakers=<folder> vocoder=world` in a subprocess for
`--minutes` (wall time of the subprocess, feature preparation included, is reported). Retrieval: R = 0.75
(`--index-rate`), one faiss index per target speaker built with `build_target_index` from that speaker's GAN
*training* files only. wGMM: the `vocoder=world` runs of benchmarks/vc_real.py (`runs/vc_real/SF1_TF1`,
`SM1_TM1`; trained parallel on the first 80 % of the 162 sentences), alone and with an index of its own training
targets; skipped for a pair whose checkpoint is missing.

Pairs: every ordered pair of the VCC speakers (12; MCD-DTW, F0 RMSE/correlation, V/UV error against the target's
recording of the same test sentence, `denoise_vc.vc.metrics`), plus cross-corpus pairs (p225->TF1, p226->TM1,
84->SF1, 2033->SM1, TF1->p225, SM1->84: proxy only; p225<->p226: proxy and MCD on the 3 held-out sentences).
Sources are the source speaker's held-out utterances (`--limit-test` caps them per pair).

Baseline `stats`: the GAN's own pipeline with the generator replaced by the identity, i.e. only the per-speaker
mean/variance transfer of c1..c24 and the log-linear F0 transform (c0, aperiodicity, voicing the source's). It
shows how much of each score the speaker statistics alone give (the mean-mcep proxy nearly entirely: the GAN's
output is de-normalised with the target's mean). `source` is the unconverted source utterance.

Speaker-similarity proxies (no x-vector model is available offline):
  1. mean-mcep distance: the Euclidean distance, in MCD dB units (10/ln10 * sqrt(2) * ||.||), between the mean
     SPTK mel-cepstrum (c1..c24 of `world_features(...).sptk`, speech frames) of a converted utterance and each
     speaker's mean over its held-out real utterances (cleaned by `clean_wave`), leaving out the converted
     sentence from both means (leave-one-sentence-out). `closer` = d(conv, target) < d(conv, source);
     a pair is closer when its mean d_target < mean d_source; the share of closer utterances is given too.
  2. a speaker classifier trained here: logistic regression (scikit-learn, standardised inputs) on per-utterance
     mean and standard deviation of the same mel-cepstra of every speaker's GAN training files; its accuracy on
     the held-out real utterances is reported, and the share of conversions it assigns to the target.
Timing: training wall minutes; conversion RTF with one torch/OpenMP thread on `--rtf-utts` SF1 test sentences
(SF1 -> TF1), after a warm-up. The scoring itself runs in `--workers` processes.

    OMP_NUM_THREADS=1 python benchmarks/vc_nonparallel.py --minutes 15 --json runs/vc_nonparallel/result.json
    OMP_NUM_THREADS=1 python benchmarks/vc_nonparallel.py --reuse-runs        # score the existing run again
    OMP_NUM_THREADS=1 python benchmarks/vc_nonparallel.py --minutes 1 --limit-test 2 --out runs/vc_np_tiny  # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import header  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT.parent / "shared" / "data" / "speech"
VCC, VCTK, LIBRI = SPEECH / "vcc2016", SPEECH / "vctk", SPEECH / "librispeech"
VCC_SPEAKERS = ("SF1", "SM1", "TF1", "TM1")
VCC_TEST = tuple(str(n) for n in range(100147, 100163))
VCC_QUARTER = {"SF1": 1, "SM1": 2, "TF1": 3, "TM1": 0}  # sentence number % 4 of each speaker's training files
VCTK_PLAN = {  # sentence numbers: (train, GAN-validation candidates); 022-024 are held out for both
    "p225": (("003", "011", "019", "020"), ("008", "016", "021")),
    "p226": (("005", "008", "016", "021"), ("003", "011", "019")),
}
VCTK_HELD = ("022", "023", "024")
LIBRI_HELD = {"84": 4, "2033": 3}  # last files of each speaker held out
SPLIT = {"valid": 0.05, "test": 0.01}  # data.split for the GAN (speakers.py takes >= 1 file each out of training)
CROSS_PAIRS = (
    ("p225", "TF1"), ("p226", "TM1"), ("84", "SF1"), ("2033", "SM1"),
    ("TF1", "p225"), ("SM1", "84"), ("p225", "p226"), ("p226", "p225"),
)  # fmt: skip
WGMM_PAIRS = {("SF1", "TF1"): "SF1_TF1", ("SM1", "TM1"): "SM1_TM1"}
RATE = 16000


# -- the corpus plan -----------------------------------------------------------------------------------
def _held_out_count(count: int) -> int:
    """Files speakers.py's split takes out of training for a speaker folder of `count` files."""
    from types import SimpleNamespace

    from denoise_vc.vc.corpus import _split_of

    fractions = SimpleNamespace(**SPLIT)
    return sum(_split_of(i, count, fractions) != "train" for i in range(count))


def _validation_size(train: int) -> int:
    """V such that a folder of train + V files has exactly V files split off (its last V, sorted)."""
    for v in range(0, train + 1):
        if _held_out_count(train + v) == v:
            return v
    raise ValueError(f"no consistent validation size for {train} training files")


def sentence(path: Path) -> str:
    """The sentence key of a file: VCC '100150', VCTK '022' (p225_022), LibriSpeech the utterance id."""
    if path.parent.parent == VCTK:
        return path.stem.split("_")[1]
    return path.stem


def corpus_plan() -> dict[str, dict[str, list[Path]]]:
    """speaker -> {train, valid, held}: files, in the order they are linked."""
    plan: dict[str, dict[str, list[Path]]] = {}
    for name in VCC_SPEAKERS:
        files = sorted(VCC.joinpath(name).glob("*.flac"))
        held = [f for f in files if f.stem in VCC_TEST]
        rest = [f for f in files if f.stem not in VCC_TEST]
        quarter = VCC_QUARTER[name]
        train = [f for f in rest if int(f.stem) % 4 == quarter]
        others = [f for f in rest if int(f.stem) % 4 == (quarter + 1) % 4]
        plan[name] = {"train": train, "valid": others[: _validation_size(len(train))], "held": held}
    for name, (train_ids, valid_ids) in VCTK_PLAN.items():

        def files(ids, name=name):
            return [VCTK / name / f"{name}_{i}.wav" for i in ids]

        plan[name] = {"train": files(train_ids), "valid": files(valid_ids)[: _validation_size(len(train_ids))],
                      "held": files(VCTK_HELD)}  # fmt: skip
    for name, n_held in LIBRI_HELD.items():
        files = sorted(LIBRI.joinpath(name).glob("*.flac"))
        rest, held = files[:-n_held], files[-n_held:]
        v = _held_out_count(len(rest))
        plan[name] = {"train": rest[:-v], "valid": rest[-v:], "held": held}
    check_plan(plan)
    return plan


def check_plan(plan: dict[str, dict[str, list[Path]]]) -> None:
    """No VCC test sentence anywhere in a training folder; no training sentence shared by two speakers."""
    for name, parts in plan.items():
        for path in parts["train"] + parts["valid"] + parts["held"]:
            assert path.is_file(), path
        assert not {sentence(p) for p in parts["train"] + parts["valid"]} & set(VCC_TEST), name
        assert not {sentence(p) for p in parts["train"]} & {sentence(p) for p in parts["held"]}, name
    owners: dict[tuple[str, str], str] = {}
    for name, parts in plan.items():
        corpus = parts["train"][0].parent.parent.name
        for path in parts["train"]:
            key = (corpus, sentence(path))
            assert key not in owners, f"training sentence {key} of {name} is also {owners[key]}'s"
            owners[key] = name


def link_speakers(plan: dict[str, dict[str, list[Path]]], folder: Path) -> Path:
    """<folder>/<speaker>/a/<file> (train) and <speaker>/b/<file> (GAN validation), symbolic links."""
    if folder.exists():
        shutil.rmtree(folder)
    for name, parts in plan.items():
        for sub, files in (("a", parts["train"]), ("b", parts["valid"])):
            (folder / name / sub).mkdir(parents=True, exist_ok=True)
            for f in files:
                os.symlink(f.resolve(), folder / name / sub / f.name)
    return folder


def check_manifest(plan: dict[str, dict[str, list[Path]]], prepared: Path) -> None:
    """The GAN trained on exactly the planned training files."""
    manifest = json.loads((prepared / "manifest.json").read_text())
    trained = sorted(tuple(x) for x in manifest["splits"]["train"])
    planned = sorted((name, f"a/{f.stem}") for name, parts in plan.items() for f in parts["train"])
    assert trained == planned, "the GAN's training split differs from the plan"


# -- training ------------------------------------------------------------------------------------------
def train_gan(folder: Path, out: Path, args: argparse.Namespace) -> float:
    """vc-train stargan_vc in a subprocess; its wall-clock seconds (an existing run's recorded ones when reused)."""
    record = out / "train_seconds.txt"
    if args.reuse_runs and (out / "run" / "best.pth").exists():
        return float(record.read_text()) if record.exists() else float("nan")
    command = [
        sys.executable, "-m", "denoise_vc.cli", "vc-train", "vc/model@model=stargan_vc", f"data.speakers={folder}",
        "vocoder=world", f"run_dir={out / 'run'}", f"data.prepared_dir={args.prepared}",
        f"data.split.valid={SPLIT['valid']}", f"data.split.test={SPLIT['test']}",
        f"solver.max_minutes={args.minutes}", f"solver.epochs={args.epochs}", "solver.progress=false",
        f"seed={args.seed}", *args.override,
    ]  # fmt: skip
    if (out / "run").exists():
        shutil.rmtree(out / "run")  # a fresh run (vc-train would resume last.pth)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_command.txt").write_text(" ".join(command) + "\n")
    start = time.perf_counter()
    with open(out / "train.log", "w") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=os.environ.copy())
    seconds = time.perf_counter() - start
    record.write_text(f"{seconds:.1f}\n")
    return seconds


# -- features of one waveform ----------------------------------------------------------------------------
def analyse(wave: np.ndarray) -> dict[str, np.ndarray]:
    """WORLD analysis (denoise_vc.vc.metrics) plus the proxies' per-utterance vectors, of a RATE waveform."""
    from denoise_vc.vc.metrics import world_features

    f = world_features(wave, RATE)
    speech = f.sptk[f.speech] if f.speech.any() else f.sptk
    return {
        "mcep": f.mcep, "sptk": f.sptk, "f0": f.f0, "speech": f.speech,
        "sum": speech.sum(axis=0), "count": len(speech),
        "clf": np.concatenate([speech.mean(axis=0), speech.std(axis=0)]),
    }  # fmt: skip


def score(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, float]:
    """`denoise_vc.vc.metrics.score_conversion` on already analysed waveforms (estimate a, reference b)."""
    from denoise_vc.vc.metrics import WorldFeatures, score_features

    def world(f: dict[str, np.ndarray]) -> WorldFeatures:
        return WorldFeatures(mcep=f["mcep"], sptk=f["sptk"], f0=f["f0"], speech=f["speech"])

    return score_features(world(a), world(b))


def light(features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: features[k] for k in ("sum", "count", "clf")}


# -- conversion (worker processes) -----------------------------------------------------------------------
_CONVERTERS: dict[tuple, object] = {}


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def wgmm_checkpoint(name: str) -> Path | None:
    """runs/vc_real/<name>/run/best.pth once its training has finished (train.log's last line says where the
    best checkpoint is); None while it is missing or still training."""
    run = ROOT / "runs" / "vc_real" / name
    log = run / "train.log"
    done = log.exists() and "checkpoint" in (log.read_text().strip().splitlines() or [""])[-1]
    return run / "run" / "best.pth" if done and (run / "run" / "best.pth").exists() else None


def system_specs(gan: Path, indexes: Path, pair: tuple[str, str], rate: float) -> dict[str, dict]:
    """name -> Converter keyword arguments for one (source, target) pair."""
    source, target = pair
    specs = {
        "stats": {"vc_checkpoint": gan, "target_speaker": target, "identity_generator": True},
        "gan": {"vc_checkpoint": gan, "target_speaker": target},
        "gan+ret": {"vc_checkpoint": gan, "target_speaker": target, "index": indexes / f"gan_{target}.index",
                    "index_rate": rate},
    }  # fmt: skip
    if pair in WGMM_PAIRS:
        ckpt = wgmm_checkpoint(WGMM_PAIRS[pair])
        if ckpt is not None:
            specs["wgmm"] = {"vc_checkpoint": ckpt}
            specs["wgmm+ret"] = {"vc_checkpoint": ckpt, "index": indexes / f"wgmm_{WGMM_PAIRS[pair]}.index",
                                 "index_rate": rate}  # fmt: skip
    return specs


class IdentityGenerator:
    """Stands in for the GAN's generator: the `stats` system is the GAN's pipeline without the network."""

    def infer(self, x, label):
        return x


def converter(spec: dict):
    """A (cached) Converter for one system spec; `identity_generator` swaps the GAN's generator for identity."""
    from denoise_vc.vc.pipeline import Converter

    key = tuple(sorted((k, str(v)) for k, v in spec.items()))
    if key not in _CONVERTERS:
        kwargs = dict(spec)
        identity = kwargs.pop("identity_generator", False)
        c = Converter(**kwargs)
        if identity:
            c.speakers.model = IdentityGenerator()
        _CONVERTERS[key] = c
    return _CONVERTERS[key]


def convert_task(task: dict) -> dict:
    """Every system's conversion of one source utterance: analysed; scored where a reference exists."""
    from denoise_vc.audio import load_audio
    from denoise_vc.vc.features import clean_wave

    wave, rate = load_audio(task["source"])
    wave = wave[0]
    out = {"systems": {}}
    first = converter(next(iter(task["specs"].values())))
    fs = first.fs
    source = analyse(clean_wave(wave, rate, fs))
    reference = None
    if task["reference"]:
        ref_wave, ref_rate = load_audio(task["reference"])
        reference = analyse(clean_wave(ref_wave[0], ref_rate, fs))
    if first.speakers is not None:  # which training speaker the GAN takes the input for
        from denoise_vc.vc.speakers import utterance_features

        out["detected_source"] = first.speakers.source_speaker(utterance_features(wave, rate, fs)["frames"])
    out["systems"]["source"] = light(source) | ({"scores": score(source, reference)} if reference else {})
    for name, spec in task["specs"].items():
        c = converter(spec)
        assert c.sample_rate == RATE
        converted = analyse(c.convert(wave, rate))
        out["systems"][name] = light(converted) | ({"scores": score(converted, reference)} if reference else {})
    return out


def real_task(path: Path, fs) -> dict[str, np.ndarray]:
    """Proxy vectors of one real recording, cleaned as the model's inputs are (`fs`: the GAN's settings)."""
    from denoise_vc.audio import load_audio
    from denoise_vc.vc.features import clean_wave

    wave, rate = load_audio(path)
    return light(analyse(clean_wave(wave[0], rate, fs)))


# -- the benchmark ---------------------------------------------------------------------------------------
def build_indexes(gan: Path, plan: dict, indexes: Path, targets: set[str]) -> dict[str, dict]:
    """One index per GAN target (its GAN training files) and per wGMM run (its training targets)."""
    from denoise_vc.vc.corpus import build_pairs
    from denoise_vc.vc.pipeline import Converter
    from denoise_vc.vc.retrieval import build_target_index

    indexes.mkdir(parents=True, exist_ok=True)
    info = {}
    for target in sorted(targets):
        index = build_target_index(Converter(gan, target_speaker=target), plan[target]["train"])
        index.save(indexes / f"gan_{target}.index")
        info[f"gan_{target}"] = {k: index.meta[k] for k in ("files", "seconds", "frames")}
    for name in WGMM_PAIRS.values():
        ckpt = wgmm_checkpoint(name)
        if ckpt is None:
            print(f"wGMM {name}: no finished run in runs/vc_real/{name}; left out", flush=True)
            continue
        c = Converter(ckpt)
        files = [p.target_path for p in build_pairs(c.cfg.data, int(c.cfg.seed)) if p.split == "train"]
        index = build_target_index(c, files)
        index.save(indexes / f"wgmm_{name}.index")
        info[f"wgmm_{name}"] = {k: index.meta[k] for k in ("files", "seconds", "frames")}
    return info


def pair_tasks(plan: dict, gan: Path, indexes: Path, args: argparse.Namespace) -> list[tuple[tuple[str, str], dict]]:
    pairs = [(s, t) for s in VCC_SPEAKERS for t in VCC_SPEAKERS if s != t] + list(CROSS_PAIRS)
    tasks = []
    for source, target in pairs:
        specs = system_specs(gan, indexes, (source, target), args.index_rate)
        refs = {sentence(p): p for p in plan[target]["held"]}
        for path in plan[source]["held"][: args.limit_test]:
            ref = refs.get(sentence(path))
            tasks.append(((source, target), {"source": path, "reference": ref, "specs": specs}))
    return tasks


def mcep_distance(a: np.ndarray, b: np.ndarray) -> float:
    from denoise_vc.vc.metrics import MCD_CONSTANT

    return float(MCD_CONSTANT * np.linalg.norm(a - b))


def speaker_mean(real: dict[str, dict[Path, dict]], speaker: str, leave_out: str) -> np.ndarray:
    """Mean c1..c24 over the speech frames of a speaker's held-out utterances but sentence `leave_out`."""
    items = [v for p, v in real[speaker].items() if sentence(p) != leave_out]
    return sum(v["sum"] for v in items) / sum(v["count"] for v in items)


def summarise_pair(pair, items, real, classifier, speakers) -> dict[str, dict]:
    from denoise_vc.vc.metrics import summarise

    source, target = pair
    rows = {}
    for name in items[0][1]["systems"]:
        d_t, d_s, hits, scores = [], [], [], []
        for path, result in items:
            r = result["systems"][name]
            mean = r["sum"] / r["count"]
            d_t.append(mcep_distance(mean, speaker_mean(real, target, sentence(path))))
            d_s.append(mcep_distance(mean, speaker_mean(real, source, sentence(path))))
            hits.append(speakers[int(classifier.predict(r["clf"][None])[0])])
            if "scores" in r:
                scores.append(r["scores"])
        rows[name] = {
            "utterances": len(items),
            "d_target": float(np.mean(d_t)), "d_source": float(np.mean(d_s)),
            "closer": bool(np.mean(d_t) < np.mean(d_s)),
            "closer_share": float(np.mean(np.asarray(d_t) < np.asarray(d_s))),
            "clf_target": float(np.mean([h == target for h in hits])),
            "clf_source": float(np.mean([h == source for h in hits])),
            **({"scored": len(scores), **summarise(scores)} if scores else {}),
        }  # fmt: skip
    detected = [result.get("detected_source") for _, result in items]
    rows["_detected_source_ok"] = float(np.mean([d == source for d in detected]))
    return rows


def fit_classifier(train_vectors: dict[str, list[np.ndarray]], speakers: list[str]):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.stack([v for s in speakers for v in train_vectors[s]])
    y = np.asarray([i for i, s in enumerate(speakers) for _ in train_vectors[s]])
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, C=1.0, class_weight="balanced"))
    return model.fit(x, y)


def rtf(args, gan: Path, indexes: Path, plan: dict) -> dict[str, float]:
    """Conversion real-time factor per system on SF1 -> TF1 test sentences, one thread, after a warm-up."""
    from denoise_vc.audio import load_audio

    waves = [(load_audio(p)[0][0], load_audio(p)[1]) for p in plan["SF1"]["held"][: args.rtf_utts]]
    seconds = sum(len(w) / r for w, r in waves)
    out = {}
    for name, spec in system_specs(gan, indexes, ("SF1", "TF1"), args.index_rate).items():
        c = converter(spec)
        c.convert(*waves[0])
        start = time.perf_counter()
        for w, r in waves:
            c.convert(w, r)
        out[name] = (time.perf_counter() - start) / seconds
    return out


def gan_meta(gan: Path) -> dict:
    from denoise_vc.checkpoint import load_checkpoint

    meta = load_checkpoint(gan, kind="vc")["meta"]
    history = json.loads((gan.parent / "history.json").read_text())
    return {
        "best_epoch": int(meta["epoch"]), "best_step": int(meta["step"]), "epochs_run": len(history),
        "best_metrics": {k: float(v) for k, v in meta["metrics"].items()},
        "last_metrics": {k: v for k, v in history[-1].items() if k.startswith("valid_") or k.startswith("g_")
                         or k.startswith("d_")},
    }  # fmt: skip


def run(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    plan = corpus_plan()
    folder = link_speakers(plan, out / "speakers")
    train_s = train_gan(folder, out, args)
    check_manifest(plan, Path(args.prepared))
    gan = out / "run" / "best.pth"
    speakers = sorted(plan)
    indexes = out / "indexes"
    pairs = [(s, t) for s in VCC_SPEAKERS for t in VCC_SPEAKERS if s != t] + list(CROSS_PAIRS)
    t0 = time.perf_counter()
    index_info = build_indexes(gan, plan, indexes, {t for _, t in pairs})
    index_s = time.perf_counter() - t0
    tasks = pair_tasks(plan, gan, indexes, args)
    real_files = [(s, p, part) for s in speakers for part in ("held", "train") for p in plan[s][part]]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.workers, initializer=_init_worker, initargs=(args.threads,)) as pool:
        fs = converter({"vc_checkpoint": gan, "target_speaker": speakers[0]}).fs
        real_results = list(pool.map(partial(real_task, fs=fs), [p for _, p, _ in real_files], chunksize=4))
        results = list(pool.map(convert_task, [t for _, t in tasks], chunksize=1))
    score_s = time.perf_counter() - t0
    real = {s: {} for s in speakers}
    train_vectors = {s: [] for s in speakers}
    held_vectors = []
    for (s, p, part), v in zip(real_files, real_results, strict=True):
        if part == "held":
            real[s][p] = v
            held_vectors.append((s, v["clf"]))
        else:
            train_vectors[s].append(v["clf"])
    classifier = fit_classifier(train_vectors, speakers)
    predicted = classifier.predict(np.stack([v for _, v in held_vectors]))
    clf_acc = float(np.mean([speakers[int(k)] == s for (s, _), k in zip(held_vectors, predicted, strict=True)]))
    by_pair: dict[tuple[str, str], list] = {}
    for (pair, task), result in zip(tasks, results, strict=True):
        by_pair.setdefault(pair, []).append((task["source"], result))
    rows = {f"{s}->{t}": summarise_pair((s, t), items, real, classifier, speakers) for (s, t), items in by_pair.items()}
    return {
        "settings": vars(args) | {"split": SPLIT, "speakers": speakers},
        "plan": {s: {k: [p.name for p in v] for k, v in parts.items()} for s, parts in plan.items()},
        "train_seconds": train_s,
        "index_seconds": index_s,
        "indexes": index_info,
        "score_seconds": score_s,
        "gan": gan_meta(gan),
        "classifier_heldout_accuracy": clf_acc,
        "rtf": rtf(args, gan, indexes, plan),
        "pairs": rows,
    }


# -- tables ----------------------------------------------------------------------------------------------
SYSTEMS = ("source", "stats", "gan", "gan+ret", "wgmm", "wgmm+ret")


def _cell(row: dict, key: str, fmt: str) -> str:
    value = row.get(key)
    return "-" if value is None or (isinstance(value, float) and not np.isfinite(value)) else format(value, fmt)


def pair_table(result: dict) -> str:
    head = "| pair | system | n | MCD SPTK | MCD WORLD | F0 RMSE ct | F0 corr | d_tgt dB | d_src dB | closer | share"
    head += " | clf->tgt |"
    lines = [head, "|" + "---|" * 12]
    for pair, rows in result["pairs"].items():
        for name in SYSTEMS:
            if name not in rows:
                continue
            r = rows[name]
            lines.append(
                f"| {pair} | {name} | {r['utterances']} | {_cell(r, 'mcd_sptk', '.2f')} | {_cell(r, 'mcd', '.2f')} | "
                f"{_cell(r, 'f0_rmse_cents', '.0f')} | {_cell(r, 'f0_corr', '.2f')} | {r['d_target']:.2f} | "
                f"{r['d_source']:.2f} | {'yes' if r['closer'] else 'NO'} | {r['closer_share']:.2f} | "
                f"{r['clf_target']:.2f} |"
            )
    return "\n".join(lines)


def summary_table(result: dict) -> str:
    groups = {"VCC (12 pairs)": lambda p: all(s in VCC_SPEAKERS for s in p.split("->")),
              "cross-corpus": lambda p: not all(s in VCC_SPEAKERS for s in p.split("->"))}  # fmt: skip
    head = "| pairs | system | pairs | med MCD SPTK | med F0 RMSE ct | med d_tgt | med d_src | pairs closer"
    head += " | utt closer | clf->tgt | RTF |"
    lines = [head, "|" + "---|" * 11]
    for group, member in groups.items():
        for name in SYSTEMS:
            rows = [r[name] for p, r in result["pairs"].items() if member(p) and name in r]
            if not rows:
                continue

            def med(key, rows=rows):
                values = [r[key] for r in rows if key in r and np.isfinite(r[key])]
                return float(np.median(values)) if values else float("nan")

            mcd, f0 = med("mcd_sptk"), med("f0_rmse_cents")
            utts = sum(r["utterances"] for r in rows)
            closer_utts = sum(r["closer_share"] * r["utterances"] for r in rows) / utts
            clf = sum(r["clf_target"] * r["utterances"] for r in rows) / utts
            rtf = result["rtf"].get(name)
            lines.append(
                f"| {group} | {name} | {len(rows)} | {'-' if np.isnan(mcd) else f'{mcd:.2f}'} | "
                f"{'-' if np.isnan(f0) else f'{f0:.0f}'} | {med('d_target'):.2f} | {med('d_source'):.2f} | "
                f"{sum(r['closer'] for r in rows)}/{len(rows)} | {closer_utts:.2f} | {clf:.2f} | "
                f"{'-' if rtf is None else f'{rtf:.3f}'} |"
            )
    return "\n".join(lines)


def targets(result: dict) -> str:
    gan_closer = [p for p, r in result["pairs"].items() if not r["gan"]["closer"]]
    vcc = [r for p, r in result["pairs"].items() if "mcd_sptk" in r["gan"] and "mcd_sptk" in r["gan+ret"]]
    lowered = sum(r["gan+ret"]["mcd_sptk"] < r["gan"]["mcd_sptk"] for r in vcc)
    med_gan = float(np.median([r["gan"]["mcd_sptk"] for r in vcc])) if vcc else float("nan")
    med_ret = float(np.median([r["gan+ret"]["mcd_sptk"] for r in vcc])) if vcc else float("nan")
    return "\n".join([
        f"target 1 (GAN closer to target than source by mean-mcep distance on every pair): "
        f"{'MET' if not gan_closer else 'NOT MET: ' + ', '.join(gan_closer)}",
        f"target 2 (retrieval R={result['settings']['index_rate']} lowers the GAN's MCD): median MCD SPTK "
        f"{med_gan:.2f} -> {med_ret:.2f} dB, lower on {lowered}/{len(vcc)} pairs with references: "
        f"{'MET' if med_ret < med_gan else 'NOT MET'}",
    ])  # fmt: skip


def report(result: dict) -> str:
    g = result["gan"]
    detected = {p: r["_detected_source_ok"] for p, r in result["pairs"].items()}
    lines = [
        f"GAN: trained {result['train_seconds'] / 60:.1f} min wall (preparation included); {g['epochs_run']} epochs, "
        f"best epoch {g['best_epoch']} (step {g['best_step']}); best valid metrics "
        + ", ".join(f"{k} {v:.3f}" for k, v in g["best_metrics"].items()),
        f"indexes built in {result['index_seconds']:.0f} s: "
        + ", ".join(f"{k} {v['frames']} frames/{v['seconds']:.0f} s" for k, v in result["indexes"].items()),
        f"speaker classifier (logistic regression on per-utterance mcep mean+std, trained on GAN training files): "
        f"held-out real accuracy {result['classifier_heldout_accuracy']:.2f}",
        "GAN input speaker detected correctly (share of sources): "
        + ", ".join(f"{p} {v:.2f}" for p, v in detected.items() if v < 1.0)
        + (" (all others 1.00)"),
        f"scoring took {result['score_seconds'] / 60:.1f} min",
        "",
        summary_table(result),
        "",
        pair_table(result),
        "",
        targets(result),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=15.0, help="GAN training wall-clock budget")
    parser.add_argument("--epochs", type=int, default=100000, help="epoch cap (the minutes bound it first)")
    parser.add_argument("--index-rate", type=float, default=0.75)
    parser.add_argument("--limit-test", type=int, default=16, help="held-out source utterances per pair")
    parser.add_argument("--rtf-utts", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (here and in each worker)")
    parser.add_argument("--workers", type=int, default=1, help="scoring processes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "runs" / "vc_nonparallel"))
    parser.add_argument("--prepared", default=str(ROOT / "runs" / "vc_nonparallel_prepared"),
                        help="GAN feature cache (shared between --out folders)")  # fmt: skip
    parser.add_argument("--reuse-runs", action="store_true", help="score the existing GAN run instead of training")
    parser.add_argument("--override", action="append", default=[], help="extra vc-train override (repeatable)")
    parser.add_argument("--json", help="write every figure here")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    print(header("Non-parallel VC (issue 16): StarGAN-VC +- retrieval vs wGMM on VCC 2016 + VCTK + LibriSpeech",
                 args.seed), flush=True)  # fmt: skip
    result = run(args)
    print(report(result), flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
