"""Models that ship with the package: `--checkpoint default` (or no `--checkpoint`) picks the default one.

Each shipped model is a checkpoint `<name>.pth` beside a card `<name>.json` (training data and licence,
sample rate, causal or not, its measured metrics, the command that re-creates it)."""

from __future__ import annotations

import json
from pathlib import Path

from denoise_vc.errors import CheckpointError

HERE = Path(__file__).resolve().parent
DEFAULT = "default"


def shipped_models() -> dict[str, dict]:
    """Name -> card of every model installed with the package (a card without its checkpoint is skipped)."""
    cards = {}
    for card in sorted(HERE.glob("*.json")):
        if card.with_suffix(".pth").is_file():
            cards[card.stem] = {**json.loads(card.read_text()), "checkpoint": str(card.with_suffix(".pth"))}
    return cards


def card_of(checkpoint: str | Path) -> dict | None:
    """The card of a shipped model's checkpoint file; None for any other checkpoint."""
    target = Path(checkpoint).resolve()
    return next((card for card in shipped_models().values() if Path(card["checkpoint"]) == target), None)


def resolve_checkpoint(value: str | Path | None) -> Path:
    """A checkpoint path from a `--checkpoint` value: None or 'default' is the shipped default model,
    another shipped model's name is that model, anything else is a path."""
    name = DEFAULT if value is None else str(value)
    if not Path(name).exists() and "/" not in name and not name.endswith((".pth", ".pt", ".th")):
        models = shipped_models()
        if name not in models:
            have = ", ".join(sorted(models)) or "none"
            raise CheckpointError(f"no shipped model named {name!r} (installed: {have}); pass --checkpoint PATH")
        return Path(models[name]["checkpoint"])
    return Path(name)


# A real noisy recording for the demo, from material no shipped model trained on: LibriSpeech dev-clean speaker
# 84, utterance 84-121123-0002, first 6 s (CC BY 4.0, LibriSpeech / LibriVox), plus the last 10 % of Speech
# Commands' running_tap background recording (CC BY 4.0, Pete Warden), mixed at 5 dB SNR.
EXAMPLE_CLEAN = HERE / "example_clean.flac"
EXAMPLE_NOISY = HERE / "example_noisy.flac"
EXAMPLE_SOURCE = "LibriSpeech dev-clean 84-121123-0002 (CC BY 4.0) + Speech Commands running tap (CC BY 4.0), 5 dB SNR"
