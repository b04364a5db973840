"""Writing safely: outputs never overwrite an input, files appear whole (temp file + rename) with the user's umask."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from denoise_vc.errors import ConfigError


def not_an_input(output: str | Path, *inputs: str | Path) -> Path:
    """`output`, unless it is one of `inputs` (the same file, through any path or link): inputs are never
    overwritten, whatever the user types."""
    out = Path(output).expanduser().resolve()
    for src in inputs:
        if out == Path(src).expanduser().resolve():
            raise ConfigError(f"{output}: output would overwrite the input {src}; choose another output path")
    return Path(output)


def write_atomically(path: str | Path, write: Callable[[str], object], suffix: str | None = None) -> Path:
    """Call `write(tmp)` on a temp file beside `path`, then rename it into place: `path` holds the old content or
    the whole new one, never a part; the temp file is removed if writing fails. `suffix` (default: `path`'s)
    is the temp name's ending, for writers that choose a format by it."""
    import os
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix if suffix is None else suffix,
                               dir=path.parent)  # fmt: skip
    os.close(fd)
    honour_umask(tmp)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def honour_umask(path: str | Path) -> None:
    """Give a temp file (mkstemp makes them 0600) the mode a plain `open` would: 0666 less the user's umask,
    so outputs in a shared folder stay readable to the group as the user intends."""
    import os

    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def write_json(path: str | Path, payload: object, indent: int = 1) -> Path:
    """`payload` as UTF-8 JSON at `path`, atomically (caches, manifests, metrics, index sidecars)."""
    import json

    text = json.dumps(payload, indent=indent)
    return write_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
