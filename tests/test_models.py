import pytest
import torch

from denoise_vc.config import compose_config, model_args
from denoise_vc.models import build_model, denoisers
from denoise_vc.models.introspect import count_parameters, receptive_field


@pytest.mark.parametrize("name", denoisers())
@pytest.mark.parametrize("length", [1, 777, 16000])
def test_every_model_keeps_shape_for_any_length(name, length):
    """Default-config models map (B, 1, T) to (B, 1, T), padding internally and trimming back."""
    _, args = model_args(compose_config([f"model={name}"]).model)
    model = build_model(name, **args).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, length))
    assert out.shape == (2, 1, length)
    assert torch.isfinite(out).all()


def test_registry_rebuilds_from_stored_arguments():
    model = build_model("wave_unet", levels=3, channels_interval=4)
    clone = build_model(model.registry_name, **model.init_args)
    assert count_parameters(clone) == count_parameters(model)


def test_unknown_model_names_the_choices():
    with pytest.raises(ValueError, match="choose from"):
        build_model("no_such_model")


@pytest.mark.parametrize("value", ["maybe", 1, None], ids=repr)
def test_a_switch_takes_only_true_or_false(value):
    with pytest.raises(ValueError, match=f"model.source_skip must be true or false, not {value!r}"):
        build_model("wgmm_vc", source_skip=value)
    assert build_model("wgmm_vc", source_skip=True).source_skip is not None


def test_receptive_field_of_a_single_conv_is_its_kernel():
    conv = torch.nn.Sequential(torch.nn.Conv1d(1, 1, 9, padding=4))
    torch.nn.init.ones_(conv[0].weight)
    assert receptive_field(conv, probe_length=128) == 9


def test_wave_unet_receptive_field_grows_with_depth():
    shallow = receptive_field(build_model("wave_unet", levels=3, channels_interval=4), 8192)
    deeper = receptive_field(build_model("wave_unet", levels=5, channels_interval=4), 8192)
    assert deeper > 2 * shallow


def test_a_recurrent_model_has_a_receptive_field_and_trains_on_after_the_probe():
    """subband_crn's GRU: the probe (eval mode, backward) must work where cuDNN runs it, and give the model back
    in training mode. On CUDA cuDNN refuses an RNN backward in eval mode; the probe switches cuDNN off."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = build_model("subband_crn").to(device).train()
    assert receptive_field(model, 16000) > 8000  # the whole-utterance GRU sees far beyond one STFT window
    assert model.training


@pytest.mark.parametrize("attention", ["time", "dual_path"])
@pytest.mark.parametrize("name", ["transformer_unet", "pixelshuffle_transformer_ae"])
@pytest.mark.parametrize("length", [1, 777, 5120])
def test_transformer_models_keep_shape_with_either_attention(name, attention, length):
    model = build_model(name, levels=4, num_layers=2, nhead=2, d_model=16, attention=attention, chunk=4).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, length))
    assert out.shape == (2, 1, length) and torch.isfinite(out).all()


def test_transformer_attention_sees_the_whole_bottleneck():
    """Time attention mixes distant bottleneck frames: the receptive field spans the probe."""
    model = build_model(
        "transformer_unet", levels=3, channels_interval=4, num_layers=1, nhead=2, d_model=8, dropout=0.0
    )
    assert receptive_field(model, 2048) < 512  # a new block starts as the identity (zero output projection)
    torch.nn.init.normal_(model.transformer.out.weight)  # ... once it has learnt, attention reaches everywhere
    assert receptive_field(model, 2048) == 2048
    plain = build_model("wave_unet", levels=3, channels_interval=4)
    assert receptive_field(plain, 2048) < 512


def test_pixelshuffle_decoder_upsamples_by_rearrangement():
    from denoise_vc.models.pixelshuffle_ae import SubPixelUp

    up = SubPixelUp(4, 2, factor=3, kernel=1)
    x = torch.randn(1, 4, 5)
    assert up(x).shape == (1, 2, 15)


def test_bad_transformer_arguments_name_the_problem():
    with pytest.raises(ValueError, match="divisible by nhead"):
        build_model("transformer_unet", d_model=10, nhead=4)
    with pytest.raises(ValueError, match="attention must be"):
        build_model("transformer_unet", attention="diagonal")


def test_unet_upsampling_puts_each_kept_sample_back_in_place():
    """Decimating a ramp and upsampling it again gives the ramp back (no shift, no stretch); the reference
    Wave-U-Net's align_corners interpolation is off by up to half a sample per level."""
    from denoise_vc.models.updown import decimate2, upsample2

    ramp = torch.arange(64.0).view(1, 1, 64)
    assert torch.equal(upsample2(decimate2(ramp))[..., :-1], ramp[..., :-1])
    stretched = torch.nn.functional.interpolate(decimate2(ramp), scale_factor=2.0, mode="linear", align_corners=True)
    assert float((stretched - ramp).abs().max()) > 0.9
    long = torch.arange(4096.0).view(1, 1, 4096)  # through 6 levels and back: still the ramp, but for the end
    h = long
    for _ in range(6):
        h = decimate2(h)
    for _ in range(6):
        h = upsample2(h)
    assert torch.allclose(h[..., :-64], long[..., :-64])
