"""The wGMM VC acoustic model: frame bookkeeping, the mixture density network, robustness, learning, I/O."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from denoise_vc.checkpoint import load_model, save_checkpoint
from denoise_vc.models import build_model
from denoise_vc.models.vc import GriffinLim, VCLoss, expand_frames, length_regulate, reduce_frames
from denoise_vc.models.vc.frames import repair_segments, segment_broadcast, segment_mean
from denoise_vc.models.vc.mdn import MixtureDensityHead, mdn_draw, mdn_nll
from denoise_vc.models.vc.model import SKIP_GATE_OPEN
from denoise_vc.vc.features import FeatureSettings
from denoise_vc.vc.features import log_mel as log_mel_of

N_MELS = 8
R = 3
TINY = dict(
    n_mels=N_MELS,
    reduction=R,
    d_model=32,
    encoder_layers=1,
    decoder_layers=1,
    heads=2,
    predictor_channels=32,
    prosody_channels=32,
    prosody_gru_size=32,
    prosody_dim=4,
    n_mixtures=3,
    postnet_channels=32,
    postnet_layers=3,
    dropout=0.0,
    predictor_dropout=0.0,
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These networks are tiny: extra intra-op threads only add contention (2 threads ran ~15x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_batch(lengths=(9, 6, 4), seed=0, n_mels=N_MELS, r=R) -> dict[str, torch.Tensor]:
    """A consistent padded batch: random durations (some 0), contiguous source segments, and target segments
    inherited from the source frame each target frame repeats (so a segment can vanish on the target side)."""
    g = torch.Generator().manual_seed(seed)
    items = []
    for b, ts in enumerate(lengths):
        dur = torch.randint(0, 4, (ts,), generator=g)
        dur[0] = max(int(dur[0]), 1)
        k = 1 + b % 3
        seg = torch.div(torch.arange(ts) * k, ts, rounding_mode="floor")
        items.append((ts, dur, seg, seg.repeat_interleave(dur), k))
    n, ts_max, tt_max = len(items), max(lengths), max(int(i[1].sum()) for i in items)
    batch = {
        "src_mel": torch.zeros(n, ts_max * r, n_mels),
        "src_pitch": torch.zeros(n, ts_max),
        "src_energy": torch.zeros(n, ts_max),
        "src_len": torch.zeros(n, dtype=torch.long),
        "tgt_mel": torch.zeros(n, tt_max * r, n_mels),
        "tgt_pitch": torch.zeros(n, tt_max),
        "tgt_energy": torch.zeros(n, tt_max),
        "tgt_len": torch.zeros(n, dtype=torch.long),
        "durations": torch.zeros(n, ts_max, dtype=torch.long),
        "src_segment": torch.full((n, ts_max), -1),
        "tgt_segment": torch.full((n, tt_max), -1),
        "n_segments": torch.zeros(n, dtype=torch.long),
    }
    for b, (ts, dur, seg, tseg, k) in enumerate(items):
        tt = int(dur.sum())
        batch["src_mel"][b, : ts * r] = torch.randn(ts * r, n_mels, generator=g)
        batch["src_pitch"][b, :ts] = torch.randn(ts, generator=g)
        batch["src_energy"][b, :ts] = torch.randn(ts, generator=g)
        batch["tgt_mel"][b, : tt * r] = torch.randn(tt * r, n_mels, generator=g)
        batch["tgt_pitch"][b, :tt] = torch.randn(tt, generator=g)
        batch["tgt_energy"][b, :tt] = torch.randn(tt, generator=g)
        batch["src_len"][b], batch["tgt_len"][b], batch["n_segments"][b] = ts, tt, k
        batch["durations"][b, :ts] = dur
        batch["src_segment"][b, :ts] = seg
        batch["tgt_segment"][b, :tt] = tseg
    return batch


def tiny_model(seed: int = 0, **overrides) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("wgmm_vc", **{**TINY, **overrides})


def infer(model, batch, **kwargs):
    keys = ("src_mel", "src_pitch", "src_energy", "src_len", "src_segment", "n_segments")
    return model.infer(*(batch[k] for k in keys), **kwargs)


def all_finite(out: dict[str, torch.Tensor]) -> bool:
    return all(torch.isfinite(v).all() for v in out.values() if v.is_floating_point())


# -- frame bookkeeping ------------------------------------------------------------------------------
@pytest.mark.parametrize("r", [1, 3, 4])
def test_reduce_expand_round_trip_and_stacking_order(r):
    x = torch.randn(2, 5 * r, 7)
    stacked = reduce_frames(x, r)
    assert stacked.shape == (2, 5, 7 * r)
    assert torch.equal(stacked[1, 2, 7 : 2 * 7] if r > 1 else stacked[1, 2], x[1, 2 * r + 1] if r > 1 else x[1, 2])
    assert torch.equal(expand_frames(stacked, r), x)


def test_reduce_pads_a_ragged_tail_with_zeros():
    x = torch.randn(1, 7, 2)
    stacked = reduce_frames(x, 3)
    assert stacked.shape == (1, 3, 6)
    back = expand_frames(stacked, 3)
    assert torch.equal(back[:, :7], x) and torch.equal(back[:, 7:], torch.zeros(1, 2, 2))


def naive_regulate(x, durations, max_len):
    out = torch.zeros(x.shape[0], max_len, x.shape[2])
    for b in range(x.shape[0]):
        t_out = 0
        for t in range(x.shape[1]):
            for _ in range(int(durations[b, t])):
                if t_out < max_len:
                    out[b, t_out] = x[b, t]
                t_out += 1
    return out


@pytest.mark.parametrize("max_len", [None, 5])
def test_length_regulator_equals_naive_reference(max_len):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 6, 4, generator=g)
    durations = torch.randint(0, 4, (3, 6), generator=g)
    durations[2] = 0  # an item with no frames at all
    out = length_regulate(x, durations, max_len)
    expected_len = int(durations.sum(1).max()) if max_len is None else max_len
    assert out.shape == (3, expected_len, 4)
    assert torch.equal(out, naive_regulate(x, durations, expected_len))


@settings(max_examples=40, deadline=None)
@given(
    durations=st.lists(st.lists(st.integers(0, 5), min_size=4, max_size=4), min_size=1, max_size=3),
    cap=st.one_of(st.none(), st.integers(0, 12)),
)
def test_length_regulator_property(durations, cap):
    durations = torch.tensor(durations)
    x = torch.arange(durations.numel() * 2, dtype=torch.float32).reshape(durations.shape[0], 4, 2)
    out = length_regulate(x, durations, cap)
    expected_len = int(durations.sum(1).max()) if cap is None else cap
    assert torch.equal(out, naive_regulate(x, durations, expected_len))


def test_segment_mean_and_broadcast_equal_naive_loops():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 7, 3, generator=g)
    segments = torch.tensor([[0, 0, 1, 1, 1, 3, -1], [0, 1, 1, -1, -1, -1, -1]])  # segment 2 of item 0 is empty
    means, counts = segment_mean(x, segments, 4)
    for b in range(2):
        for s in range(4):
            frames = x[b][segments[b] == s]
            assert counts[b, s] == len(frames)
            expected = frames.mean(0) if len(frames) else torch.zeros(3)
            assert torch.allclose(means[b, s], expected, atol=1e-6)
    spread = segment_broadcast(means, segments)
    for b in range(2):
        for t in range(7):
            s = int(segments[b, t])
            assert torch.equal(spread[b, t], means[b, s] if s >= 0 else torch.zeros(3))


def test_segment_repair_clamps_out_of_range_indices_and_marks_padding():
    segments = torch.tensor([[0, 5, -3, 1, 1], [2, 2, 2, 2, 2]])
    repaired = repair_segments(segments, torch.tensor([2, 0]), torch.tensor([4, 9]))
    assert repaired.tolist() == [[0, 1, 0, 1, -1], [0, 0, 0, 0, 0]]


# -- mixture density network -----------------------------------------------------------------------
def test_mdn_nll_with_one_component_is_the_closed_form_gaussian_nll():
    mu = torch.tensor([[[0.5, -1.0, 2.0]]])
    sigma = torch.tensor([[[0.3, 1.5, 0.8]]])
    x = torch.tensor([[1.0, 0.0, 1.0]])
    expected = sum(
        0.5 * math.log(2 * math.pi) + math.log(s) + 0.5 * ((xi - m) / s) ** 2
        for xi, m, s in zip(x[0].tolist(), mu[0, 0].tolist(), sigma[0, 0].tolist())
    )
    nll = mdn_nll(torch.zeros(1, 1), mu, sigma, x)
    assert nll.shape == (1,)
    assert nll.item() == pytest.approx(expected, rel=1e-6)


def test_mdn_nll_of_two_components_is_the_weighted_mixture():
    from scipy.stats import norm

    log_pi = torch.log(torch.tensor([[0.25, 0.75]]))
    mu = torch.tensor([[[0.0, 1.0], [2.0, -1.0]]])
    sigma = torch.tensor([[[1.0, 0.5], [0.7, 2.0]]])
    x = torch.tensor([[0.4, 0.2]])
    density = sum(
        w * norm.pdf(0.4, mu[0, k, 0], sigma[0, k, 0]) * norm.pdf(0.2, mu[0, k, 1], sigma[0, k, 1])
        for k, w in enumerate([0.25, 0.75])
    )
    assert mdn_nll(log_pi, mu, sigma, x).item() == pytest.approx(-math.log(density), rel=1e-5)


def test_mdn_nll_is_float32_and_finite_under_bf16_autocast_and_extreme_values():
    head = MixtureDensityHead(6, 4, 3, min_sigma=1e-3)
    h = torch.tensor([[1e4] * 6, [-1e4] * 6, [0.0] * 6])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        log_pi, mu, sigma = head(h)
        nll = mdn_nll(log_pi, mu, sigma, torch.tensor([[1e3] * 4, [-1e3] * 4, [0.0] * 4]))
    assert nll.dtype == torch.float32
    assert torch.isfinite(nll).all() and (sigma >= 1e-3).all()
    assert torch.allclose(log_pi.exp().sum(-1), torch.ones(3))


def test_mdn_draws():
    log_pi = torch.log(torch.tensor([[0.1, 0.9]]))
    mu = torch.tensor([[[-3.0, -3.0], [2.0, 4.0]]])
    sigma = torch.full((1, 2, 2), 0.5)
    assert torch.allclose(mdn_draw(log_pi, mu, sigma, "mean"), torch.tensor([[1.5, 3.3]]))  # 0.1 mu_0 + 0.9 mu_1
    assert torch.equal(mdn_draw(log_pi, mu, sigma, "mode"), torch.tensor([[2.0, 4.0]]))
    torch.manual_seed(0)
    many = torch.stack([mdn_draw(log_pi, mu, sigma, "sample", temperature=1.0) for _ in range(2000)])
    share_low = (many[:, 0, 0] < -0.5).float().mean().item()
    assert 0.07 < share_low < 0.13  # component weights respected
    cold = torch.stack([mdn_draw(log_pi, mu, sigma, "sample", temperature=0.05) for _ in range(200)])
    assert (cold[:, 0] - torch.tensor([2.0, 4.0])).abs().max() < 0.2  # low temperature -> the mode
    with pytest.raises(ValueError, match="prosody draw must be one of mean, mode, sample, not 'median'"):
        mdn_draw(log_pi, mu, sigma, "median")


def test_the_mean_draw_does_not_jump_when_two_components_trade_places():
    """Two near-equal components: the mode flips between their means, the mixture mean moves a little."""
    mu = torch.tensor([[[-1.0, -1.0], [1.0, 1.0]]])
    sigma = torch.full((1, 2, 2), 0.5)
    before, after = torch.log(torch.tensor([[0.51, 0.49]])), torch.log(torch.tensor([[0.49, 0.51]]))
    mode_jump = (mdn_draw(after, mu, sigma, "mode") - mdn_draw(before, mu, sigma, "mode")).abs().max()
    mean_jump = (mdn_draw(after, mu, sigma, "mean") - mdn_draw(before, mu, sigma, "mean")).abs().max()
    assert mode_jump == 2.0 and mean_jump < 0.05


# -- the model -------------------------------------------------------------------------------------
def test_forward_shapes_and_loss_components():
    model, batch = tiny_model(), make_batch()
    out = model(batch)
    ts_r, tt_r = batch["src_pitch"].shape[1], batch["tgt_pitch"].shape[1]
    assert out["mel_before"].shape == out["mel_after"].shape == batch["tgt_mel"].shape
    assert out["log_duration"].shape == (3, ts_r)
    assert out["pitch"].shape == out["energy"].shape == (3, tt_r)
    assert out["mdn_mu"].shape == (3, 3, 3, 4) and out["global_mu"].shape == (3, 3, 4)
    total, parts = VCLoss(beta=0.1)(out, batch)
    assert set(parts) == {"mel_before", "mel_after", "duration", "pitch", "energy", "mdn_nll"}
    weighted = sum(parts[k] for k in parts if k != "mdn_nll") + 0.1 * parts["mdn_nll"]
    assert total.item() == pytest.approx(weighted, rel=1e-5)
    # the third item's middle segment has frames on the source side; the mask tracks target presence
    counts = [set(batch["tgt_segment"][b].tolist()) - {-1} for b in range(3)]
    assert out["segment_mask"].tolist() == [[s in counts[b] for s in range(3)] for b in range(3)]


def test_bf16_autocast_training_step_keeps_the_loss_in_float32():
    model, batch = tiny_model(), make_batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(batch)
        total, parts = VCLoss()(out, batch)
    assert total.dtype == torch.float32 and torch.isfinite(total)
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    with torch.no_grad():
        reference = VCLoss()(model(batch), batch)[1]
    assert parts["mel_after"] == pytest.approx(reference["mel_after"], rel=0.05)


@pytest.mark.parametrize("source_skip", [False, True], ids=["plain", "source_skip"])
def test_padding_does_not_change_an_items_output(source_skip):
    model = tiny_model(source_skip=source_skip).eval()
    batch = make_batch()
    lone = {k: v[2:3] for k, v in batch.items()}
    src_r, tgt_r = int(lone["src_len"]), int(lone["tgt_len"])
    for key, size in (("src_mel", src_r * R), ("tgt_mel", tgt_r * R)):
        lone[key] = lone[key][:, :size]
    for key in ("src_pitch", "src_energy", "durations", "src_segment"):
        lone[key] = lone[key][:, :src_r]
    for key in ("tgt_pitch", "tgt_energy", "tgt_segment"):
        lone[key] = lone[key][:, :tgt_r]
    with torch.no_grad():
        full, alone = model(batch), model(lone)
    assert torch.allclose(full["mel_after"][2, : tgt_r * R], alone["mel_after"][0], atol=1e-5)
    assert torch.allclose(full["log_duration"][2, :src_r], alone["log_duration"][0], atol=1e-5)
    k = int(lone["n_segments"])
    assert torch.allclose(full["mdn_mu"][2, :k], alone["mdn_mu"][0, :k], atol=1e-5)
    assert torch.allclose(full["global_mu"][2], alone["global_mu"][0], atol=1e-5)


def _silence_the_decoder_head(model):
    with torch.no_grad():
        for layer in (model.mel_out, model.postnet.convs[-1]):
            layer.weight.zero_()
            layer.bias.zero_()


def test_source_skip_starts_as_the_aligned_source_frames():
    """Identity-initialised: with the decoder's own output silenced, the model returns each source frame
    repeated by its duration (teacher-forced) or by the predicted one (inference); without it, zeros."""
    batch = make_batch()
    expected = expand_frames(length_regulate(reduce_frames(batch["src_mel"], R), batch["durations"]), R)
    skip, plain = tiny_model(source_skip=True).eval(), tiny_model().eval()
    for model in (skip, plain):
        _silence_the_decoder_head(model)
    with torch.no_grad():
        out, out_plain = skip(batch), plain(batch)
        converted, lengths = infer(skip, batch)
    frames = expected.shape[1]
    assert torch.allclose(out["mel_after"][:, :frames], expected, atol=1e-6)
    assert out["mel_after"].abs().sum() > 0 and out_plain["mel_after"].abs().sum() == 0
    # inference: every output frame is one of the item's source frames, in source order
    for b in range(3):
        frames_b = converted[b, : int(lengths[b])]
        source_b = batch["src_mel"][b, : int(batch["src_len"][b]) * R]
        nearest = torch.cdist(frames_b, source_b).argmin(dim=1)
        assert torch.allclose(frames_b, source_b[nearest], atol=1e-6)
        assert bool((nearest[R::R] >= nearest[:-R:R]).all())


def _frame_to_frame_batch(batch, target_of):
    """Durations 1 and target = `target_of(source frames)`, with the source's pitch, energy and segments."""
    batch["durations"] = (torch.arange(batch["durations"].shape[1]) < batch["src_len"][:, None]).long()
    batch["tgt_len"] = batch["src_len"].clone()
    batch["tgt_mel"] = target_of(batch["src_mel"])
    for key, src in (("tgt_pitch", "src_pitch"), ("tgt_energy", "src_energy"), ("tgt_segment", "src_segment")):
        batch[key] = batch[src].clone()
    return batch


def _fit(model, batch, steps: int) -> float:
    """`steps` Adam steps on one batch; the last step's mel L1 (after the PostNet)."""
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        optimiser.zero_grad()
        total, parts = VCLoss()(model(batch), batch)
        total.backward()
        optimiser.step()
    return parts["mel_after"]


def test_source_skip_learns_the_residual_of_a_linear_map():
    """A target that is a fixed affine map of the source (durations 1) is learned faster with the skip."""
    torch.manual_seed(0)
    batch = _frame_to_frame_batch(make_batch(seed=5), lambda src: 0.8 * src + 0.3)
    losses = {skip: _fit(tiny_model(seed=1, source_skip=skip), batch, steps=40) for skip in (False, True)}
    assert losses[True] < 0.5 * losses[False]


def test_gated_skip_starts_open_and_needs_the_skip():
    """The gate starts at sigmoid(SKIP_GATE_OPEN): a gated model begins as the plain skip, scaled by 0.98."""
    batch = make_batch()
    expected = expand_frames(length_regulate(reduce_frames(batch["src_mel"], R), batch["durations"]), R)
    model = tiny_model(source_skip=True, source_skip_gate=True).eval()
    _silence_the_decoder_head(model)
    with torch.no_grad():
        out = model(batch)
    frames = expected.shape[1]
    assert torch.allclose(
        out["mel_after"][:, :frames], torch.sigmoid(torch.tensor(SKIP_GATE_OPEN)) * expected, atol=1e-6
    )
    with pytest.raises(ValueError, match="model.source_skip_gate needs model.source_skip=true"):
        build_model("wgmm_vc", **{**TINY, "source_skip_gate": True})


def test_gated_skip_learns_to_drop_a_source_marked_unreliable():
    """Items whose energy track marks them unreliable want a target of zeros, the others the source frame
    itself: the gate, which reads the decoder's state, learns to close on the former and stay open on the
    latter (the plain skip has to cancel the source through the decoder instead, which this easy case allows:
    the gated model fits at least as well)."""
    torch.manual_seed(0)
    batch = make_batch(lengths=(9, 8, 7, 6), seed=7)
    unreliable = torch.tensor([False, True, False, True])
    batch["src_energy"] = torch.where(unreliable[:, None], 3.0, -3.0).expand_as(batch["src_energy"]).clone()
    batch = _frame_to_frame_batch(batch, lambda src: torch.where(unreliable[:, None, None], 0.0, src))
    plain = tiny_model(seed=1, source_skip=True)
    gated = tiny_model(seed=1, source_skip=True, source_skip_gate=True)
    losses = {False: _fit(plain, batch, steps=60), True: _fit(gated, batch, steps=60)}
    seen = []
    gated.skip_gate.register_forward_hook(lambda _m, _i, out: seen.append(torch.sigmoid(out)))
    with torch.no_grad():
        gated.eval()(batch)
    gate = torch.stack([seen[0][b, : int(n)].mean() for b, n in enumerate(batch["tgt_len"])])
    assert gate[unreliable].max() < 0.5 < gate[~unreliable].min()
    assert losses[True] < 1.2 * losses[False]


def _silent_batch():
    batch = make_batch(seed=3)
    batch["tgt_mel"][1] = math.log(1e-5)  # an all-silent target
    batch["src_mel"][1] = math.log(1e-5)
    for key in ("src_pitch", "src_energy", "tgt_pitch", "tgt_energy"):
        batch[key][1] = 0.0
    return batch


@pytest.mark.parametrize("case", ["huge", "negative_huge", "tiny", "silent", "nan_inf", "broken_bookkeeping"], ids=str)
def test_extreme_inputs_give_finite_losses_gradients_and_conversions(case):
    model = tiny_model()
    batch = _silent_batch() if case == "silent" else make_batch(seed=3)
    features = ("src_mel", "tgt_mel", "src_pitch", "src_energy", "tgt_pitch", "tgt_energy")
    for key in features:
        if case == "huge":
            batch[key] = batch[key] * 1e30
        elif case == "negative_huge":
            batch[key] = batch[key].abs() * -1e8
        elif case == "tiny":
            batch[key] = batch[key] * 1e-38
        elif case == "nan_inf":
            batch[key][0, 0] = float("nan")
            batch[key][1, 0] = float("inf")
    if case == "broken_bookkeeping":
        batch["n_segments"] = torch.tensor([0, 9, 1])
        batch["src_segment"][0, :2] = 7
        batch["src_len"] = torch.tensor([0, 100, 4])
        batch["tgt_len"][0] = 0
        batch["durations"][1, 0] = 10_000
    out = model(batch)
    assert all_finite(out)
    total, parts = VCLoss()(out, batch)
    assert torch.isfinite(total) and all(math.isfinite(v) for v in parts.values())
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    mel, mel_len = infer(model.eval(), batch, draw="sample")
    assert torch.isfinite(mel).all() and (mel_len >= R).all()


def test_overfitting_one_batch_lowers_the_loss_substantially():
    model, batch, loss = tiny_model(), make_batch(), VCLoss(beta=0.02)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    history, totals = [], []
    for _ in range(60):
        total, parts = loss(model(batch), batch)
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
        history.append(parts)
        totals.append(total.item())
    first, last = history[0], history[-1]
    assert totals[-1] < 0.2 * totals[0]
    assert last["mel_after"] < 0.4 * first["mel_after"]
    assert last["mel_before"] < 0.5 * first["mel_before"]
    assert last["duration"] < 0.1 * first["duration"]
    assert last["pitch"] < 0.2 * first["pitch"] and last["energy"] < 0.2 * first["energy"]
    assert last["mdn_nll"] < first["mdn_nll"] - 2.0  # its targets move as the extractor learns


def test_stop_gradient_flag_keeps_the_pitch_loss_out_of_the_encoder():
    batch = make_batch()
    for flag, reaches in ((True, False), (False, True)):
        model = tiny_model(stop_gradient_pitch=flag)
        out = model(batch)
        ((out["pitch"] - out["pitch_target"]).square() * out["tgt_mask"]).sum().backward()
        grad = model.encoder.blocks[0].attention.in_proj_weight.grad
        assert (grad is not None and grad.abs().sum() > 0) == reaches


def test_infer_returns_finite_mels_of_the_predicted_length():
    model = tiny_model().eval()
    batch = make_batch()
    for kwargs in ({}, {"draw": "mode"}, {"draw": "sample", "temperature": 0.7}):
        mel, mel_len = infer(model, batch, **kwargs)
        assert mel.shape == (3, int(mel_len.max()), N_MELS)
        assert torch.isfinite(mel).all() and (mel_len % R == 0).all() and (mel_len >= R).all()
        for b in range(3):
            assert mel[b, int(mel_len[b]) :].abs().sum() == 0
            assert mel[b, : int(mel_len[b])].abs().sum() > 0
    torch.manual_seed(0)
    for draw in ("mean", "mode"):
        first = infer(model, batch, draw=draw)[0]
        assert torch.equal(first, infer(model, batch, draw=draw)[0])  # deterministic


def test_the_model_converts_with_its_configured_prosody_draw():
    """`model.prosody_draw` is what infer (conversion and validation) uses unless told otherwise; an untrained
    model's mixtures are spread, so the mean and the mode give different mels."""
    batch = make_batch()
    by_mode = tiny_model(prosody_draw="mode").eval()
    assert torch.equal(infer(by_mode, batch)[0], infer(by_mode, batch, draw="mode")[0])
    by_mean = tiny_model(prosody_draw="mean").eval()
    mean_mel, mode_mel = infer(by_mean, batch)[0], infer(by_mean, batch, draw="mode")[0]
    assert torch.equal(mean_mel, infer(by_mean, batch, draw="mean")[0])
    assert mean_mel.shape != mode_mel.shape or not torch.equal(mean_mel, mode_mel)
    with pytest.raises(ValueError, match="model.prosody_draw must be mean or mode, not 'sample'"):
        build_model("wgmm_vc", **{**TINY, "prosody_draw": "sample"})


def test_infer_repairs_all_zero_predicted_durations_to_one_frame():
    model = tiny_model().eval()
    torch.nn.init.zeros_(model.duration_predictor.head.weight)
    torch.nn.init.constant_(model.duration_predictor.head.bias, -50.0)
    mel, mel_len = infer(model, make_batch())
    assert mel_len.tolist() == [R, R, R] and mel.shape == (3, R, N_MELS)


def test_autoregressive_pitch_variant_trains_and_converts():
    model, batch = tiny_model(pitch_ar=True), make_batch()
    total, _ = VCLoss()(model(batch), batch)
    total.backward()
    assert model.pitch_predictor.gru.weight_ih_l0.grad.abs().sum() > 0
    mel, mel_len = infer(model.eval(), batch)
    assert torch.isfinite(mel).all() and mel.shape[1] == int(mel_len.max())


def test_checkpoint_round_trip_rebuilds_the_same_converter(tmp_path):
    model = tiny_model().eval()
    path = save_checkpoint(
        {
            "kind": "vc",
            "model": {"name": model.registry_name, "args": model.init_args},
            "state_dict": model.state_dict(),
            "config": {},
            "meta": {},
        },
        tmp_path / "vc.pth",
    )
    clone, ckpt = load_model(path, kind="vc")
    assert ckpt["model"]["name"] == "wgmm_vc"
    batch = make_batch()
    assert torch.equal(infer(model, batch)[0], infer(clone, batch)[0])


# -- vocoder ---------------------------------------------------------------------------------------
def test_griffin_lim_inverts_the_documented_log_mel_convention():
    sr, hop = 16000, 128
    vocoder = GriffinLim(sr, n_fft=512, hop_length=hop, n_mels=40, n_iter=16)
    fs = FeatureSettings(sr, 512, hop, 512, 40, 0.0, None, 60.0, 500.0, 60.0, -23.0)  # the pipeline's mel function
    t = np.arange(sr // 2) / sr
    wave = (0.5 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1500 * t)).astype(np.float32)
    log_mel = log_mel_of(wave, fs)
    assert log_mel.shape == (len(wave) // hop + 1, 40) and log_mel.min() >= math.log(1e-5) - 1e-6
    audio = vocoder(log_mel)
    assert audio.dtype == np.float32 and abs(len(audio) - len(wave)) <= hop
    mel, again = np.exp(log_mel[2:-2]), np.exp(log_mel_of(audio, fs)[2:-2])
    # spectral convergence: about 0.1 here, while unrelated noise of similar level scores about 0.97
    assert np.linalg.norm(again - mel) / np.linalg.norm(mel) < 0.3
    assert again.mean(0).argmax() == mel.mean(0).argmax()  # the loudest tone stays in its mel band
