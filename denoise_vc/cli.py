"""The `denoise-vc` command: train, denoise, evaluate, demo, and the voice-conversion commands.

This is the one module that wires data, models, solvers and inference together. Errors a user can
fix are printed as one line (no traceback) with a non-zero exit code.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from denoise_vc.errors import DenoiseVCError

EXIT_ERROR = 1
EXIT_PARTIAL = 3  # some inputs failed, the others were processed


def _overrides(values: list[str]) -> list[str]:
    bad = [v for v in values if "=" not in v]
    if bad:
        raise DenoiseVCError(f"expected key=value overrides, got {' '.join(bad)!r}")
    return values


def _train_config(overrides: list[str], config_file: str | None = None):
    """Hydra-composed config, or a saved config YAML (e.g. a sweep's best_config.yaml), plus overrides."""
    from denoise_vc.config import apply_overrides, compose_config, load_yaml, resolve_paths

    if config_file:
        return resolve_paths(apply_overrides(load_yaml(config_file), _overrides(overrides)))
    return resolve_paths(compose_config(_overrides(overrides)))


def _preflight_config(cfg):
    """The config a data-parallel run's driver builds its solver from, to check settings and data before
    any worker starts: no tracker run of its own."""
    from denoise_vc.distributed import check_parallel_settings

    check_parallel_settings(cfg)
    preflight = cfg.copy()
    preflight.logger = {"backends": []}
    return preflight


def _on_ray(cfg) -> bool:
    """Several workers, or GPU workers (even one): Ray Train; otherwise this process."""
    return int(cfg.trainer.workers) > 1 or bool(cfg.trainer.gpu)


def _fit(solver, cfg, task: str) -> dict:
    """Train here, or on `trainer.workers` Ray Train workers."""
    if not _on_ray(cfg):
        return solver.fit()
    from denoise_vc.distributed import train_parallel

    solver.logger.close()
    print(f"data-parallel on {cfg.trainer.workers} Ray Train workers ({'GPU' if cfg.trainer.gpu else 'CPU'})")
    return train_parallel(cfg, task)


def cmd_train(args: argparse.Namespace) -> int:
    from denoise_vc.models.introspect import count_parameters, receptive_field
    from denoise_vc.solvers.factory import build_solver

    cfg = _train_config(args.overrides, getattr(args, "config", None))
    parallel = _on_ray(cfg)
    solver = build_solver(_preflight_config(cfg) if parallel else cfg)  # every config mistake surfaces here
    rf = receptive_field(solver.model)
    sr = int(cfg.data.sample_rate)
    print(
        f"model {cfg.model.name}: {count_parameters(solver.model):,} parameters, receptive field "
        f"{rf} samples ({rf / sr:.3f} s at {sr} Hz){' or more' if rf >= 65536 else ''}"
    )
    print(f"run dir {cfg.run_dir}")
    summary = _fit(solver, cfg, "denoise")
    best = summary["best"]
    if best:
        metric = str(cfg.solver.valid_metric)
        chosen_by = "" if metric in ("si_sdr", "si_sdr_i") else f"valid {metric} {best['valid_' + metric]:.3f}, "
        print(
            f"{summary['stop_reason']} after {summary['epochs']} epochs; best epoch {best['epoch']}: {chosen_by}"
            f"valid SI-SDR {best['valid_si_sdr']:.2f} dB (improvement {best['valid_si_sdr_i']:.2f} dB); "
            f"checkpoint {Path(cfg.run_dir) / 'best.pth'}"
        )
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from denoise_vc.tune import run_sweep

    summary = run_sweep(_train_config(args.overrides))
    return EXIT_PARTIAL if summary["errored"] else 0


def cmd_export(args: argparse.Namespace) -> int:
    from denoise_vc.export import export_bundle, verify_bundle
    from denoise_vc.paths import not_an_input
    from denoise_vc.pretrained import resolve_checkpoint

    if args.verify:
        result = verify_bundle(args.verify)
        print(
            f"{args.verify}: OK, standalone output matches the package on {result['samples']} samples "
            f"at {result['sample_rate']} Hz (max abs difference {result['max_abs_error']:.1e})"
        )
        return 0
    if not (args.checkpoint and args.output):
        raise DenoiseVCError("export needs --checkpoint CKPT -o BUNDLE.zip (or --verify BUNDLE.zip)")
    checkpoint = resolve_checkpoint(args.checkpoint)  # a path, or a shipped model's name
    print(f"wrote {export_bundle(checkpoint, not_an_input(args.output, checkpoint))}")
    return 0


def cmd_route(args: argparse.Namespace) -> int:
    from denoise_vc.pretrained import resolve_checkpoint
    from denoise_vc.routing import route_checkpoints

    clean, noisy = resolve_checkpoint(args.clean), resolve_checkpoint(args.noisy)
    out = route_checkpoints(clean, noisy, args.output, tuple(args.band_hz), tuple(args.log_ratio))
    (low, high), (lo, hi) = args.band_hz, args.log_ratio
    print(f"wrote {out}: {args.clean} everywhere, {args.noisy} where it removes much in {low:g}-{high:g} Hz", end="")
    print(f" (log10 power ratio {lo:g} .. {hi:g})")
    return 0


def _inputs(paths: list[str]) -> list[tuple[Path, Path]]:
    """(file, path relative to the output folder) for each input file or every audio or biosignal file
    (.wav/.flac/.ogg, .mat, WFDB .hea, .csv) in a folder."""
    from denoise_vc.audio import AUDIO_SUFFIXES
    from denoise_vc.signal_files import SIGNAL_SUFFIXES

    found = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            kinds = AUDIO_SUFFIXES + SIGNAL_SUFFIXES
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in kinds)
            if not files:
                print(f"error: {path}: no .wav/.flac/.ogg/.mat/.hea/.csv files", file=sys.stderr)
            found += [(f, f.relative_to(path)) for f in files]
        else:
            found.append((path, Path(path.name)))
    return found


def _output_file(inputs: list[str], output: str, formats: tuple[str, ...]) -> Path | None:
    """`-o NAME.EXT` names the output file itself (as sox and ffmpeg read it) when there is one input file and
    EXT is a format the command can write for it (`formats`); None means `-o` is a folder, as always.

    An existing file there is refused, never overwritten; a known format the command cannot write is refused
    rather than turned into a folder called `out.flac`."""
    from denoise_vc.audio import AUDIO_SUFFIXES, WFDB_SUFFIX
    from denoise_vc.signal_files import SIGNAL_SUFFIXES

    out = Path(output)
    suffix = out.suffix.lower()
    if len(inputs) != 1 or Path(inputs[0]).is_dir() or out.is_dir() or suffix not in AUDIO_SUFFIXES + SIGNAL_SUFFIXES:
        return None
    if suffix not in formats:
        raise DenoiseVCError(f"-o {out}: this command writes {' or '.join(formats)} for {inputs[0]}; "
                             "name the output so, or give a folder")  # fmt: skip
    written = [out, out.with_suffix(".dat")] if suffix == WFDB_SUFFIX else [out]  # a WFDB record is two files
    for path in written:
        if path.exists():
            raise DenoiseVCError(
                f"-o {out}: {path} is an existing file; not overwritten (remove it or choose another name)"
            )
    return out


def _exit_status(failures: int, total: int, done: str) -> int:
    """0, EXIT_PARTIAL when some of several files failed, EXIT_ERROR when all did; the summary line is printed
    only for several inputs, so a single file's own error line is the last word."""
    if not failures:
        return 0
    if total > 1:
        print(f"{total - failures} of {total} files {done}, {failures} failed", file=sys.stderr)
    return EXIT_PARTIAL if failures < total else EXIT_ERROR


def _set_sampler_steps(model, steps: int | None, checkpoint: str) -> None:
    """`--steps N`: a diffusion checkpoint's network passes per window, instead of the trained default."""
    if steps is None:
        return
    if not hasattr(model, "steps"):
        raise DenoiseVCError(f"{checkpoint}: --steps applies to model=diffusion checkpoints only")
    if steps < 1:
        raise DenoiseVCError(f"--steps must be at least 1, not {steps}")
    model.steps = int(steps)


def _check_flags(args: argparse.Namespace) -> None:
    """`--window-s` and `--rate` within the ranges their config keys have (NaN, 0 or 1e9 would end deep inside,
    or 0 be ignored), before any model is read."""
    from denoise_vc.settings import RULES, in_range

    for flag, value, key, unit in (
        ("--window-s", args.window_s, "inference.window_s", "seconds"),
        ("--rate", args.rate, "data.sample_rate", "Hz"),
    ):
        if value is not None and not in_range(value, key):
            low, high, _ = RULES[key]
            raise DenoiseVCError(f"{flag} {value:g}: out of range ({unit} in [{low:g}, {high:g}])")


def cmd_denoise(args: argparse.Namespace) -> int:
    from denoise_vc.checkpoint import load_model
    from denoise_vc.config import apply_overrides
    from denoise_vc.inference import WindowPlan, enhance_file, enhance_signal_file
    from denoise_vc.pretrained import resolve_checkpoint
    from denoise_vc.signal_files import SIGNAL_SUFFIXES
    from denoise_vc.solvers.base import pick_device

    single = _output_file(args.inputs, args.output, (Path(args.inputs[0]).suffix.lower(),))
    _check_flags(args)
    device = pick_device(args.device)
    args.checkpoint = str(resolve_checkpoint(args.checkpoint))
    model, ckpt = load_model(args.checkpoint, device=device)
    _set_sampler_steps(model, args.steps, args.checkpoint)
    rate = int(ckpt["meta"]["sample_rate"])
    trained = apply_overrides(ckpt["config"], [])
    inf = trained.inference  # the checkpoint's plan, as export uses
    file_rate = args.rate or trained.data.get("mat_sample_rate")  # for files that do not state their rate
    if args.window_s is not None:
        inf.window_s = args.window_s
    plan = WindowPlan.for_model(model, inf, rate)
    outdir = Path(args.output)
    if single is None and outdir.exists() and not outdir.is_dir():
        raise DenoiseVCError(f"-o {outdir}: is an existing file; denoise writes into an output folder")
    inputs = _inputs(args.inputs)
    failures = 0
    for src, rel in inputs:
        dst = single or outdir / rel
        try:
            if src.suffix.lower() in SIGNAL_SUFFIXES:
                variable = args.mat_variable or trained.data.get("mat_variable")
                enhance_signal_file(model, rate, src, dst, plan, device, int(inf.batch_windows), file_rate, variable)
            else:
                enhance_file(model, rate, src, dst, plan, device=device, batch_windows=int(inf.batch_windows))
            print(f"{src} -> {dst}")
        except DenoiseVCError as exc:
            failures += 1
            print(f"error: {exc}", file=sys.stderr)
    if not inputs:
        raise DenoiseVCError("no input files given")
    return _exit_status(failures, len(inputs), "denoised")


def _levels(gains: list[float] | None, snrs: list[float] | None, evaluate_cfg) -> list[tuple]:
    """(gain, snr_db) pairs from the command line, else from the config's `evaluate` section."""
    if not gains and not snrs:
        gains, snrs = list(evaluate_cfg.gains), list(evaluate_cfg.snrs)
    _check_levels(gains, snrs)
    return [(None, float(s)) for s in snrs or []] + [(float(g), None) for g in gains or []]


def _check_levels(gains: list[float] | None, snrs: list[float] | None) -> None:
    import math

    bad = [f"--gains {g}" for g in gains or [] if not (math.isfinite(g) and 0 <= g <= 1000)]
    bad += [f"--snrs {s}" for s in snrs or [] if not (math.isfinite(s) and -100 <= s <= 100)]
    if bad:
        raise DenoiseVCError(f"{', '.join(bad)}: out of range (gains are finite in [0, 1000], SNRs in [-100, 100] dB)")


def evaluate_checkpoint(
    checkpoint: str | Path,
    overrides: list[str],
    gains=None,
    snrs=None,
    device: str = "auto",
    steps: int | None = None,
    plots: str | None = None,
):
    """(results per level, sample rate) of a checkpoint (a path, a shipped model's name, or None for the shipped
    default) on its test set, each segment through `denoise`'s sliding windows (the checkpoint's inference plan);
    overrides change the data config; `plots` is a folder for one figure per level."""
    from denoise_vc.checkpoint import load_model
    from denoise_vc.config import apply_overrides, resolve_paths
    from denoise_vc.evaluation import evaluate_levels
    from denoise_vc.inference import WindowPlan
    from denoise_vc.pretrained import resolve_checkpoint
    from denoise_vc.solvers.base import pick_device
    from denoise_vc.solvers.factory import build_eval_set

    checkpoint = resolve_checkpoint(checkpoint)
    device_t = pick_device(device)
    model, ckpt = load_model(checkpoint, device=device_t)
    _set_sampler_steps(model, steps, str(checkpoint))
    cfg = resolve_paths(apply_overrides(ckpt["config"], _overrides(overrides)))
    data = cfg.data
    levels = _levels(gains, snrs, cfg.evaluate)
    test = build_eval_set(cfg, "test", int(data.test_segment_length), int(data.test_items))
    plan = WindowPlan.for_model(model, cfg.inference, int(data.sample_rate))
    results = evaluate_levels(
        model, test, levels, full=True, peaks=bool(data.peaks), device=device_t, band_hz=data.get("band_hz"),
        plan=plan, plots=plots,
    )  # fmt: skip
    return results, int(data.sample_rate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from denoise_vc.evaluation import format_table
    from denoise_vc.paths import not_an_input
    from denoise_vc.pretrained import resolve_checkpoint

    _check_levels(args.gains, args.snrs)
    checkpoint = resolve_checkpoint(args.checkpoint)
    if args.json:
        not_an_input(args.json, checkpoint)
    if args.noisy or args.clean:
        return _evaluate_folders(args, checkpoint)
    results, rate = evaluate_checkpoint(
        checkpoint, args.overrides, args.gains, args.snrs, args.device, args.steps, args.plots
    )
    print(format_table(results, rate))
    if args.json:
        _write_json(
            Path(args.json),
            {"checkpoint": str(Path(checkpoint).resolve()), "sample_rate": rate, "levels": results},
        )
    return 0


def _evaluate_folders(args: argparse.Namespace, checkpoint: Path) -> int:
    """`evaluate --noisy DIR [--clean DIR]`: real recordings through `denoise` itself, scored against their clean
    partners (SI-SDR, PESQ, STOI, ESTOI) or, without references, by DNSMOS; noisy input beside output per file."""
    import tempfile

    from denoise_vc.evaluation import dnsmos_folder, format_folder_table, mean_of_files, pair_folders, score_folder

    if not args.noisy:
        raise DenoiseVCError("--clean needs --noisy DIR, the noisy recordings to denoise and score")
    if args.gains or args.snrs or args.overrides or args.plots:
        raise DenoiseVCError(
            "--gains, --snrs, --plots and key=value overrides apply to the test set, not to --noisy folders"
        )
    pairs, extra_clean = pair_folders(args.noisy, args.clean)
    if args.clean is None:
        from denoise_vc.dnsmos import check_available

        check_available()  # before any denoising
    with tempfile.TemporaryDirectory(prefix="denoise-vc-evaluate-") as tmp:
        _denoise_folder(checkpoint, Path(args.noisy), Path(tmp), args.device, args.steps)
        score = score_folder if args.clean else dnsmos_folder
        files = score(pairs, tmp, progress=sys.stderr.isatty())
    mean = mean_of_files(files)
    print(format_folder_table(files, mean, dnsmos=args.clean is None, extra_clean=len(extra_clean)))
    if args.json:
        _write_json(
            Path(args.json),
            {
                "checkpoint": str(Path(checkpoint).resolve()),
                "mode": "reference" if args.clean else "dnsmos",
                "noisy": str(Path(args.noisy).resolve()),
                "clean": str(Path(args.clean).resolve()) if args.clean else None,
                "files": files,
                "mean": mean,
            },
        )
    return 0


def _denoise_folder(checkpoint: Path, noisy: Path, outdir: Path, device: str, steps: int | None) -> None:
    """Every audio file below `noisy` through the `denoise` command itself (the checkpoint's inference plan,
    windows, resampling, clipping and subtype) into `outdir`, quietly; its first error becomes this one's."""
    import contextlib
    import io

    argv = ["denoise", str(noisy), "-o", str(outdir), "--checkpoint", str(checkpoint), "--device", device]
    args = build_parser().parse_args(argv + (["--steps", str(steps)] if steps is not None else []))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = args.func(args)
    if code:
        errors = [line.removeprefix("error: ") for line in err.getvalue().splitlines() if line.startswith("error: ")]
        raise DenoiseVCError(errors[0] if errors else f"denoise failed on {noisy} (exit status {code})")


def _write_json(path: Path, payload: dict) -> None:
    from denoise_vc.paths import write_json

    write_json(path, payload, indent=2)


def _vc_config(overrides: list[str]):
    from denoise_vc.config import compose_config, resolve_paths

    cfg = resolve_paths(compose_config(_overrides(overrides), config_name="vc"))
    cfg.data.prepared_dir = str(Path(cfg.data.prepared_dir).expanduser().resolve())
    for key in ("source", "target"):  # checkpoints must find the corpus from any working directory
        if cfg.data[key] != "builtin":
            cfg.data[key] = str(Path(cfg.data[key]).expanduser().resolve())
    return cfg


def cmd_vc_prepare(args: argparse.Namespace) -> int:
    from denoise_vc.vc.prepare import prepare

    cfg = _vc_config(args.overrides)
    manifest = prepare(cfg)
    counts = ", ".join(f"{len(names)} {split}" for split, names in manifest["splits"].items())
    skipped = len(manifest["skipped"])
    print(
        f"prepared {counts} pairs in {cfg.data.prepared_dir} "
        f"({manifest['computed']} computed, {manifest['reused']} reused from the cache"
        f"{f', {skipped} skipped: DTW cannot align them' if skipped else ''})"
    )
    return 0


def cmd_vc_train(args: argparse.Namespace) -> int:
    from denoise_vc.models.introspect import count_parameters
    from denoise_vc.solvers.vc import build_vc_solver

    cfg = _vc_config(args.overrides)
    parallel = _on_ray(cfg)
    solver = build_vc_solver(_preflight_config(cfg) if parallel else cfg)  # also prepares the features once
    print(f"model {cfg.model.name}: {count_parameters(solver.model):,} parameters; run dir {cfg.run_dir}")
    summary = _fit(solver, cfg, "vc")
    best = summary["best"]
    if best:
        metric = str(cfg.solver.valid_metric)
        print(
            f"{summary['stop_reason']} after {summary['epochs']} epochs; best epoch {best['epoch']}: "
            f"valid {metric} {best['valid_' + metric]:.3f}; checkpoint {Path(cfg.run_dir) / 'best.pth'}"
        )
    return 0


def _denoiser_checkpoint(value: str) -> Path:
    """`--denoiser`'s checkpoint: a path, or a shipped model's name such as default."""
    from denoise_vc.pretrained import resolve_checkpoint

    try:
        return resolve_checkpoint(value)
    except DenoiseVCError as exc:
        raise DenoiseVCError(f"--denoiser {value}: {str(exc).split('; pass')[0]}") from None


def _converter(args: argparse.Namespace):
    """The Converter `convert` and `vc-evaluate` describe with their shared options."""
    from omegaconf import OmegaConf

    from denoise_vc.solvers.base import pick_device
    from denoise_vc.vc.pipeline import Converter

    converter = Converter(
        args.vc,
        _denoiser_checkpoint(args.denoiser) if args.denoiser else None,
        device=str(pick_device(args.device)),
        index=args.index,
        index_rate=args.index_rate,
        target_speaker=args.target_speaker,
        gmm=args.gmm,
        gmm_weight=args.gmm_weight,
    )
    front_end = OmegaConf.select(converter.cfg, "data.front_end.denoiser", default=None)
    if front_end and not args.denoiser:  # a noise-robust model converts best behind the front-end it learnt
        hint = f"for noisy input pass --denoiser {front_end}"
        print(f"note: {args.vc} was trained behind the denoiser {front_end}; {hint}", file=sys.stderr)
    return converter


def cmd_convert(args: argparse.Namespace) -> int:
    from denoise_vc.errors import AudioFileError

    single = _output_file(args.inputs, args.output, (".wav",))
    converter = _converter(args)
    inputs = _inputs(args.inputs)
    if not inputs:
        raise DenoiseVCError("no input files given")
    outdir = Path(args.output)
    sources = {src.resolve() for src, _ in inputs}
    written: dict[Path, Path] = {}  # every output is .wav: a.flac and a.wav would both become a.wav
    failures = 0
    for src, rel in inputs:
        dst = single or outdir / rel.with_suffix(".wav")
        try:
            if dst.resolve() in sources:
                raise AudioFileError(f"{src}: output would overwrite the input {dst}; choose another output folder")
            if dst.exists() and dst.parent.resolve() == src.parent.resolve():  # a.flac -> a.wav beside it
                raise AudioFileError(
                    f"{src}: output would overwrite the input's neighbour {dst}; choose another folder"
                )
            if dst.resolve() in written:
                raise AudioFileError(f"{src}: output {dst} is already the conversion of {written[dst.resolve()]}")
            converter.convert_file(src, dst)
            written[dst.resolve()] = src
            print(f"{src} -> {dst}")
        except DenoiseVCError as exc:
            failures += 1
            print(f"error: {exc}", file=sys.stderr)
    return _exit_status(failures, len(inputs), "converted")


def cmd_vc_evaluate(args: argparse.Namespace) -> int:
    from denoise_vc.config import apply_overrides
    from denoise_vc.paths import not_an_input
    from denoise_vc.vc.corpus import build_pairs
    from denoise_vc.vc.pipeline import evaluate_pairs, format_results

    if args.json:
        not_an_input(args.json, args.vc, *([args.denoiser] if args.denoiser else []))
    converter = _converter(args)
    cfg = apply_overrides(converter.cfg, _overrides(args.overrides))
    if converter.speakers is not None:  # many-to-many: the built-in test pairs end in the target's voice
        converter.speakers.evaluation_data(cfg.data)
    pairs = [p for p in build_pairs(cfg.data, int(cfg.seed)) if p.split == "test"]
    if not pairs:
        raise DenoiseVCError("the test split is empty")
    results = evaluate_pairs(converter, pairs, progress=True)
    print(format_results(results, len(pairs)))
    if args.json:
        _write_json(Path(args.json), {"vc": str(Path(args.vc).resolve()), "pairs": len(pairs), "results": results})
    return 0


def cmd_vc_gmm(args: argparse.Namespace) -> int:
    """Fit the joint-density GMM on a VC run's training pairs: the second opinion `convert --gmm` fuses in."""
    from denoise_vc.paths import not_an_input
    from denoise_vc.vc.front_end import is_denoised_copy
    from denoise_vc.vc.gmm import JointDensityGMM
    from denoise_vc.vc.pipeline import Converter
    from denoise_vc.vc.prepare import run_pairs

    out = Path(args.output) if args.output else Path(args.vc).parent / "gmm.pt"
    not_an_input(out, args.vc)
    if out.exists() and not args.overwrite:
        raise DenoiseVCError(f"{out}: exists (a GMM fit takes minutes); pass --overwrite or another -o")
    converter = Converter(args.vc)  # refuses a checkpoint `convert` would refuse, before the long fit
    cfg, fs = converter.cfg, converter.fs
    if fs.vocoder != "world":
        raise DenoiseVCError(f"{args.vc}: convert --gmm fuses WORLD frames; this model uses vocoder={fs.vocoder}")
    train = [p for p in run_pairs(cfg) if p.split == "train"]
    copies = sum(is_denoised_copy(p.name) for p in train)
    extra = f" ({copies} of them noisy-then-denoised copies, as data.front_end trained the model)" if copies else ""
    print(f"fitting a {args.mixtures}-mixture joint-density GMM on {len(train)} train pairs of {args.vc}{extra}")
    start = time.perf_counter()
    try:
        gmm = JointDensityGMM.fit(
            [(p.source(), p.target()) for p in train], fs, args.mixtures, args.max_iter, int(cfg.seed), print
        )
    except ValueError as exc:  # scikit-learn's EM on degenerate data
        raise DenoiseVCError(f"GMM fit on {args.vc}'s train pairs failed: {str(exc).splitlines()[0][:160]}") from None
    gmm.meta["fit_seconds"] = round(time.perf_counter() - start, 1)
    gmm.save(out)
    print(f"fitted in {gmm.meta['fit_seconds'] / 60:.1f} min -> {out} (convert --vc {args.vc} --gmm {out})")
    return 0


def cmd_vc_index(args: argparse.Namespace) -> int:
    """A faiss index of the target speaker's frames for retrieval conversion (`convert --index`)."""
    from denoise_vc.paths import not_an_input
    from denoise_vc.vc.pipeline import Converter
    from denoise_vc.vc.retrieval import build_target_index

    out = Path(args.output)
    files = [f for f, _ in _inputs(args.inputs)]
    not_an_input(out, args.vc, *files)
    if out.suffix != ".index":
        raise DenoiseVCError(f"-o {out}: name the index NAME.index (NAME.index.json is written beside it)")
    if not files:
        raise DenoiseVCError("no target recordings given")
    converter = Converter(args.vc, target_speaker=args.target_speaker)
    index = build_target_index(converter, files, progress=True)
    index.save(out)
    meta = index.meta
    print(f"indexed {meta['frames']} speech frames ({meta['seconds']:.1f} s, {meta['files']} files) -> {out}")
    return 0


def cmd_vc_slice(args: argparse.Namespace) -> int:
    """RVC-style training data: (denoise ->) cut at silences -> overlapping chunks at the model rate and 16 kHz
    -> F0 (Hz and coarse code); resumable, one line per input."""
    from dataclasses import fields

    from denoise_vc.audio import AUDIO_SUFFIXES
    from denoise_vc.vc.slicing import (
        SliceSettings,
        check_output_folder,
        chunk_prefix,
        load_manifest,
        output_names_taken,
        slice_file,
    )

    names = [f.name for f in fields(SliceSettings) if f.name != "denoiser"]
    given = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    settings = SliceSettings(**given)
    settings.check()  # every range before any work
    out = Path(args.output)
    check_output_folder(out, args.inputs)
    denoise = None
    if args.denoiser:
        from denoise_vc.solvers.base import pick_device
        from denoise_vc.vc.pipeline import Denoiser

        ckpt = _denoiser_checkpoint(args.denoiser)
        denoise = Denoiser.load(ckpt, pick_device(args.device))  # refuses a missing or wrong checkpoint
        stat = ckpt.stat()
        settings = SliceSettings(**given, denoiser=f"{ckpt.resolve()}:{stat.st_size}:{stat.st_mtime_ns}")
    named = {str(Path(raw)) for raw in args.inputs}  # a folder's .csv/.mat files (metadata.csv) are not audio
    inputs = [(f, rel) for f, rel in _inputs(args.inputs) if f.suffix.lower() in AUDIO_SUFFIXES or str(f) in named]
    if not inputs:
        raise DenoiseVCError("no input files given")
    manifest = load_manifest(out)
    claimed: dict[str, Path] = {}
    failures = done = skipped = chunks = 0
    seconds = 0.0
    for src, rel in inputs:
        prefix = chunk_prefix(rel)
        try:
            clash = output_names_taken(prefix, src, claimed)
            if clash:
                raise DenoiseVCError(clash)
            claimed[prefix] = src
            result = slice_file(src, prefix, out, settings, manifest, denoise)
            if result is None:
                skipped += 1
                print(f"{src}: skipped: up to date")
                continue
            done += 1
            chunks += len(result.chunks)
            seconds += result.seconds
            short = f", {result.dropped} shorter than {settings.min_chunk_s:g} s dropped" if result.dropped else ""
            print(f"{src}: {len(result.chunks)} chunks ({result.seconds:.1f} s) from {result.segments} segments{short}")
        except DenoiseVCError as exc:
            failures += 1
            print(f"error: {exc}", file=sys.stderr)
    print(
        f"{len(inputs)} inputs: {done} sliced ({chunks} chunks, {seconds:.1f} s), {skipped} up to date, "
        f"{failures} failed; output in {out}"
    )
    return _exit_status(failures, len(inputs), "sliced")


DEMO_OVERRIDES = [
    "run_dir=runs/demo",
    "model=subband_crn",  # the compact spectral model: in minutes it helps at every level (NOTE.md, session 4)
    "loss=spectral",
    "solver.max_minutes=4",
    "solver.epochs=100",
    "solver.patience=0",
]


def _noisy_and_denoised(scores: dict, key: str, digits: int) -> str:
    """'noisy -> denoised' for one metric, n/a where it is undefined."""
    return " -> ".join("n/a" if scores[k] is None else f"{scores[k]:.{digits}f}" for k in (f"{key}_noisy", key))


def _print_example(title: str, scores: dict, rate: int) -> None:
    from denoise_vc.metrics import pesq_mode, quality_rate

    quality = quality_rate(rate)
    print(
        f"{title}, noisy -> denoised: SI-SDR {_noisy_and_denoised(scores, 'si_sdr', 2)} dB, "
        f"PESQ {pesq_mode(quality) + ' ' if quality else ''}{_noisy_and_denoised(scores, 'pesq', 2)}, "
        f"STOI {_noisy_and_denoised(scores, 'stoi', 3)}"
    )


def _denoise_example(noisy_path: Path, clean, rate: int, out_dir: Path, checkpoint: str) -> dict:
    """Denoise one file with `denoise` itself and score it against its clean reference."""
    import soundfile as sf

    from denoise_vc.audio import load_audio
    from denoise_vc.metrics import score_pair

    cmd_denoise(
        argparse.Namespace(
            inputs=[str(noisy_path)],
            output=str(out_dir),
            checkpoint=checkpoint,
            device="auto",
            window_s=None,
            steps=None,
            rate=None,
        )
    )
    denoised, _ = sf.read(out_dir / noisy_path.name, dtype="float32")
    noisy = load_audio(noisy_path, rate)[0][0]
    return score_pair(denoised, clean, noisy, rate)


def cmd_demo(args: argparse.Namespace) -> int:
    """Denoise a real recording with the shipped model; train a denoiser for a few minutes; denoise an example
    with it and print its test-set table, every metric beside the noisy input's."""
    import numpy as np

    from denoise_vc.audio import load_audio, write_audio_atomic
    from denoise_vc.data.mixing import mix
    from denoise_vc.data.noises import generate_noise
    from denoise_vc.data.synth import speech_like
    from denoise_vc.evaluation import format_table
    from denoise_vc.pretrained import EXAMPLE_CLEAN, EXAMPLE_NOISY, EXAMPLE_SOURCE, shipped_models
    from denoise_vc.settings import check_settings
    from denoise_vc.solvers.factory import build_denoise_loss, build_denoiser, denoiser_options

    overrides = DEMO_OVERRIDES + _overrides(args.overrides)
    cfg = _train_config(overrides)
    check_settings(cfg)  # a bad training setting is refused before anything is written
    build_denoiser(cfg.model, int(cfg.seed), int(cfg.data.sample_rate), *denoiser_options(cfg.data))
    build_denoise_loss(cfg.loss, int(cfg.data.sample_rate))
    run_dir = Path(cfg.run_dir)
    shipped = None
    if "default" in shipped_models():
        print("== 1/4 denoise a real recording with the shipped default model ==")
        clean, rate = load_audio(EXAMPLE_CLEAN)
        shipped = _denoise_example(EXAMPLE_NOISY, clean[0], rate, run_dir / "example_real", "default")
        _print_example(f"real recording ({EXAMPLE_SOURCE})", shipped, rate)
    else:
        print("== 1/4 (skipped: no default model is installed with this copy of the package) ==")

    print("== 2/4 train a denoiser on built-in speech-like data ==")
    cmd_train(argparse.Namespace(overrides=overrides))
    rate = int(cfg.data.sample_rate)

    print("== 3/4 denoise an example file with it ==")
    clean = speech_like(8.0, rate, seed=12345)
    noise = generate_noise("babble", 8.0, rate, seed=54321) * 0.5 + generate_noise("engine", 8.0, rate, seed=1) * 0.5
    noise = noise * np.sqrt(np.mean(clean**2)) / np.sqrt(np.mean(noise**2))
    example = run_dir / "example"
    write_audio_atomic(example / "clean.wav", clean, rate)
    write_audio_atomic(example / "noisy.wav", mix(clean, noise, gain=1.0), rate)
    scores = _denoise_example(example / "noisy.wav", clean, rate, example / "denoised", str(run_dir / "best.pth"))
    _print_example("example (babble + engine at gain 1.0)", scores, rate)

    print("== 4/4 evaluate it on the built-in test set ==")
    results, rate = evaluate_checkpoint(run_dir / "best.pth", [])
    print(format_table(results, rate))
    _write_json(run_dir / "metrics.json", {"levels": results, "example": scores, "shipped_model_real": shipped})
    return 0


def _add_blend_options(p: argparse.ArgumentParser) -> None:
    """What `convert` and `vc-evaluate` may blend into the model's spectra: retrieved target frames, a GMM's."""
    p.add_argument("--index", help="retrieval: a vc-index file of the target speaker built for this --vc")
    p.add_argument(
        "--index-rate", type=float, default=0.75, help="share of retrieved target frames, 0..1 (default 0.75)"
    )
    p.add_argument("--gmm", help="fuse the spectra with this vc-gmm model's conversion (vocoder=world models)")
    p.add_argument(
        "--gmm-weight", type=float, default=0.5, help="the GMM's share of the fused spectra, 0..1 (default 0.5)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="denoise-vc", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a denoiser (Hydra overrides: model=wave_unet solver.epochs=3 ...)")
    p.add_argument("--config", help="start from this config YAML (e.g. a sweep's best_config.yaml)")
    p.add_argument("overrides", nargs="*", help="key=value config overrides")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("tune", help="Ray Tune sweep (tune=<space> tune.num_samples=20 tune.resources.gpu=0.5 ...)")
    p.add_argument("overrides", nargs="*", help="key=value config overrides")
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("models", help="list the denoisers installed with the package")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("denoise", help="denoise files or folders of any length")
    p.add_argument("inputs", nargs="+", help="audio (wav/flac/ogg) or biosignal (.mat, .hea, .csv) files or folders")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="output folder, or for one input file the output file in its format "
        "(inputs and existing files are never overwritten)",
    )
    p.add_argument(
        "--checkpoint",
        default=None,
        help="a denoiser checkpoint (best.pth) or a shipped model's name (default: default)",
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--window-s", type=float, default=None, help="window length in seconds (default from config)")
    p.add_argument("--steps", type=int, default=None, help="diffusion checkpoints: network passes (default: trained)")
    p.add_argument(
        "--rate", type=int, default=None, help=".mat/.csv files that state no rate: their rate in Hz (default: trained)"
    )
    p.add_argument(
        "--mat-variable", default=None, help=".mat files holding several arrays: the signal's name (default: trained)"
    )
    p.set_defaults(func=cmd_denoise)

    p = sub.add_parser(
        "evaluate", help="metrics on the test set at several noise levels, or on folders of real recordings"
    )
    p.add_argument("--checkpoint", help="a denoiser checkpoint or a shipped model's name (default: the default model)")
    p.add_argument(
        "--noisy", metavar="DIR", help="score these recordings as `denoise` outputs them (with --clean, else DNSMOS)"
    )
    p.add_argument("--clean", metavar="DIR", help="clean references for --noisy, matched by file name")
    p.add_argument("--json", help="also write the results as JSON here")
    p.add_argument("--gains", type=float, nargs="+", help="noise gains (default 0.3 0.5 0.6 1.0)")
    p.add_argument("--snrs", type=float, nargs="+", help="SNR levels in dB instead of / besides gains")
    p.add_argument(
        "--plots", metavar="DIR", help="test set: one figure per level here (ECG: clean/noisy/denoised beats)"
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--steps", type=int, default=None, help="diffusion checkpoints: network passes (default: trained)")
    p.add_argument("overrides", nargs="*", help="key=value overrides of the checkpoint's config")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("export", help="hand-off bundle: checkpoint, config, TorchScript, standalone script")
    p.add_argument("--checkpoint", help="a denoiser checkpoint (best.pth) or a shipped model's name (default)")
    p.add_argument("-o", "--output", help="bundle zip to write")
    p.add_argument("--verify", metavar="BUNDLE", help="unpack a bundle and check its standalone script")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("route", help="one checkpoint: an all-round denoiser, and a noisy-end finetune where needed")
    p.add_argument("--clean", required=True, help="the all-round denoiser (used wherever it removes little)")
    p.add_argument("--noisy", required=True, help="the finetune for the noisiest inputs, same sample rate")
    p.add_argument("-o", "--output", required=True, help="the routed checkpoint to write (a new file)")
    p.add_argument(
        "--band-hz", type=float, nargs=2, default=[5.0, 40.0],
        help="band where the removed noise is measured (default: the heart's; the defaults were measured on ECG)",
    )  # fmt: skip
    p.add_argument(
        "--log-ratio", type=float, nargs=2, default=[-1.5, -0.5],
        help="log10 of removed / kept band power: all-round model below the first, finetune above the second",
    )  # fmt: skip
    p.set_defaults(func=cmd_route)

    p = sub.add_parser("vc-prepare", help="cache parallel-corpus features (built-in speakers or data.source/target)")
    p.add_argument("overrides", nargs="*", help="key=value overrides of configs/vc.yaml")
    p.set_defaults(func=cmd_vc_prepare)

    p = sub.add_parser(
        "vc-train", help="train a VC model: wGMM (parallel) or vc/model@model=stargan_vc (speaker folders)"
    )
    p.add_argument("overrides", nargs="*", help="key=value overrides of configs/vc.yaml")
    p.set_defaults(func=cmd_vc_train)

    p = sub.add_parser("convert", help="(denoise ->) convert -> vocode files or folders")
    p.add_argument("inputs", nargs="+", help="audio files or folders of the source speaker")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="output folder of .wav files, or for one input file an output NAME.wav "
        "(inputs and existing files are never overwritten)",
    )
    p.add_argument("--vc", required=True, help="a VC checkpoint (best.pth of vc-train)")
    p.add_argument("--denoiser", help="clean the input first with this denoiser checkpoint or shipped model (default)")
    _add_blend_options(p)
    p.add_argument("--target-speaker", help="many-to-many checkpoints (stargan_vc): the speaker to convert to")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("vc-evaluate", help="MCD, F0 RMSE/correlation and V/UV error on the VC test set")
    p.add_argument("--vc", required=True, help="a VC checkpoint")
    p.add_argument("--denoiser", help="clean the input first with this denoiser checkpoint or shipped model (default)")
    _add_blend_options(p)
    p.add_argument("--json", help="also write the results as JSON here")
    p.add_argument("--target-speaker", help="many-to-many checkpoints (stargan_vc): the speaker to convert to")
    p.add_argument("--device", default="auto")
    p.add_argument("overrides", nargs="*", help="key=value overrides of the checkpoint's config")
    p.set_defaults(func=cmd_vc_evaluate)

    p = sub.add_parser("vc-gmm", help="fit the joint-density GMM on a VC run's train pairs, for `convert --gmm`")
    p.add_argument("--vc", required=True, help="a vocoder=world VC checkpoint: its config names the train pairs")
    p.add_argument("-o", "--output", help="GMM file to write (default: gmm.pt beside the checkpoint)")
    p.add_argument("--mixtures", type=int, default=32, help="full-covariance components (default 32, as sprocket)")
    p.add_argument("--max-iter", type=int, default=100, help="EM iterations per alignment round (default 100)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing GMM file")
    p.set_defaults(func=cmd_vc_gmm)

    p = sub.add_parser("vc-index", help="faiss index of a target speaker's frames for `convert --index`")
    p.add_argument("inputs", nargs="+", help="recordings (files or folders) of the target speaker")
    p.add_argument("--vc", required=True, help="the VC checkpoint the index is for")
    p.add_argument("--target-speaker", help="many-to-many checkpoints (stargan_vc): the speaker to convert to")
    p.add_argument("-o", "--output", required=True, help="index file NAME.index (NAME.index.json beside it)")
    p.set_defaults(func=cmd_vc_index)

    p = sub.add_parser("vc-slice", help="RVC-style training data: silence cut, 4 s chunks, 16 kHz copies, F0")
    p.add_argument("inputs", nargs="+", help="audio files or folders (read only)")
    p.add_argument("-o", "--output", required=True, help="output folder: wavs/ wavs16k/ f0/ f0_coarse/ manifest.json")
    p.add_argument("--denoiser", help="denoise first with this checkpoint, or 'default' for the shipped model")
    p.add_argument("--rate", type=int, help="model sample rate of wavs/ in Hz (default 40000)")
    p.add_argument("--chunk-s", dest="chunk_s", type=float, help="longest chunk in seconds (default 4.0)")
    p.add_argument("--overlap-s", dest="overlap_s", type=float, help="overlap of neighbouring chunks (default 0.3)")
    p.add_argument(
        "--min-silence-s", dest="min_silence_s", type=float, help="cut silences at least this long (default 0.3)"
    )
    p.add_argument(
        "--threshold-db", dest="threshold_db", type=float, help="silence: dB below the loudest frame (default -40)"
    )
    p.add_argument(
        "--min-chunk-s", dest="min_chunk_s", type=float, help="drop speech segments shorter than this (default 0.5)"
    )
    p.add_argument("--f0", choices=["harvest", "dio"], help="pyworld F0 estimator (default harvest; dio is faster)")
    p.add_argument("--device", default="auto", help="device of the denoiser")
    p.set_defaults(func=cmd_vc_slice)

    p = sub.add_parser("demo", help="train for a few minutes, denoise an example, print metrics")
    p.add_argument("overrides", nargs="*")
    p.set_defaults(func=cmd_demo)
    return parser


def cmd_models(args: argparse.Namespace) -> int:
    """The models installed with the package: what each was trained on and what it measured."""
    from denoise_vc.pretrained import DEFAULT, shipped_models

    models = shipped_models()
    if not models:
        print("no models are installed with this copy of the package (see README: re-creating the default model)")
    for name, card in models.items():
        print(f"{name}{' (used when --checkpoint is not given)' if name == DEFAULT else ''}")
        for key in (
            "description",
            "model",
            "parameters",
            "sample_rate",
            "causal",
            "latency",
            "training_data",
            "training",
            "licence",
            "recipe",
        ):
            if key in card:
                print(f"  {key.replace('_', ' ')}: {card[key]}")
        if card.get("metrics"):
            print("  measured (unseen speakers, unseen noise stretches; noisy input in brackets):")
        for row, metrics in (card.get("metrics") or {}).items():
            shown = [
                f"{k.upper().replace('_', '-')} {metrics.get(k)} ({metrics.get(k + '_noisy')})"
                for k in ("pesq", "stoi", "si_sdr")
            ]
            print(f"    {row}: " + ", ".join(shown))
        print(f"  checkpoint: {card['checkpoint']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DenoiseVCError as exc:
        print(f"denoise-vc: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("denoise-vc: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
