"""`denoise-vc route`: one checkpoint from an all-round denoiser and a finetune for the noisiest inputs."""

from __future__ import annotations

from pathlib import Path

from denoise_vc.checkpoint import load_model, save_checkpoint
from denoise_vc.errors import ConfigError
from denoise_vc.models import build_model
from denoise_vc.models.routed import routed_spec
from denoise_vc.paths import not_an_input


def route_checkpoints(
    clean: str | Path,
    noisy: str | Path,
    output: str | Path,
    band_hz: tuple[float, float],
    log_ratio: tuple[float, float],
) -> Path:
    """Write a denoiser checkpoint that runs `clean` and, where it removes much in `band_hz`, `noisy` (NOTE.md,
    session 27). The new file keeps `clean`'s config (windows, rate) and is refused over an existing file."""
    output = not_an_input(output, clean, noisy)
    if output.exists():
        raise ConfigError(f"{output}: already exists; route writes a new checkpoint, choose another path")
    first, second = load_model(clean)[1], load_model(noisy)[1]  # each rebuilt and loaded strictly: runs alone
    rate, other = int(first["meta"]["sample_rate"]), int(second["meta"]["sample_rate"])
    if rate != other:
        raise ConfigError(f"{noisy}: trained at {other} Hz, {clean} at {rate} Hz; route needs one rate")
    for path, ckpt in ((clean, first), (noisy, second)):
        if ckpt["model"]["name"] == "level_routed":
            raise ConfigError(f"{path}: already a routed pair; route two single models")
    try:
        spec = routed_spec(first["model"], second["model"], band_hz, rate, log_ratio)
        build_model(spec["name"], **spec["args"])  # every setting checked before anything is written
    except ValueError as exc:
        raise ConfigError(f"route: {exc}") from None
    state = {f"clean.{k}": v for k, v in first["state_dict"].items()}
    state |= {f"noisy.{k}": v for k, v in second["state_dict"].items()}
    meta = {**first["meta"], "metrics": {}, "routed_from": [str(clean), str(noisy)]}
    payload = {"kind": first["kind"], "model": spec, "state_dict": state, "config": first["config"], "meta": meta}
    return save_checkpoint(payload, output)
