"""Every numeric training setting is range-checked before any work starts: zero, negative, NaN, huge."""

import pytest
from omegaconf import OmegaConf

from denoise_vc.cli import main
from denoise_vc.config import compose_config
from denoise_vc.errors import ConfigError
from denoise_vc.settings import RULES, check_settings


def _bad_values(low: float, high: float, whole: bool) -> list[str]:
    values = ["nan", "inf", f"{high * 10 + 1:g}", f"{low - 1:g}"]
    if low > 0:
        values.append("0")
    if whole:
        values.append(f"{low + 0.5:g}")
    return values


CASES = [(key, value) for key, rule in RULES.items() for value in _bad_values(*rule)]


@pytest.fixture(scope="module")
def bases():
    # the denoiser model with every key (solver.ema_decay is used by it), and the VC config for its own keys
    return compose_config(["model=diffusion"]), compose_config([], config_name="vc")


@pytest.mark.parametrize("key, value", CASES)
def test_out_of_range_values_are_refused_naming_the_key(bases, key, value):
    denoiser, vc = bases
    absent = object()  # a key may default to null (e.g. solver.valid_denoised_weight) and still exist
    cfg = (denoiser if OmegaConf.select(denoiser, key, default=absent) is not absent else vc).copy()
    assert OmegaConf.select(cfg, key, default=absent) is not absent, f"{key}: in neither config"
    OmegaConf.update(cfg, key, float(value))
    with pytest.raises(ConfigError, match=key.replace(".", r"\.") + ".*out of range"):
        check_settings(cfg)


def test_the_defaults_pass_and_the_cli_refuses_in_one_line_before_writing(tmp_path, capsys):
    check_settings(compose_config([]))
    check_settings(compose_config(["preset=ecg"]))
    run = tmp_path / "run"
    for override in ("solver.lr=-1", "data.segment_length=0", "data.batch_size=nan"):
        assert main(["train", f"run_dir={run}", override]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and override.split("=")[0] in err and "out of range" in err
    assert not run.exists()


BAD_FLAGS = [("--window-s", v) for v in _bad_values(*RULES["inference.window_s"])]
BAD_FLAGS += [("--rate", v) for v in ("0", "-5", "99999999999")]  # an int flag: argparse itself refuses nan and 1.5


@pytest.mark.parametrize("flag, value", BAD_FLAGS)
def test_denoise_refuses_a_bad_window_or_rate_before_loading_anything(tmp_path, capsys, flag, value):
    # the checkpoint is absent: a refusal that names the flag comes before any model is read (--window-s 0 and
    # --rate 0 were ignored, 1e9 s ended in a 58 TiB allocation, --rate -5 was blamed on the model)
    out = tmp_path / "out"
    args = ["denoise", str(tmp_path / "in.csv"), "-o", str(out), "--checkpoint", str(tmp_path / "absent.pth")]
    assert main([*args, flag, value]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{flag} {float(value):g}: out of range" in err, err
    assert not out.exists()
