"""Composing configs with Hydra's compose API, and turning them into plain data for checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from denoise_vc import configs
from denoise_vc.errors import CheckpointError, ConfigError
from denoise_vc.paths import write_atomically
from denoise_vc.pretrained import resolve_checkpoint

CONFIG_DIR = Path(configs.__file__).resolve().parent


def compose_config(overrides: list[str] | None = None, config_name: str = "config") -> DictConfig:
    """The root config with `key=value` overrides applied; bad overrides raise a one-line ConfigError."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose(config_name=config_name, overrides=list(overrides or []))
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        message = " ".join(str(exc).split()).split(" Config search path")[0]
        raise ConfigError(f"invalid config override: {message[:300]}") from None
    finally:
        GlobalHydra.instance().clear()
    missing = OmegaConf.missing_keys(cfg)
    if missing:
        raise ConfigError(f"config needs a value for {', '.join(sorted(missing))} (pass it as key=value)")
    groups = [o for o in overrides or [] if (CONFIG_DIR / o.split("=", 1)[0].lstrip("+~")).is_dir()]
    if len(groups) < len(overrides or []):  # YAML has no schema: compare each value with its default's kind
        defaults = compose_config(groups, config_name)
        seen = set()
        for item in reversed(overrides or []):  # the last override of a key is the one that counts
            key = item.split("=", 1)[0]
            if key.startswith(("+", "~")) or item in groups or key in seen:
                continue
            seen.add(key)
            old, new = OmegaConf.select(defaults, key, default=None), OmegaConf.select(cfg, key, default=None)
            if _kind(old) and _kind(new) and _kind(old) != _kind(new) and key not in MIXED_KINDS:
                raise ConfigError(f"invalid config override {item!r}: {key} is a {_kind(old)}, got a {_kind(new)}")
    return cfg


def apply_overrides(base: dict | DictConfig, overrides: list[str]) -> DictConfig:
    """A stored config (e.g. from a checkpoint) with dotted `key=value` overrides merged in.

    As with Hydra, a key must already exist (a typo is refused, not silently added) unless written
    `+key=value`, and a number, flag or text cannot be replaced by a value of another kind."""
    cfg = OmegaConf.create(to_plain(base) if isinstance(base, DictConfig) else base)
    try:
        update = OmegaConf.from_dotlist([o.removeprefix("+") for o in overrides])
    except Exception as exc:
        raise ConfigError(f"invalid override: {' '.join(str(exc).split())[:300]}") from None
    absent = object()
    for item in overrides:
        key = item.split("=", 1)[0]
        old = OmegaConf.select(cfg, key.removeprefix("+"), default=absent)
        new = OmegaConf.select(update, key.removeprefix("+"))
        if old is absent and not key.startswith("+"):
            raise ConfigError(f"invalid override {item!r}: no config key {key!r} (write +{key}=... to add one)")
        if _kind(old) and _kind(new) and _kind(old) != _kind(new) and key not in MIXED_KINDS:
            raise ConfigError(f"invalid override {item!r}: {key} is a {_kind(old)}, got a {_kind(new)}")
    return OmegaConf.merge(cfg, update)


MIXED_KINDS = {"solver.resume"}  # true | false | force


def _kind(value: Any) -> str | None:
    """'number', 'flag' or 'text' for scalars (None for null, lists and sections, which may change kind)."""
    if isinstance(value, bool):
        return "flag"
    return "number" if isinstance(value, int | float) else "text" if isinstance(value, str) else None


def to_plain(cfg: DictConfig | dict) -> dict[str, Any]:
    """Resolved plain dict (strings, numbers, lists, dicts): what checkpoints and YAML files store."""
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)
    return dict(cfg)


def model_args(model_cfg) -> tuple[str, dict[str, Any]]:
    """(name, constructor arguments) from a `model` config group entry."""
    plain = to_plain(model_cfg) if isinstance(model_cfg, DictConfig) else dict(model_cfg)
    name = plain.pop("name", None)
    if not name:
        raise ConfigError("model.name is not set")
    return name, plain


def resolve_paths(cfg: DictConfig) -> DictConfig:
    """Make run_dir and data folders absolute (data folders relative to `data.root` when it is set), so
    the run works from any working directory and Ray trials find their data wherever they run."""
    cfg = cfg.copy()
    cfg.run_dir = str(Path(cfg.run_dir).expanduser().resolve())
    root = Path(cfg.data.get("root") or ".").expanduser()
    for key in ("clean", "noise", "noisy"):
        value = cfg.data.get(key)
        if value and value not in ("builtin", "builtin_speech", "builtin_heartbeat"):
            cfg.data[key] = str((root / Path(value).expanduser()).resolve())
    reverb = cfg.data.get("reverb")
    if reverb and reverb.get("rir"):
        reverb.rir = str((root / Path(reverb.rir).expanduser()).resolve())
    init_from = cfg.solver.get("init_from")
    if init_from:  # a path, or a shipped model's name (`solver.init_from=default`: finetune the default model)
        try:
            cfg.solver.init_from = str(resolve_checkpoint(Path(init_from).expanduser()).resolve())
        except CheckpointError as exc:
            raise ConfigError(f"solver.init_from={init_from}: {str(exc).split(';')[0]}; give a path") from None
    return cfg


def load_yaml(path: str | Path) -> DictConfig:
    """A config saved as YAML (config.yaml of a run, best_config.yaml of a sweep)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        cfg = OmegaConf.load(path)
    except Exception as exc:
        raise ConfigError(f"{path}: not a readable YAML config ({' '.join(str(exc).split())[:200]})") from None
    if not isinstance(cfg, DictConfig) or "model" not in cfg or "data" not in cfg:
        raise ConfigError(f"{path}: not a denoise-vc config (no model/data sections)")
    return cfg


def save_yaml(cfg: DictConfig | dict, path: str | Path) -> Path:
    """Write a config as YAML atomically."""
    text = OmegaConf.to_yaml(OmegaConf.create(to_plain(cfg) if isinstance(cfg, DictConfig) else cfg))
    return write_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
