"""Building a ready-to-fit solver from a composed config (used by the CLI and by sweeps)."""

from __future__ import annotations

import inspect

import torch
from omegaconf import DictConfig

from denoise_vc.config import model_args, to_plain
from denoise_vc.data.datasets import FixedSet, TrainSet
from denoise_vc.data.levels import noise_levels, parse_level, validation_levels
from denoise_vc.data.mixing import MixSettings
from denoise_vc.data.reverb import build_rir_bank, reverb_settings
from denoise_vc.data.sources import build_corpus
from denoise_vc.errors import ConfigError
from denoise_vc.losses import build_loss
from denoise_vc.models import MODELS, build_model
from denoise_vc.models.normalized import NORMALIZATIONS
from denoise_vc.settings import check_settings
from denoise_vc.solvers.base import training_seed
from denoise_vc.solvers.denoise import DenoiseSolver
from denoise_vc.solvers.diffusion import DiffusionSolver
from denoise_vc.tracking import build_logger


def mix_settings(data_cfg, train: bool) -> MixSettings:
    bandpass = data_cfg.get("bandpass")
    return MixSettings(
        noise_mix=int(data_cfg.noise_mix) if train else 1,
        phase_shuffle_prob=float(data_cfg.phase_shuffle) if train else 0.0,
        flip_prob=float(data_cfg.get("noise_flip") or 0.0) if train else 0.0,
        bandpass_hz=tuple(bandpass) if bandpass else None,
        sample_rate=int(data_cfg.sample_rate),
    )


def build_eval_set(cfg: DictConfig, split: str, segment_length: int, count: int) -> FixedSet:
    data = cfg.data
    corpus = build_corpus(data, split, int(cfg.seed))
    levels = validation_levels(data)
    gain, snr_db = levels[len(levels) // 2]
    return FixedSet(
        corpus,
        segment_length,
        count,
        mix_settings(data, train=False),
        seed=int(cfg.seed) + 1,
        gain=1.0 if gain is None else gain,
        snr_db=snr_db,
    )


def build_denoiser(
    model_cfg,
    seed: int,
    sample_rate: int | None = None,
    normalize: str | None = None,
    residual: bool = False,
    highpass_hz: float | None = None,
):
    """The configured model with weights initialised from `seed` (the same seed gives the same model).

    `sample_rate` (the data's) is passed to models whose constructor takes one (STFT sizes in ms); the
    model stores it with its other arguments, so its checkpoint rebuilds it at that rate. `normalize`
    (`data.normalize`) = robust runs it on robustly normalised windows, for signals in physical units; with
    `residual` (`data.residual`) its output is added to its input there, and `highpass_hz` (`data.highpass_hz`)
    removes the baseline below that frequency first."""
    name, args = model_args(model_cfg)
    normalize = str(normalize or "none")
    if normalize not in NORMALIZATIONS:
        raise ConfigError(f"data.normalize must be one of {', '.join(NORMALIZATIONS)}, not {normalize!r}")
    if normalize == "robust":
        args["robust_norm"] = True
    if residual:
        args["residual"] = True
    if highpass_hz:
        if not sample_rate:
            raise ConfigError("data.highpass_hz needs data.sample_rate")
        args["highpass_cycles"] = float(highpass_hz) / int(sample_rate)
    cls = MODELS.get(name)
    if sample_rate is not None and cls is not None and "sample_rate" in inspect.signature(cls).parameters:
        args["sample_rate"] = int(sample_rate)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        try:
            return build_model(name, **args)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None


def denoiser_options(data_cfg) -> tuple:
    """(normalize, residual, highpass_hz) of a data config, for `build_denoiser`."""
    return data_cfg.get("normalize"), bool(data_cfg.get("residual")), data_cfg.get("highpass_hz")


def build_denoise_loss(loss_cfg, sample_rate: int | None = None) -> torch.nn.Module:
    """The configured waveform loss (`loss=...`); bad names and arguments raise ConfigError. `sample_rate`
    (the data's) reaches the losses that take one (STFT sizes in ms)."""
    args = to_plain(loss_cfg)
    return build_loss(args.pop("name"), sample_rate=sample_rate, **args)


def build_solver(cfg: DictConfig) -> DenoiseSolver:
    check_settings(cfg)
    data = cfg.data
    seed, train_seed = int(cfg.seed), training_seed(cfg)  # the split's seed, the training draws' seed
    rate = int(data.sample_rate)
    # the model first: config mistakes surface before any data is loaded
    model = build_denoiser(cfg.model, train_seed, rate, *denoiser_options(data))
    loss = build_denoise_loss(cfg.loss, rate)
    gain, snr_db = noise_levels(data)
    level_dbfs = parse_level(data.get("level_dbfs"), "data.level_dbfs")
    if level_dbfs is not None and not isinstance(level_dbfs, tuple):
        level_dbfs = (level_dbfs, level_dbfs)
    train_set = TrainSet(
        build_corpus(data, "train", seed),
        int(data.segment_length),
        int(data.items_per_epoch),
        mix_settings(data, train=True),
        train_seed,
        gain=gain,
        snr_db=snr_db,
        level_dbfs=level_dbfs,
        reverb=reverb_settings(data.get("reverb")),
        rirs=build_rir_bank(data.get("reverb"), int(data.sample_rate), seed),
        level_skew=float(data.get("level_skew", 1.0)),
    )
    valid_set = build_eval_set(cfg, "valid", int(data.segment_length), int(data.valid_items))
    solver_class = DiffusionSolver if cfg.model.name == "diffusion" else DenoiseSolver
    return solver_class(cfg, model, loss, train_set, valid_set, build_logger(cfg.logger, cfg.run_dir))
