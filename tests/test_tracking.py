"""Every logger backend records the same scalars (neptune in offline mode, read back from its files)."""

import json

import pytest

from denoise_vc.config import compose_config, resolve_paths
from denoise_vc.errors import ConfigError
from denoise_vc.solvers.factory import build_solver
from denoise_vc.tracking import NeptuneLogger


def neptune_scalars(folder) -> dict[tuple[str, int], float]:
    values = {}
    for log in folder.rglob("data-*.log"):
        for line in log.read_text().splitlines():
            op = json.loads(line)["obj"]
            if op.get("type") == "LogFloats" and op["path"][0] == "metrics":
                for item in op["values"]:
                    values[(op["path"][1], int(item["step"]))] = item["value"]
    return values


def tensorboard_scalars(folder) -> dict[tuple[str, int], float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder)).Reload()
    return {(tag, e.step): e.value for tag in events.Tags()["scalars"] for e in events.Scalars(tag)}


def test_every_backend_records_the_same_scalars(tiny_overrides, monkeypatch, tmp_path):
    pytest.importorskip("neptune")
    pytest.importorskip("tensorboard")
    monkeypatch.delenv("NEPTUNE_DATA_DIRECTORY", raising=False)
    monkeypatch.setenv("NEPTUNE_MODE", "offline")
    monkeypatch.chdir(tmp_path)
    solver = build_solver(resolve_paths(compose_config(tiny_overrides + ["logger=all"])))
    solver.fit()
    run = solver.run_dir
    local = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        local.update({(k, record["step"]): v for k, v in record.items() if k not in ("step", "time")})
    assert {k for k, _ in local} >= {"train_loss", "valid_loss", "valid_si_sdr", "gain"}
    assert len({s for _, s in local}) == 2  # two epochs
    for backend in (tensorboard_scalars(run / "tensorboard"), neptune_scalars(run / "neptune")):
        assert set(backend) == set(local)
        for key, value in local.items():
            assert backend[key] == pytest.approx(value, rel=1e-6)
    files = [json.loads(line)["name"] for line in (run / "files.jsonl").read_text().splitlines()]
    assert "best_checkpoint" in files and any(name.startswith("plots/") for name in files)


def test_neptune_async_without_a_token_is_a_clear_error(monkeypatch, tmp_path):
    pytest.importorskip("neptune")
    monkeypatch.delenv("NEPTUNE_API_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="needs NEPTUNE_API_TOKEN"):
        NeptuneLogger(tmp_path, {"mode": "async"})
    with pytest.raises(ConfigError, match="mode must be one of"):
        NeptuneLogger(tmp_path, {"mode": "cloudy"})
