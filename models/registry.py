"""Name -> model class registry. Each model keeps its constructor arguments so a checkpoint rebuilds it."""

from __future__ import annotations

import inspect
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


def _check_switches(name: str, args: dict[str, Any]) -> None:
    """A switch (an argument whose default is True/False) takes only a bool: YAML's `maybe` or `1` would
    otherwise turn it on silently."""
    parameters = inspect.signature(MODELS[name].__init__).parameters
    for key, value in args.items():
        default = parameters[key].default if key in parameters else None
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ValueError(f"model.{key} must be true or false, not {value!r}")


def build_model(name: str, **args: Any) -> nn.Module:
    """Build a registered model; unknown names and bad arguments raise ValueError with the choices.

    `robust_norm=True` (a denoiser's argument, set by data.normalize=robust and stored with the others) wraps
    it in `Normalized`, so signals in physical units go in and come out at their own scale; `residual=True`
    (data.residual) adds the network's output to its input there; `highpass_cycles` (data.highpass_hz / rate)
    high-passes the window first."""
    from denoise_vc.models.normalized import Normalized

    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(sorted(MODELS))}")
    robust_norm = bool(args.pop("robust_norm", False))
    residual = bool(args.pop("residual", False))
    highpass_cycles = float(args.pop("highpass_cycles", 0.0) or 0.0)
    if highpass_cycles and not robust_norm:
        raise ValueError("data.highpass_hz needs data.normalize=robust")
    if not 0.0 <= highpass_cycles < 0.5:
        raise ValueError(f"data.highpass_hz must lie below half the sample rate (got {highpass_cycles:g} x the rate)")
    if residual and not robust_norm:
        raise ValueError("data.residual=true needs data.normalize=robust")
    if robust_norm and not getattr(MODELS[name], "normalizable", True):
        raise ValueError(f"model {name!r} cannot run on normalised input (data.normalize=robust); use none")
    _check_switches(name, args)
    try:
        model = MODELS[name](**args)
    except TypeError as exc:
        raise ValueError(f"model {name!r}: {exc}") from None
    if robust_norm:
        model = Normalized(model, residual, highpass_cycles)
        model.registry_name = name
        args["robust_norm"] = True
        if residual:
            args["residual"] = True
        if highpass_cycles:
            args["highpass_cycles"] = highpass_cycles
    model.init_args = dict(args)
    return model


def denoisers() -> list[str]:
    """Names of the waveform-in, waveform-out models; other tasks (the VC acoustic model) set `task`."""
    return sorted(name for name, cls in MODELS.items() if getattr(cls, "task", "denoise") == "denoise")
