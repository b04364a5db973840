import pytest

"""Tiny VC settings shared by the VC tests: a few short generated pairs and a small model."""

VC_TINY = [
    "data.builtin.utterances.train=4",
    "data.builtin.utterances.valid=1",
    "data.builtin.utterances.test=2",
    "data.builtin.words=4",
    "data.n_mels=40",
    "data.batch_size=2",
    "data.group_size=2",
    "model.d_model=32",
    "model.encoder_layers=1",
    "model.decoder_layers=1",
    "model.heads=1",
    "model.predictor_channels=32",
    "model.prosody_channels=32",
    "model.prosody_gru_size=32",
    "model.postnet_channels=32",
    "model.postnet_layers=2",
    "solver.epochs=2",
    "solver.warmup_steps=4",
    "solver.progress=false",
    "solver.plot_every=0",
]


def vc_overrides(tmp_path, *extra: str) -> list[str]:
    return [f"run_dir={tmp_path / 'vc_run'}", f"data.prepared_dir={tmp_path / 'vc_prep'}", *VC_TINY, *extra]


@pytest.fixture(scope="module")
def vc_prepared_dir(tmp_path_factory):
    """One prepared tiny corpus per test module (preparing is the slow part of the VC tests)."""
    from denoise_vc.config import compose_config
    from denoise_vc.vc.prepare import prepare

    tmp = tmp_path_factory.mktemp("vc_shared")
    prepare(compose_config(vc_overrides(tmp), config_name="vc"), progress=False)
    return tmp / "vc_prep"
