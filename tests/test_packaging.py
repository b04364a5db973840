"""The wheel adds one import name, `denoise_vc`: models/, solvers/ and configs/ install inside it."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MOVED = {"models", "solvers", "configs"}


def test_no_module_imports_the_repository_folders_by_their_top_level_names():
    offenders = []
    for folder in ("denoise_vc", "models", "solvers", "tests", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in MOVED]
    assert offenders == []


def test_every_python_package_folder_is_listed_for_setuptools():
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed, dirs = set(settings["packages"]), settings["package-dir"]
    found = set()
    for name, folder in dirs.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((name, *rel)))
    assert found <= listed, f"packages missing from pyproject.toml: {sorted(found - listed)}"


def test_the_built_wheel_has_one_top_level_name_and_the_configs(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("denoise_vc-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == {"denoise_vc"}
    assert "denoise_vc/models/wave_unet.py" in names and "denoise_vc/solvers/base.py" in names
    assert "denoise_vc/configs/config.yaml" in names and "denoise_vc/configs/model/wave_unet.yaml" in names
    assert "denoise_vc/pretrained/default.pth" in names and "denoise_vc/pretrained/example_noisy.flac" in names
    assert not any("/tests/" in n or n.startswith("tests/") for n in names)
