"""Self-describing checkpoints, written atomically and loaded with `weights_only=True`.

Format: `{"kind", "model": {"name", "args"}, "state_dict", "config", "meta"}` plus, for resumable
`last.pth` files, `"train_state"`. Only tensors, plain Python and strings, so nothing is unpickled
that could run code.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from denoise_vc.errors import CheckpointError
from denoise_vc.paths import honour_umask

FORMAT_VERSION = 1


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> Path:
    """Write to a temp file in the same folder, fsync, then `os.replace`: a crash leaves the old file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {**payload, "format_version": FORMAT_VERSION}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    honour_umask(tmp)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, kind: str | None = None, map_location: str | torch.device = "cpu") -> dict:
    """Load safely; refuse missing, corrupt, code-carrying or wrong-kind files with a one-line error."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, expected a checkpoint file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise CheckpointError(
                f"{path}: refused, the file holds Python objects that could run code ({first[:120]})"
            ) from None
        raise CheckpointError(f"{path}: not a readable checkpoint ({first[:120]})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({first[:120]})") from None
    except Exception as exc:  # other files make the restricted unpickler fail in arbitrary ways (IndexError, ...)
        raise CheckpointError(f"{path}: not a checkpoint ({type(exc).__name__} while unpickling)") from None
    if not isinstance(payload, dict) or "kind" not in payload or "state_dict" not in payload:
        raise CheckpointError(f"{path}: not a denoise-vc checkpoint (no 'kind'/'state_dict' entries)")
    if kind is not None and payload["kind"] != kind:
        raise CheckpointError(f"{path}: is a {payload['kind']!r} checkpoint, expected {kind!r}")
    return payload


def load_state_dict_strict(
    model: torch.nn.Module, state_dict: dict, path: str | Path, fresh: tuple[str, ...] = ()
) -> None:
    """`load_state_dict` that names the missing/extra/mis-shaped keys in one line instead of a traceback.
    Keys starting with a `fresh` prefix may be missing: those parameters keep their initialisation."""
    own = model.state_dict()
    missing = sorted(k for k in set(own) - set(state_dict) if not k.startswith(fresh))
    extra = sorted(set(state_dict) - set(own))
    shape = sorted(k for k in set(own) & set(state_dict) if own[k].shape != state_dict[k].shape)
    problems = []
    for label, keys in (("missing", missing), ("unexpected", extra), ("wrong shape", shape)):
        if keys:
            problems.append(f"{len(keys)} {label} keys (e.g. {keys[0]})")
    if problems:
        raise CheckpointError(f"{path}: weights do not fit the model: {'; '.join(problems)}")
    model.load_state_dict(state_dict, strict=not fresh)


def load_model(path: str | Path, kind: str = "denoiser", device: str | torch.device = "cpu"):
    """Rebuild the model a checkpoint describes and load its weights; returns (model in eval mode, checkpoint)."""
    from denoise_vc.models import build_model

    ckpt = load_checkpoint(path, kind=kind)
    spec = ckpt.get("model") or {}
    try:
        model = build_model(spec.get("name", "?"), **dict(spec.get("args") or {}))
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    load_state_dict_strict(model, ckpt["state_dict"], path)
    return model.to(device).eval(), ckpt
