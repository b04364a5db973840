"""Paths: a sweep refuses a callback it cannot load before Ray starts; an output is never an input."""

import pytest

from denoise_vc.cli import main
from denoise_vc.errors import ConfigError


def test_tune_refuses_a_callback_it_cannot_load_before_starting_ray(tmp_path, capsys):
    args = ["tune", f"run_dir={tmp_path / 'sweep'}", "tune=small", "solver.callbacks=[no_such_module:hook]"]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "solver.callbacks" in err and "no_such_module:hook" in err
    assert not (tmp_path / "sweep" / "ray").exists()


def test_an_output_that_is_an_input_under_another_name_is_refused(tmp_path):
    from denoise_vc.paths import not_an_input

    (tmp_path / "model.pth").write_bytes(b"weights")
    (tmp_path / "alias.pth").symlink_to(tmp_path / "model.pth")
    assert not_an_input(tmp_path / "bundle.zip", tmp_path / "model.pth") == tmp_path / "bundle.zip"
    for same in (tmp_path / "alias.pth", tmp_path / "sub" / ".." / "model.pth"):
        with pytest.raises(ConfigError, match="would overwrite the input"):
            not_an_input(same, tmp_path / "model.pth")
    assert (tmp_path / "model.pth").read_bytes() == b"weights"
