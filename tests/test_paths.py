"""Config-derived paths used for writing stay inside the run directory."""

import pytest

from denoise_vc.cli import main
from denoise_vc.errors import ConfigError
from denoise_vc.paths import confined


def test_names_inside_the_run_dir_are_joined_and_resolved(tmp_path):
    run = tmp_path / "run"
    assert confined(run, "plots/a.png") == run.resolve() / "plots" / "a.png"
    assert confined(run, "x/../y.txt") == run.resolve() / "y.txt"
    assert confined(tmp_path / "anywhere" / ".." / "run", ".") == run.resolve()  # run_dir itself may be anywhere


@pytest.mark.parametrize("relative", ["/etc/passwd", "../escape.txt", "a/../../escape.txt", "~/x"])
def test_absolute_and_escaping_names_are_refused(tmp_path, relative):
    with pytest.raises(ConfigError, match="run directory") as info:
        confined(tmp_path / "run", relative, "cache")
    assert f"cache {relative!r}" in str(info.value)


def test_a_symlink_leading_out_is_refused(tmp_path):
    run, outside = tmp_path / "run", tmp_path / "outside"
    run.mkdir()
    outside.mkdir()
    (run / "link").symlink_to(outside)
    with pytest.raises(ConfigError, match="leads outside"):
        confined(run, "link/file.txt")
    (run / "inner").mkdir()
    (run / "ok").symlink_to(run / "inner")
    assert confined(run, "ok/f.txt") == (run / "inner" / "f.txt").resolve()


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
