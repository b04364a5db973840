"""Handoff bundles: a zip a client can use with pyenv + pip and without this repository.

Contents: `model.pth` (the checkpoint, loads with `weights_only=True`), `config.yaml`, `model.ts`
(TorchScript), `denoise.py` (standalone inference needing only torch, numpy and soundfile),
`settings.json` (rate and window plan), `requirements.txt` (pinned), `README.md` (client set-up) and
`MANIFEST.json` (SHA-256 of every file, so a tampered bundle is refused). Written with plain deflate:
Python cannot open Deflate64 archives, which Windows makes for large files.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from denoise_vc.checkpoint import load_checkpoint, load_model
from denoise_vc.config import apply_overrides, save_yaml
from denoise_vc.errors import CheckpointError, DenoiseVCError
from denoise_vc.inference import WindowPlan, enhance_array
from denoise_vc.paths import honour_umask
from denoise_vc.pretrained import card_of

STANDALONE = Path(__file__).resolve().parent / "bundle" / "denoise.py"
STANDALONE_PACKAGES = ("torch", "numpy", "soundfile")


class BundleError(DenoiseVCError):
    """A bundle is unreadable, tampered with, or its standalone inference disagrees with the package."""


def pinned_requirements() -> str:
    lines = [
        "# Pinned to the versions this bundle was made and verified with.",
        "# torch: the plain version installs the default wheel for your platform; for a specific",
        "# CUDA or CPU-only build pick the matching wheel from PyTorch's installation selector",
        "# (same version number), install it first, then `pip install -r requirements.txt`.",
    ]
    for name in STANDALONE_PACKAGES:
        version = metadata.version(name).split("+")[0]  # drop local build tags such as +cpu / +cu121
        lines.append(f"{name}=={version}")
    return "\n".join(lines) + "\n"


def card_section(card: dict) -> str:
    """What a shipped model's card says (training data, licence and attribution, scores on real recordings):
    the client needs the attribution its CC BY training data asks for, and the figures on real input."""
    lines = [
        "## About this model (its card in denoise-vc)",
        "",
        card["description"],
        "",
        f"- Training data: {card['training_data']}",
        f"- Licence: {card['licence']}",
        f"- Latency: {card['latency']}",
    ]
    if card.get("metrics"):
        lines += ["", "Real speech and noise it never trained on (unseen speakers, held-out noise stretches):", ""]
        lines += ["| input SNR | PESQ denoised / noisy | STOI | SI-SDR dB |", "|---|---|---|---|"]
        digits = {"pesq": 3, "stoi": 3, "si_sdr": 1}
        for level, m in card["metrics"].items():
            cells = [f"{m[k]:.{d}f} / {m[k + '_noisy']:.{d}f}" for k, d in digits.items()]
            lines.append(f"| {level} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def client_readme(name: str, settings: dict, metrics: dict, card: dict | None = None) -> str:
    rate = settings["sample_rate"]
    shown = "\n".join(f"| {k} | {v:.3f} |" for k, v in metrics.items() if isinstance(v, int | float))
    return f"""# Denoiser `{name}` (denoise-vc export)

Removes noise from recordings before voice conversion. The model works at **{rate} Hz** internally;
inputs of any rate, length and channel count are resampled to it and back, so outputs keep the
input's rate, length and channels.

## Set-up (pyenv + pip)

```bash
pyenv install 3.11            # any Python >= 3.10
pyenv local 3.11
python -m venv .venv && . .venv/bin/activate
pip install -r requirements.txt   # for a GPU/CPU-specific torch build, see the note in that file
```

## Denoise

```bash
python denoise.py noisy.wav denoised.wav
python denoise.py recordings/*.wav --output-dir denoised/
```

`denoise.py` needs only torch, numpy and soundfile. It loads `model.ts` (TorchScript). The original
checkpoint `model.pth` and its training config `config.yaml` are included for fine-tuning with
denoise-vc; load it with `torch.load("model.pth", weights_only=True)`.

## Quality the model reached (validation set at its target noise level)

| metric | value |
|---|---|
{shown}

Windows: {settings["window"]} samples with {settings["context"]} samples of discarded context per side
and a {settings["crossfade"]}-sample cross-fade.
""" + ("\n" + card_section(card) if card else "")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def to_torchscript(model: torch.nn.Module, source: Path) -> torch.jit.ScriptModule:
    """Compile with TorchScript, so the bundle runs windows of any length like the package does."""
    try:
        return torch.jit.script(model)
    except Exception as exc:  # TorchScript reports unsupported Python in many exception types
        raise CheckpointError(
            f"{source}: {type(model).__name__} does not compile with TorchScript, so it cannot be "
            f"exported ({str(exc).strip().splitlines()[0][:120]})"
        ) from None


def export_bundle(checkpoint: str | Path, out_zip: str | Path) -> Path:
    """Write the bundle for a denoiser checkpoint; refuses other kinds and tampered checkpoints. A shipped
    model's bundle README also carries its card."""
    checkpoint, out_zip = Path(checkpoint), Path(out_zip)
    model, ckpt = load_model(checkpoint, kind="denoiser")
    cfg = apply_overrides(ckpt["config"], [])
    rate = int(ckpt["meta"]["sample_rate"])
    plan = WindowPlan.for_model(model, cfg.inference, rate)
    settings = {
        "sample_rate": rate,
        "window": plan.window,
        "context": plan.context,
        "crossfade": plan.crossfade,
        "multiple": int(model.valid_length(1)) if hasattr(model, "valid_length") else 1,
        "model": ckpt["model"]["name"],
    }
    scripted = to_torchscript(model, checkpoint)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shipped = {k: v for k, v in ckpt.items() if k != "train_state"}
        torch.save(shipped, folder / "model.pth")
        scripted.save(str(folder / "model.ts"))
        save_yaml(cfg, folder / "config.yaml")
        (folder / "settings.json").write_text(json.dumps(settings, indent=2))
        (folder / "requirements.txt").write_text(pinned_requirements())
        readme = client_readme(ckpt["model"]["name"], settings, ckpt["meta"]["metrics"], card_of(checkpoint))
        (folder / "README.md").write_text(readme)
        (folder / "denoise.py").write_text(STANDALONE.read_text())
        files = sorted(p.name for p in folder.iterdir())
        (folder / "MANIFEST.json").write_text(json.dumps({name: _sha256(folder / name) for name in files}, indent=2))
        out_zip.parent.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(prefix=f".{out_zip.name}.", dir=out_zip.parent)
        honour_umask(partial)
        os.close(fd)
        try:
            with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for name in [*files, "MANIFEST.json"]:
                    archive.write(folder / name, arcname=name)
            os.replace(partial, out_zip)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
    return out_zip


def unpack_bundle(bundle: str | Path, into: str | Path) -> Path:
    """Extract safely (plain deflate only, no paths outside `into`) and check every file's hash."""
    bundle, into = Path(bundle), Path(into)
    if not bundle.is_file():
        raise BundleError(f"{bundle}: bundle not found")
    try:
        archive = zipfile.ZipFile(bundle)
    except zipfile.BadZipFile:
        raise BundleError(f"{bundle}: not a zip archive") from None
    with archive:
        for info in archive.infolist():
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise BundleError(
                    f"{bundle}: {info.filename} uses compression method {info.compress_type} "
                    "(Deflate64 from Windows?); re-zip it with plain deflate"
                )
            name = PurePosixPath(info.filename)
            if name.is_absolute() or ".." in name.parts:
                raise BundleError(f"{bundle}: refusing member {info.filename!r} that points outside the bundle")
        archive.extractall(into)
    manifest_path = into / "MANIFEST.json"
    if not manifest_path.exists():
        raise BundleError(f"{bundle}: no MANIFEST.json; not a denoise-vc bundle")
    manifest = json.loads(manifest_path.read_text())
    for name, digest in manifest.items():
        if not (into / name).exists():
            raise BundleError(f"{bundle}: {name} is missing")
        if _sha256(into / name) != digest:
            raise BundleError(f"{bundle}: {name} was modified after export (SHA-256 mismatch)")
    return into


def verify_bundle(bundle: str | Path, seconds: float = 6.5, tolerance: float = 1e-4) -> dict:
    """Unpack into a fresh folder, run the standalone script on a generated signal and compare its
    output with this package's own inference on the bundle's checkpoint."""
    import soundfile as sf

    from denoise_vc.data.noises import generate_noise
    from denoise_vc.data.synth import speech_like

    with tempfile.TemporaryDirectory() as tmp:
        folder = unpack_bundle(bundle, Path(tmp) / "bundle")
        load_checkpoint(folder / "model.pth", kind="denoiser")
        settings = json.loads((folder / "settings.json").read_text())
        rate = int(settings["sample_rate"])
        clean = speech_like(seconds, rate, seed=2024)
        noisy = (clean + 0.05 * generate_noise("pink", seconds, rate, seed=7)).astype(np.float32)
        sf.write(Path(tmp) / "in.wav", noisy, rate, subtype="FLOAT")
        run = subprocess.run(
            [sys.executable, str(folder / "denoise.py"), str(Path(tmp) / "in.wav"), str(Path(tmp) / "out.wav")],
            cwd=tmp,
            capture_output=True,
            text=True,
        )
        if run.returncode != 0:
            last = (run.stderr.strip().splitlines() or ["no output"])[-1]
            raise BundleError(f"{bundle}: standalone denoise.py failed: {last}")
        standalone, _ = sf.read(Path(tmp) / "out.wav", dtype="float32")
        model, _ = load_model(folder / "model.pth")
        plan = WindowPlan(settings["window"], settings["context"], settings["crossfade"])
        reference = np.clip(enhance_array(model, noisy, plan), -1.0, 1.0)
    error = float(np.max(np.abs(standalone - reference)))
    if standalone.shape != reference.shape or error > tolerance:
        raise BundleError(
            f"{bundle}: standalone output differs from the package's by {error:.2e} (tolerance {tolerance:g})"
        )
    return {"samples": int(len(reference)), "max_abs_error": error, "sample_rate": rate}
