"""Bad inputs for every command, shared by tests/test_bad_inputs.py and benchmarks/robustness.py.

Each `Case` writes one input (an audio file, a folder, a checkpoint, a config override) into a scratch
folder and says what the package must do with it: produce a correct output (`ok`), refuse it with a
one-line error naming the problem (`refuse`), or process the good files of a folder and report the bad
ones (`partial`). Each `Command` turns a case into the argument list of one `denoise-vc` command, or
says the case does not apply to it. Adding a command is one `Command` entry in `COMMANDS`; adding an
input kind is one `Case` entry in `CASES`.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from scipy.io import savemat

from denoise_vc.checkpoint import save_checkpoint
from denoise_vc.config import compose_config, to_plain

# A model that builds in milliseconds and runs 30 minutes of audio in seconds (a 3-level, 4-channel conv AE).
TINY_MODEL = ["model=conv_ae", "model.levels=3", "model.channels=4"]
TINY_DATA = [
    "data.segment_length=2048",
    "data.test_segment_length=4096",
    "data.items_per_epoch=8",
    "data.valid_items=2",
    "data.test_items=2",
    "data.builtin.utterances.train=1",
    "data.builtin.utterances.valid=1",
    "data.builtin.utterances.test=1",
    "data.builtin.utterance_s=1.0",
    "data.builtin.noise_s=2.0",
    "data.noise_kinds=[white]",
    "loss=l1",
    "solver.epochs=1",
    "solver.progress=false",
    "solver.plot_every=0",
]
# The VC model at its smallest (built untrained, statistics from one generated pair), and a corpus that small.
TINY_VC_MODEL = [
    "data.n_mels=40",
    "model.d_model=16",
    "model.encoder_layers=1",
    "model.decoder_layers=1",
    "model.heads=1",
    "model.predictor_channels=16",
    "model.prosody_channels=16",
    "model.prosody_gru_size=16",
    "model.postnet_channels=16",
    "model.postnet_layers=2",
]
TINY_VC_DATA = [
    "data.builtin.utterances.train=1",
    "data.builtin.utterances.valid=1",
    "data.builtin.utterances.test=1",
    "data.builtin.words=3",
    "data.batch_size=1",
    "data.group_size=1",
    "solver.epochs=1",
    "solver.warmup_steps=2",
    "solver.progress=false",
    "solver.plot_every=0",
]
EXIT_CODES = {0: "ok", 1: "refuse", 3: "partial"}  # anything else (or a traceback) is a crash
RATE = 16000


def tiny_checkpoint(
    path: Path,
    overrides: list[str] | None = None,
    model_overrides: list[str] = TINY_MODEL,
    edit: Callable[[torch.nn.Module], None] | None = None,
) -> Path:
    """A denoiser checkpoint of an untrained tiny model (seeded), in the format training writes; `edit` may set
    its weights first (e.g. to an identity)."""
    from denoise_vc.solvers.factory import build_denoiser

    cfg = compose_config([*model_overrides, *TINY_DATA, *(overrides or [])])
    model = build_denoiser(cfg.model, seed=0)
    if edit is not None:
        with torch.no_grad():
            edit(model)
    payload = {
        "kind": "denoiser",
        "model": {"name": cfg.model.name, "args": dict(model.init_args)},
        "state_dict": model.state_dict(),
        "config": to_plain(cfg),
        "meta": {"epoch": 0, "step": 0, "metrics": {}, "sample_rate": int(cfg.data.sample_rate)},
    }
    return save_checkpoint(payload, path)


def tiny_vc_checkpoint(path: Path) -> Path:
    """A VC checkpoint of an untrained tiny wGMM model (seeded), with statistics of one generated pair."""
    from denoise_vc.config import model_args
    from denoise_vc.models import build_model
    from denoise_vc.vc.corpus import builtin_pairs
    from denoise_vc.vc.features import FeatureSettings
    from denoise_vc.vc.prepare import compute_stats, pair_features

    cfg = compose_config([*TINY_VC_MODEL, *TINY_VC_DATA], config_name="vc")
    pair = builtin_pairs(cfg.data, int(cfg.seed))[0]
    stats = compute_stats(
        [pair_features(pair, FeatureSettings.from_config(cfg.data), cfg.data, int(cfg.data.reduction_factor))]
    )
    name, args = model_args(cfg.model)
    torch.manual_seed(0)
    model = build_model(name, **args)
    payload = {
        "kind": "vc",
        "model": {"name": name, "args": dict(model.init_args)},
        "state_dict": model.state_dict(),
        "config": to_plain(cfg),
        "meta": {"epoch": 0, "step": 0, "metrics": {}, "sample_rate": int(cfg.data.sample_rate), "stats": stats},
    }
    return save_checkpoint(payload, path)


def tone(seconds: float, rate: int, channels: int = 1, amplitude: float = 0.5) -> np.ndarray:
    """(time, channels) float32 tone with a little noise: plausible audio of any length."""
    n = max(1, int(round(seconds * rate)))
    t = np.arange(n) / rate
    x = amplitude * np.sin(2 * np.pi * 220 * t) + 0.05 * np.random.default_rng(n).standard_normal(n)
    return np.repeat(x.astype(np.float32)[:, None], channels, axis=1)


def write_long_wav(path: Path, minutes: float, rate: int = RATE, channels: int = 1, block_s: float = 60.0) -> Path:
    """A long 16-bit wav written block by block, so the writer never holds the whole signal."""
    total, block = int(minutes * 60 * rate), int(block_s * rate)
    path.parent.mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(str(path), "w", rate, channels, subtype="PCM_16") as out:
        for start in range(0, total, block):
            n = min(block, total - start)
            t = (start + np.arange(n)) / rate
            out.write(np.repeat((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)[:, None], channels, axis=1))
    return path


# ---------------------------------------------------------------- audio inputs (one file or folder)


def _wav(name: str, seconds: float, rate: int = RATE, channels: int = 1, **kw) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        sf.write(path, tone(seconds, rate, channels), rate, **kw)
        return path

    return make


def _bytes(name: str, content: bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        (folder / name).write_bytes(content)
        return folder / name

    return make


def _missing(folder: Path) -> Path:
    return folder / "missing.wav"


def _header_only(folder: Path) -> Path:
    path = folder / "zero_length.wav"
    sf.write(path, np.zeros(0, np.float32), RATE)
    return path


def _corrupt_header(folder: Path) -> Path:
    good = io.BytesIO()
    sf.write(good, tone(0.5, RATE), RATE, format="WAV")
    data = bytearray(good.getvalue())
    data[8:16] = b"JUNKJUNK"  # 'WAVEfmt ' destroyed
    (folder / "corrupt_header.wav").write_bytes(bytes(data))
    return folder / "corrupt_header.wav"


def _truncated(folder: Path) -> Path:
    good = io.BytesIO()
    sf.write(good, tone(1.0, RATE), RATE, format="WAV", subtype="PCM_16")
    (folder / "truncated.wav").write_bytes(good.getvalue()[: 44 + 2 * 4000 + 1])  # header says 16000 samples
    return folder / "truncated.wav"


def _nonfinite(value: float, name: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        x = tone(0.5, RATE)
        x[1234] = value
        sf.write(folder / name, x, RATE, subtype="FLOAT")
        return folder / name

    return make


def _clipped(folder: Path) -> Path:
    path = folder / "clipped.wav"
    sf.write(path, np.clip(tone(0.5, RATE, amplitude=3.0), -1.0, 1.0), RATE, subtype="PCM_16")
    return path


def _mixed_folder(folder: Path) -> Path:
    root = folder / "mixed"
    root.mkdir()
    sf.write(root / "good_a.wav", tone(0.4, RATE), RATE)
    sf.write(root / "good_b.flac", tone(0.3, 22050, 2), 22050)
    (root / "bad.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt nonsense")
    x = tone(0.2, RATE)
    x[5] = np.nan
    sf.write(root / "nan.wav", x, RATE, subtype="FLOAT")
    return root


def _mat(variable: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        root = folder / f"mat_{variable}"
        root.mkdir()
        savemat(root / "rec.mat", {variable: tone(1.0, RATE)[:, 0], "fs": np.array([[float(RATE)]])})
        return root

    return make


# ---------------------------------------------------------------- checkpoints


def _ckpt_edit(name: str, edit: Callable[[dict], dict]) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        ckpt = torch.load(tiny_checkpoint(folder / f"src_{name}"), weights_only=True)
        (folder / f"src_{name}").unlink()
        return save_checkpoint(edit(ckpt), folder / name)

    return make


def _drop_key(ckpt: dict) -> dict:
    state = dict(ckpt["state_dict"])
    state.pop(next(iter(state)))
    return {**ckpt, "state_dict": state}


def _extra_key(ckpt: dict) -> dict:
    return {**ckpt, "state_dict": {**ckpt["state_dict"], "extra.weight": torch.zeros(2)}}


class _RunsCode:
    def __reduce__(self):
        return (print, ("this payload ran code",))


def _pickle_payload(folder: Path) -> Path:
    path = folder / "payload.pth"
    torch.save({"kind": "denoiser", "state_dict": {}, "x": _RunsCode()}, path, pickle_module=pickle)
    return path


def _truncated_ckpt(folder: Path) -> Path:
    data = tiny_checkpoint(folder / "full.pth").read_bytes()
    (folder / "full.pth").unlink()
    (folder / "truncated.pth").write_bytes(data[: len(data) // 2])
    return folder / "truncated.pth"


def _vc_edit(name: str, edit: Callable[[dict], dict]) -> Callable[[Path], Path]:
    """An edited copy of the workspace's VC checkpoint (`vc_model.pth` among the inputs)."""

    def make(folder: Path) -> Path:
        return save_checkpoint(edit(torch.load(folder / "vc_model.pth", weights_only=True)), folder / name)

    return make


def _truncated_vc(folder: Path) -> Path:
    data = (folder / "vc_model.pth").read_bytes()
    (folder / "truncated_vc.pth").write_bytes(data[: len(data) // 2])
    return folder / "truncated_vc.pth"


# ---------------------------------------------------------------- parallel corpora (source/ and target/ folders)


def _corpus(bad: Callable[[Path], Path] | None = None, rename: bool = False) -> Callable[[Path], Path]:
    """Three good pairs (source/ and target/ matched by name); `bad` adds one more source file (with a good
    target partner of the same name); `rename` gives one target file a name no source file has."""

    def make(folder: Path) -> Path:
        root = folder / "corpus"
        for side, seed in (("source", 1), ("target", 2)):
            (root / side).mkdir(parents=True)
            for i in range(3):
                sf.write(root / side / f"u{i}.wav", tone(0.8 + 0.1 * i, RATE) * (0.5 + 0.2 * seed), RATE)
        if bad is not None:
            name = bad(root / "source").name
            sf.write(root / "target" / name, tone(0.6, RATE), RATE)
        if rename:
            (root / "target" / "u2.wav").rename(root / "target" / "other.wav")
        return root

    return make


def _corpus_odd_formats(folder: Path) -> Path:
    root = _corpus()(folder)
    sf.write(root / "source" / "u0.wav", tone(0.8, 44100, 2), 44100)  # stereo at another rate
    sf.write(root / "target" / "u1.wav", tone(0.9, 22050), 22050)
    return root


# ---------------------------------------------------------------- recordings (evaluate --noisy DIR [--clean DIR])


def _pairs(spoil: Callable[[Path], None] | None = None) -> Callable[[Path], Path]:
    """pairs/noisy and pairs/clean with two good pairs matched by name (a mono wav at 16 kHz, a stereo flac at
    22.05 kHz); `spoil(root)` then breaks them one way."""

    def make(folder: Path) -> Path:
        root = folder / "pairs"
        for name, rate, channels in (("p0.wav", RATE, 1), ("p1.flac", 22050, 2)):
            clean = tone(0.4, rate, channels)
            noisy = np.clip(clean + 0.1 * np.random.default_rng(rate).standard_normal(clean.shape), -1, 1)
            for side, x in (("clean", clean), ("noisy", noisy)):
                (root / side).mkdir(parents=True, exist_ok=True)
                sf.write(root / side / name, x, rate)
        if spoil is not None:
            spoil(root)
        return root

    return make


def _unpartnered(root: Path) -> None:
    sf.write(root / "noisy" / "extra.wav", tone(0.4, RATE), RATE)


def _renamed(root: Path) -> None:
    for path in list((root / "clean").iterdir()):
        path.rename(path.with_name(f"clean_{path.name}"))


def _longer_clean(root: Path) -> None:
    sf.write(root / "clean" / "p0.wav", tone(0.4 + 0.02, RATE), RATE)  # 20 ms longer than its noisy partner


def _other_rate(root: Path) -> None:
    sf.write(root / "clean" / "p0.wav", tone(0.4, 8000), 8000)


def _unreadable_clean(root: Path) -> None:
    (root / "clean" / "p0.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt nonsense")


def _nan_noisy(root: Path) -> None:
    x = tone(0.4, RATE)
    x[100] = np.nan
    sf.write(root / "noisy" / "p0.wav", x, RATE, subtype="FLOAT")


def _empty_noisy(root: Path) -> None:
    for path in (root / "noisy").iterdir():
        path.unlink()


# ---------------------------------------------------------------- the cases

FOLDER_CASE = "folder with good and bad files"


@dataclass(frozen=True)
class Case:
    name: str
    group: str  # audio | folder | data | checkpoint | vc-checkpoint | corpus | pairs | noisy-only | output | override
    make: Callable[[Path], Path | str]  # writes the input under a scratch folder; returns it (or an override)
    expect: str  # ok | refuse | partial
    says: str = ""  # fragment the error line must contain (refusals)


CASES: list[Case] = [
    Case("missing file", "audio", _missing, "refuse", "not found"),
    Case("empty file (0 bytes)", "audio", _bytes("empty.wav", b""), "refuse", "not a readable audio file"),
    Case("zero-length audio", "audio", _header_only, "refuse", "no samples"),
    Case("corrupt header", "audio", _corrupt_header, "refuse", "not a readable audio file"),
    Case("truncated file", "audio", _truncated, "refuse", "truncated"),
    Case("NaN samples", "audio", _nonfinite(np.nan, "nan.wav"), "refuse", "NaN or Inf"),
    Case("Inf samples", "audio", _nonfinite(np.inf, "inf.wav"), "refuse", "NaN or Inf"),
    Case("stereo", "audio", _wav("stereo.wav", 0.6, channels=2), "ok"),
    Case("6 channels", "audio", _wav("six.wav", 0.3, channels=6), "ok"),
    Case("8 kHz", "audio", _wav("r8k.wav", 0.5, 8000), "ok"),
    Case("22.05 kHz", "audio", _wav("r22k.flac", 0.5, 22050), "ok"),
    Case("44.1 kHz", "audio", _wav("r44k.wav", 0.5, 44100), "ok"),
    Case("48 kHz", "audio", _wav("r48k.ogg", 0.5, 48000), "ok"),
    Case("1-sample file", "audio", _wav("one.wav", 1 / RATE), "ok"),
    Case("clipped audio", "audio", _clipped, "ok"),
    Case(FOLDER_CASE, "folder", _mixed_folder, "partial", "bad.wav"),
    Case(".mat without the variable", "data", _mat("ecg"), "refuse", "no variable 'sig'"),
    Case("missing checkpoint", "checkpoint", lambda f: f / "none.pth", "refuse", "checkpoint not found"),
    Case(
        "wrong checkpoint kind",
        "checkpoint",
        _ckpt_edit("vc.pth", lambda c: {**c, "kind": "vc"}),
        "refuse",
        "is a 'vc' checkpoint",
    ),
    Case(
        "checkpoint missing a key", "checkpoint", _ckpt_edit("missing_key.pth", _drop_key), "refuse", "1 missing keys"
    ),
    Case(
        "checkpoint with an extra key",
        "checkpoint",
        _ckpt_edit("extra_key.pth", _extra_key),
        "refuse",
        "1 unexpected keys",
    ),
    Case("truncated checkpoint", "checkpoint", _truncated_ckpt, "refuse", "corrupt or truncated checkpoint"),
    Case("pickle payload that runs code", "checkpoint", _pickle_payload, "refuse", "could run code"),
    Case("audio file as checkpoint", "checkpoint", _wav("audio.pth", 0.1, format="WAV"), "refuse", "audio.pth"),
    Case(
        "denoiser checkpoint as the VC model",
        "vc-checkpoint",
        lambda f: f / "model.pth",
        "refuse",
        "is a 'denoiser' checkpoint",
    ),
    Case("VC checkpoint missing a key", "vc-checkpoint", _vc_edit("vc_missing.pth", _drop_key), "refuse", "missing"),
    Case(
        "VC checkpoint with an extra key", "vc-checkpoint", _vc_edit("vc_extra.pth", _extra_key), "refuse", "unexpected"
    ),
    Case(
        "VC checkpoint without statistics",
        "vc-checkpoint",
        _vc_edit("vc_nostats.pth", lambda c: {**c, "meta": {**c["meta"], "stats": None}}),
        "refuse",
        "no normalisation statistics",
    ),
    Case("truncated VC checkpoint", "vc-checkpoint", _truncated_vc, "refuse", "corrupt or truncated checkpoint"),
    Case("corpus: stereo and other rates", "corpus", _corpus_odd_formats, "ok"),
    Case("corpus: names do not match", "corpus", _corpus(rename=True), "refuse", "no partner"),
    Case("corpus: missing folder", "corpus", lambda f: f / "no_corpus", "refuse", "folder not found"),
    Case("corpus: empty file", "corpus", _corpus(_bytes("empty.wav", b"")), "refuse", "empty.wav"),
    Case("corpus: zero-length audio", "corpus", _corpus(_header_only), "refuse", "no samples"),
    Case("corpus: corrupt header", "corpus", _corpus(_corrupt_header), "refuse", "corrupt_header.wav"),
    Case("corpus: truncated file", "corpus", _corpus(_truncated), "refuse", "truncated"),
    Case("corpus: NaN samples", "corpus", _corpus(_nonfinite(np.nan, "nan.wav")), "refuse", "NaN or Inf"),
    Case("pairs: stereo and 22.05 kHz", "pairs", _pairs(), "ok"),
    Case("pairs: a noisy file without a partner", "pairs", _pairs(_unpartnered), "refuse", "no clean partner"),
    Case("pairs: no names in common", "pairs", _pairs(_renamed), "refuse", "no file names in common"),
    Case("pairs: lengths differ by 20 ms", "pairs", _pairs(_longer_clean), "refuse", "differ by at most 10 ms"),
    Case("pairs: two sample rates", "pairs", _pairs(_other_rate), "refuse", "must share one sample rate"),
    Case("pairs: unreadable clean file", "pairs", _pairs(_unreadable_clean), "refuse", "not a readable audio file"),
    Case("pairs: NaN samples", "pairs", _pairs(_nan_noisy), "refuse", "NaN or Inf"),
    Case("pairs: empty noisy folder", "pairs", _pairs(_empty_noisy), "refuse", "no .wav/.flac/.ogg files"),
    Case("noisy folder alone (DNSMOS)", "noisy-only", _pairs(), "ok"),
    Case("noisy folder alone: empty", "noisy-only", _pairs(_empty_noisy), "refuse", "no .wav/.flac/.ogg files"),
    Case("output path = input path", "output", lambda f: f / "ok.wav", "refuse", "would overwrite the input"),
    Case(
        "output folder = input folder, input in another format",  # convert writes ok.flac as ok.wav
        "output",
        _wav("ok.flac", 0.25),
        "refuse",
        "would overwrite the input",
    ),
    Case("unknown model name", "override", lambda f: "model=nope", "refuse", "model/nope"),
    Case("unknown model in model.name", "override", lambda f: "model.name=nope", "refuse", "unknown model 'nope'"),
    Case("override without =", "override", lambda f: "solver.epochs", "refuse", "expected key=value"),
    Case("override of an unknown key", "override", lambda f: "solver.no_such_key=1", "refuse", "no_such_key"),
    Case("override of the wrong type", "override", lambda f: "solver.epochs=many", "refuse", "epochs"),
]


# ---------------------------------------------------------------- the commands


@dataclass
class Workspace:
    """Everything a command needs besides the case input: a good checkpoint and an output folder."""

    root: Path
    checkpoint: Path
    out: Path
    vc: Path  # a good VC checkpoint


@dataclass(frozen=True)
class Command:
    name: str
    argv: Callable[[Case, Path | str, Workspace], list[str] | None]  # None: the case does not apply
    expect: dict[str, str] = field(default_factory=dict)  # case name -> outcome, where it differs from the case's
    says: dict[str, str] = field(default_factory=dict)  # case name -> refusal fragment, where it differs

    def expected(self, case: Case) -> str:
        return self.expect.get(case.name, case.expect)


def _denoise(case: Case, target, ws: Workspace) -> list[str] | None:
    if case.group == "output":  # the input's own folder as the output folder
        return ["denoise", str(target), "-o", str(Path(target).parent), "--checkpoint", str(ws.checkpoint)]
    if case.group in ("audio", "folder"):
        return ["denoise", str(target), "-o", str(ws.out), "--checkpoint", str(ws.checkpoint)]
    if case.group == "checkpoint":
        return ["denoise", str(ws.root / "ok.wav"), "-o", str(ws.out), "--checkpoint", str(target)]
    return None


def _data_folder(target: Path) -> list[str]:
    """Overrides that point the data config at a folder holding `target` (a file or folder)."""
    return [f"data.clean={target}", "data.mat_variable=sig", f"data.mat_sample_rate={RATE}"]


def _evaluate(case: Case, target, ws: Workspace) -> list[str] | None:
    json_out = ["--json", str(ws.out / "metrics.json")]
    if case.group == "output":  # the metrics written over the checkpoint
        return ["evaluate", "--checkpoint", str(ws.checkpoint), "--json", str(ws.checkpoint)]
    if case.group == "checkpoint":
        return ["evaluate", "--checkpoint", str(target), *json_out]
    if case.group == "override" and case.name not in ("unknown model name", "unknown model in model.name"):
        return ["evaluate", "--checkpoint", str(ws.checkpoint), *json_out, str(target)]
    if case.group in ("audio", "folder", "data"):
        return ["evaluate", "--checkpoint", str(ws.checkpoint), *json_out, *_data_folder(target)]
    if case.group in ("pairs", "noisy-only"):  # real recordings: with references, or alone (DNSMOS)
        folders = ["--noisy", str(Path(target) / "noisy")]
        folders += ["--clean", str(Path(target) / "clean")] if case.group == "pairs" else []
        return ["evaluate", "--checkpoint", str(ws.checkpoint), *json_out, *folders]
    return None


# train reads data through the same loader as evaluate, which tries every good audio kind; train tries
# one of each (channels, rate, length) to keep the suite fast.
TRAIN_GOOD_AUDIO = ("6 channels", "44.1 kHz", "1-sample file")


def _train(case: Case, target, ws: Workspace) -> list[str] | None:
    base = ["train", f"run_dir={ws.out / 'run'}", *TINY_MODEL, *TINY_DATA]
    if case.group == "override":
        return [*base, str(target)]
    if case.group in ("folder", "data") or (
        case.group == "audio" and (case.expect != "ok" or case.name in TRAIN_GOOD_AUDIO)
    ):
        return [*base, "data=folder", *_data_folder(target)]
    return None


def _tune(case: Case, target, ws: Workspace) -> list[str] | None:
    if case.group == "override":  # refusals must come before Ray starts
        return ["tune", f"run_dir={ws.out / 'sweep'}", "tune=small", *TINY_MODEL, str(target)]
    return None


def _export(case: Case, target, ws: Workspace) -> list[str] | None:
    if case.group == "output":  # the bundle written over the checkpoint
        return ["export", "--checkpoint", str(ws.checkpoint), "-o", str(ws.checkpoint)]
    if case.group == "checkpoint":
        return ["export", "--checkpoint", str(target), "-o", str(ws.out / "bundle.zip")]
    return None


def _route(case: Case, target, ws: Workspace) -> list[str] | None:
    if case.group == "output":  # the pair written over one of its models
        return ["route", "--clean", str(ws.checkpoint), "--noisy", str(ws.checkpoint), "-o", str(ws.checkpoint)]
    if case.group == "checkpoint":
        return ["route", "--clean", str(ws.checkpoint), "--noisy", str(target), "-o", str(ws.out / "pair.pth")]
    return None


def _demo(case: Case, target, ws: Workspace) -> list[str] | None:
    if case.group == "override":  # refused while composing the config, before any training
        return ["demo", f"run_dir={ws.out / 'demo'}", str(target)]
    return None


def _corpus_overrides(target) -> list[str]:
    return [f"data.source={Path(target) / 'source'}", f"data.target={Path(target) / 'target'}"]


def _vc_prepare(case: Case, target, ws: Workspace) -> list[str] | None:
    base = ["vc-prepare", f"data.prepared_dir={ws.out / 'prep'}", *TINY_VC_DATA]
    if case.group == "override" and case.name != "unknown model in model.name":  # prepare builds no model
        return [*base, str(target)]
    if case.group == "corpus":
        return [*base, *_corpus_overrides(target)]
    return None


def _vc_train(case: Case, target, ws: Workspace) -> list[str] | None:
    base = ["vc-train", f"run_dir={ws.out / 'run'}", f"data.prepared_dir={ws.out / 'prep'}"]
    base += [*TINY_VC_MODEL, *TINY_VC_DATA]
    if case.group == "override":  # refused before the corpus is prepared
        return [*base, str(target)]
    if case.name in ("corpus: stereo and other rates", "corpus: names do not match"):  # prepare's own rows
        return [*base, *_corpus_overrides(target)]  # try the rest
    return None


def _convert(case: Case, target, ws: Workspace) -> list[str] | None:
    vc = ["--vc", str(ws.vc)]
    if case.group == "output":  # the input's own folder as the output folder
        return ["convert", str(target), "-o", str(Path(target).parent), *vc]
    if case.group in ("audio", "folder"):
        return ["convert", str(target), "-o", str(ws.out), *vc]
    if case.group == "checkpoint":  # the denoiser in front
        return ["convert", str(ws.root / "ok.wav"), "-o", str(ws.out), *vc, "--denoiser", str(target)]
    if case.group == "vc-checkpoint":
        return ["convert", str(ws.root / "ok.wav"), "-o", str(ws.out), "--vc", str(target)]
    return None


def _vc_evaluate(case: Case, target, ws: Workspace) -> list[str] | None:
    base = ["vc-evaluate", "--vc", str(ws.vc)]
    json_out = ["--json", str(ws.out / "metrics.json")]
    if case.group == "output":  # the metrics written over the VC checkpoint
        return [*base, "--json", str(ws.vc)]
    if case.group == "checkpoint":
        return [*base, *json_out, "--denoiser", str(target)]
    if case.group == "vc-checkpoint":
        return ["vc-evaluate", "--vc", str(target), *json_out]
    if case.group == "override" and case.name not in ("unknown model name", "unknown model in model.name"):
        return [*base, *json_out, str(target)]
    if case.group == "corpus":
        return [*base, *json_out, *_corpus_overrides(target)]
    return None


def _vc_index(case: Case, target, ws: Workspace) -> list[str] | None:
    out = ["-o", str(ws.out / "target.index")]
    if case.group == "output":  # the index written over the input recording
        return ["vc-index", str(target), "--vc", str(ws.vc), "-o", str(target)]
    if case.group in ("audio", "folder"):
        return ["vc-index", str(target), "--vc", str(ws.vc), *out]
    if case.group == "vc-checkpoint":
        return ["vc-index", str(ws.root / "ok.wav"), "--vc", str(target), *out]
    return None


def _vc_gmm(case: Case, target, ws: Workspace) -> list[str] | None:
    if case.name == "output path = input path":  # the GMM written over the VC checkpoint
        return ["vc-gmm", "--vc", str(ws.vc), "-o", str(ws.vc)]
    if case.group == "vc-checkpoint":
        return ["vc-gmm", "--vc", str(target), "-o", str(ws.out / "gmm.pt")]
    return None


def _vc_slice(case: Case, target, ws: Workspace) -> list[str] | None:
    base = ["--f0", "dio", "--min-chunk-s", "0.1"]  # the matrix's files are short tones
    if case.group == "output":  # the input's own folder as the output folder
        return ["vc-slice", str(target), "-o", str(Path(target).parent), *base]
    if case.group in ("audio", "folder"):
        return ["vc-slice", str(target), "-o", str(ws.out), *base]
    if case.group == "checkpoint":  # the denoiser in front
        return ["vc-slice", str(ws.root / "ok.wav"), "-o", str(ws.out), *base, "--denoiser", str(target)]
    return None


COMMANDS: list[Command] = [
    Command("denoise", _denoise),
    Command("evaluate", _evaluate, {FOLDER_CASE: "refuse"}),  # a data set with bad files is refused whole:
    Command("train", _train, {FOLDER_CASE: "refuse"}),  # metrics or a model from part of it would mislead
    Command("tune", _tune),
    Command("export", _export),
    Command("route", _route),
    Command("demo", _demo),
    Command("models", lambda case, target, ws: None),  # takes no input: lists the shipped models
    # the VC config picks its model as `vc/model@model=...`: `model=nope` names no group there
    Command("vc-prepare", _vc_prepare, says={"unknown model name": "Could not override 'model'"}),
    Command("vc-train", _vc_train, says={"unknown model name": "Could not override 'model'"}),
    Command("convert", _convert),
    # vc-evaluate reads the samples of the test pairs only (every file's header is checked): NaN samples in
    # a training file are not its business
    Command("vc-evaluate", _vc_evaluate, {"corpus: NaN samples": "ok"}),
    # an index of part of a speaker's recordings would mislead, as a model trained on part of a data set would;
    # a 1-sample recording has no speech frames to index
    Command("vc-index", _vc_index, {FOLDER_CASE: "refuse", "1-sample file": "refuse"}),
    Command("vc-gmm", _vc_gmm),
    Command(
        "vc-slice",
        _vc_slice,
        says={
            "output path = input path": "lies inside the output folder",
            "output folder = input folder, input in another format": "lies inside the output folder",
        },
    ),
]


def matrix() -> list[tuple[Command, Case]]:
    """Every (command, case) pair that applies."""
    probe = Workspace(Path("/probe"), Path("/probe/ok.pth"), Path("/probe/out"), Path("/probe/vc.pth"))
    return [(c, k) for c in COMMANDS for k in CASES if c.argv(k, "x", probe) is not None]


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file below `root`: compare before and after a command to prove inputs are unchanged."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def leftovers(folder: Path) -> list[Path]:
    """Temp files (dot-prefixed, as every atomic writer here names them) left below `folder`."""
    return sorted(p for p in folder.rglob(".*") if p.is_file()) if folder.exists() else []


@dataclass
class Outcome:
    target: Path | str  # the case's input
    code: int | None  # None: an exception escaped `main`
    stdout: str
    stderr: str
    inputs_changed: list[str]
    leftovers: list[Path]
    outputs: list[Path]

    @property
    def kind(self) -> str:
        """ok | refuse | partial | crash (a traceback, an escaped exception or an undefined exit code)."""
        if self.code not in EXIT_CODES or "Traceback" in self.stderr:
            return "crash"
        return EXIT_CODES[self.code]


def run_case(command: Command, case: Case, scratch: Path, checkpoint: Path, vc_checkpoint: Path) -> Outcome:
    """Make the case's input under `scratch`, run the command in-process and record what it did."""
    import contextlib
    import traceback

    from denoise_vc.cli import main

    inputs, out = scratch / "in", scratch / "out"
    inputs.mkdir(parents=True)
    sf.write(inputs / "ok.wav", tone(0.25, RATE), RATE)
    shutil.copyfile(checkpoint, inputs / "model.pth")  # copies among the inputs: their bytes are checked too
    shutil.copyfile(vc_checkpoint, inputs / "vc_model.pth")
    target = case.make(inputs)
    ws = Workspace(inputs, inputs / "model.pth", out, inputs / "vc_model.pth")
    argv = command.argv(case, target, ws)
    assert argv is not None, f"{command.name} does not take {case.name}"
    before = snapshot(inputs)
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code: int | None = main(argv)
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        except Exception:
            traceback.print_exc(file=stderr)
            code = None
    after = snapshot(inputs)
    changed = sorted(k for k in before if before[k] != after.get(k))
    outputs = sorted(p for p in out.rglob("*") if p.is_file()) if out.exists() else []
    return Outcome(
        target, code, stdout.getvalue(), stderr.getvalue(), changed, leftovers(out) + leftovers(inputs), outputs
    )


def problems(command: Command, case: Case, outcome: Outcome) -> list[str]:
    """Everything wrong with how `command` handled `case` (empty when it did the right thing)."""
    found = []
    expected, lines = command.expected(case), outcome.stderr.strip().splitlines()
    if outcome.kind != expected:
        found.append(f"{outcome.kind} instead of {expected}: {(lines or ['(no error output)'])[-1][:200]}")
    if outcome.inputs_changed:
        found.append(f"inputs changed: {', '.join(outcome.inputs_changed)}")
    if outcome.leftovers:
        found.append(f"temp files left: {', '.join(p.name for p in outcome.leftovers)}")
    if found:
        return found
    if expected == "ok":
        return _output_problems(command.name, outcome)
    if expected == "refuse":
        says = command.says.get(case.name, case.says)
        if len(lines) != 1 or says not in lines[0]:
            found.append(f"refusal is not one line saying {says!r}: {lines}")
        elif (
            case.group in ("audio", "checkpoint", "vc-checkpoint", "data", "folder", "corpus", "pairs", "noisy-only")
            and str(outcome.target) not in lines[0]
        ):
            found.append(f"refusal does not name {outcome.target}")
        suffixes = (".wav", ".flac", ".ogg", ".zip", ".pth", ".json", ".npz")
        written = [p.name for p in outcome.outputs if p.suffix in suffixes]
        if written:
            found.append(f"refused but wrote {', '.join(written)}")
        return found
    names = sorted(p.name for p in outcome.outputs)  # partial: good files written, each bad one named
    good, verb = PARTIAL_OUTPUTS[command.name]
    if names != good:
        found.append(f"wrote {names}, expected the two good files")
    for bad, why in (("bad.wav", "not a readable audio file"), ("nan.wav", "NaN or Inf")):
        if not any(line.startswith("error: ") and f"{bad}: " in line and why in line for line in lines):
            found.append(f"no error line for {bad}")
    if lines[-1:] != [f"2 of 4 files {verb}, 2 failed"]:
        found.append(f"last line {lines[-1:]} is not the summary")
    return found


# What a folder's good files become: denoise keeps each file's name and format, convert writes .wav files.
PARTIAL_OUTPUTS = {
    "denoise": (["good_a.wav", "good_b.flac"], "denoised"),
    "convert": (["good_a.wav", "good_b.wav"], "converted"),
    # one chunk of each good file, as 40 kHz and 16 kHz .wav and F0 in Hz and coarse codes (.npy), plus the manifest
    "vc-slice": (
        sorted(f"good_{x}_0_0.{s}" for x in "ab" for s in ("npy", "npy", "wav", "wav")) + ["manifest.json"],
        "sliced",
    ),
}


def _output_problems(command: str, outcome: Outcome) -> list[str]:
    """What a correct output is for each command: denoise keeps the input's rate, channels and length."""
    names = {p.name: p for p in outcome.outputs}
    if command == "denoise":
        src = Path(outcome.target)
        if list(names) != [src.name]:
            return [f"wrote {list(names)}, expected {src.name}"]
        got, ref = sf.info(names[src.name]), sf.info(src)
        if (got.frames, got.channels, got.samplerate) != (ref.frames, ref.channels, ref.samplerate):
            shapes = [f"{i.frames}x{i.channels}@{i.samplerate}" for i in (got, ref)]
            return [f"output {shapes[0]}, input {shapes[1]}"]
        y, _ = sf.read(names[src.name], dtype="float32", always_2d=True)
        return [] if np.all(np.isfinite(y)) and np.abs(y).max() <= 1.0 else ["output not finite or outside [-1, 1]"]
    if command == "evaluate":
        import json

        result = json.loads(names["metrics.json"].read_text()) if "metrics.json" in names else {}
        if "files" in result:  # folders of recordings: every file and the mean, by references or by DNSMOS
            key = "si_sdr" if result["mode"] == "reference" else "ovrl"
            rows = [*result["files"].values(), result["mean"]]
            good = len(rows) == 3 and all(np.isfinite([r[key], r[f"{key}_noisy"]]).all() for r in rows)
            return [] if good else [f"no finite {key} for every file in {result['files']}"]
        levels = result.get("levels", {})
        return [] if levels and all(np.isfinite(r["si_sdr"]) for r in levels.values()) else ["no finite metrics"]
    if command in ("train", "vc-train"):
        missing = {"best.pth", "last.pth", "history.json"} - set(names)
        return [f"run lacks {', '.join(sorted(missing))}"] if missing else []
    if command == "convert":  # one .wav per input at the VC model's rate (the target speaker's voice)
        src = Path(outcome.target)
        if list(names) != [f"{src.stem}.wav"]:
            return [f"wrote {list(names)}, expected {src.stem}.wav"]
        y, rate = sf.read(names[f"{src.stem}.wav"], dtype="float32", always_2d=True)
        if rate != RATE or y.shape[1] != 1 or len(y) == 0:
            return [f"output {len(y)}x{y.shape[1]}@{rate}, expected mono at {RATE} Hz"]
        return [] if np.all(np.isfinite(y)) and np.abs(y).max() <= 1.0 else ["output not finite or outside [-1, 1]"]
    if command == "vc-prepare":  # the cache: a feature file per pair, statistics and the manifest
        import json

        if not {"manifest.json", "stats.json"} <= set(names):
            return [f"prepared folder lacks manifest.json or stats.json: {sorted(names)}"]
        splits = json.loads(names["manifest.json"].read_text())["splits"]
        expected = {f"{n}.npz" for split in splits.values() for n in split}
        got = {n for n in names if n.endswith(".npz")}
        return (
            [] if expected == got and len(got) == 3 else [f"feature files {sorted(got)}, manifest {sorted(expected)}"]
        )
    if command == "vc-evaluate":
        import json

        results = json.loads(names["metrics.json"].read_text())["results"] if "metrics.json" in names else {}
        mcd = [row.get("mcd") for row in results.values()]
        return [] if len(mcd) == 2 and np.all(np.isfinite(mcd)) else [f"no finite MCD in {results}"]
    if command == "vc-index":  # the faiss index and its sidecar
        missing = {"target.index", "target.index.json"} - set(names)
        return [f"no {', '.join(sorted(missing))}"] if missing else []
    if command == "vc-slice":  # every chunk in all four forms, finite audio within full scale
        if "manifest.json" not in names:
            return ["no manifest.json"]
        forms = {d: sorted(p.stem for p in outcome.outputs if p.parent.name == d) for d in SLICE_FOLDERS}
        if len({tuple(stems) for stems in forms.values()}) != 1:
            return [f"chunk sets differ between {', '.join(SLICE_FOLDERS)}: {forms}"]
        waves = [sf.read(p, dtype="float32")[0] for p in outcome.outputs if p.suffix == ".wav"]
        return [] if all(np.isfinite(w).all() and np.abs(w).max() <= 1.0 for w in waves) else ["bad chunk audio"]
    return [f"no output check for {command}"]


SLICE_FOLDERS = ("wavs", "wavs16k", "f0", "f0_coarse")
