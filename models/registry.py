"""Name -> model class registry. Each model keeps its constructor arguments so a checkpoint rebuilds it."""

from __future__ import annotations

from typing import Any

import torch.nn as nn

MODELS: dict[str, type[nn.Module]] = {}


def register(name: str):
    """Class decorator: make the model selectable as `model=<name>`."""

    def wrap(cls: type[nn.Module]) -> type[nn.Module]:
        MODELS[name] = cls
        cls.registry_name = name
        return cls

    return wrap


def build_model(name: str, **args: Any) -> nn.Module:
    """Build a registered model; unknown names and bad arguments raise ValueError with the choices."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(sorted(MODELS))}")
    try:
        model = MODELS[name](**args)
    except TypeError as exc:
        raise ValueError(f"model {name!r}: {exc}") from None
    model.init_args = dict(args)
    return model


def denoisers() -> list[str]:
    """Names of the waveform-in, waveform-out models; other tasks (the VC acoustic model) set `task`."""
    return sorted(name for name, cls in MODELS.items() if getattr(cls, "task", "denoise") == "denoise")
