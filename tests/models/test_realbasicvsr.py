"""RealBasicVSR against mmagic's golden outputs, its checkpoint container, recognition, the released-model table,
and the engine's exact streaming (the whole-video cleaning survey, then two passes)."""

from __future__ import annotations

import dataclasses

import av
import numpy as np
import pytest
import torch
from golden import assert_close, data_path, load_case

from vsrkit.errors import VsrkitError
from vsrkit.hub.checkpoint import load_state_dict, load_strict
from vsrkit.infer import make_config, upscale_tensor
from vsrkit.infer.engine import Hooks
from vsrkit.models import realbasicvsr
from vsrkit.models.realbasicvsr import RealBasicVSR, clean_frames, detect_realbasicvsr, measure_residues

CASE = "mmagic_realbasicvsr"


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: on a shared 2-core machine, 2 spinning threads run these ~10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def golden_model(**override) -> tuple[RealBasicVSR, dict, dict]:
    """The golden case's network, loaded strictly from its mmagic container the way vsrkit reads checkpoints."""
    meta, io, d = load_case(CASE)
    model = RealBasicVSR(**{**meta["kwargs"], **override}).eval()
    load_strict(model, load_state_dict(d / "weights.pth"), source="weights.pth")
    return model, io, meta


def rel_close(actual: torch.Tensor, expected: torch.Tensor, rel: float = 1e-5, what: str = "output") -> None:
    """Two computation paths agree to ``rel`` of the size of the values."""
    assert actual.shape == expected.shape, what
    err = (actual - expected).abs().max().item()
    assert err <= rel * expected.abs().max().item(), f"{what}: max abs error {err:.3g}"


def test_golden_output_and_cleaned_clip():
    model, io, _ = golden_model()
    x = io["input"].clone()
    with torch.no_grad():
        out, lqs = model(x, return_lqs=True)
    assert_close(out, io["output"])
    assert_close(lqs, io["lqs_clean"], what="lqs_clean")
    assert torch.equal(x, io["input"])  # the input is not cleaned in place


def test_golden_threshold_255_cleans_once():
    model, io, _ = golden_model(dynamic_refine_thres=255)
    with torch.no_grad():
        assert_close(model(io["input"]), io["output_thres255"], what="output_thres255")


def test_golden_through_load_model_recognition_names_and_upscale(tmp_path):
    """The mmagic container by file: recognised (sizes from the keys; a file not named as a release keeps the
    training threshold 255: one cleaning pass), by architecture name with the test threshold, and the released
    names resolve to their files."""
    import vsrkit
    from vsrkit.models.registry import get_entry

    _, io, d = load_case(CASE)
    by_file = vsrkit.load_model(weights=d / "weights.pth")
    assert type(by_file).__name__ == "RealBasicVSR" and by_file.spec.name == "RealBasicVSR"
    with torch.no_grad():
        assert_close(by_file(io["input"]), io["output_thres255"], what="output_thres255 by file")
    named = vsrkit.load_model("realbasicvsr", weights=d / "weights.pth", dynamic_refine_thres=5)
    with torch.no_grad():
        assert_close(named(io["input"]), io["output"], what="output by name")
    for name, thres in (("realbasicvsr-x4", 5), ("realbasicvsr-wogan-x4", 1.5)):
        family, entry = get_entry(name)
        assert family.name == "realbasicvsr" and entry.kwargs["dynamic_refine_thres"] == thres
        assert entry.weights.url.endswith(entry.weights.filename) and len(entry.weights.sha256) == 8
        assert entry.weights.filename.rsplit("-", 1)[1].startswith(entry.weights.sha256)


def test_container_gives_the_ema_generator_not_the_other_one():
    """mmagic's container holds generator., generator_ema. and discriminator. keys: reading it gives generator_ema
    (what mmagic tests with), whose output is the golden one; the generator's weights give ``output_generator``."""
    model, io, _ = golden_model()
    with torch.no_grad():
        out = model(io["input"])
    assert (out - io["output_generator"]).abs().max() > 0.1  # the two generators differ a lot on this case
    assert_close(out, io["output"])
    raw = torch.load(load_case(CASE)[2] / "weights.pth", map_location="cpu", weights_only=True)["state_dict"]
    assert any(k.startswith("discriminator.") for k in raw) or any(k.startswith("generator.") for k in raw)
    plain = {k[len("generator."):]: v for k, v in raw.items() if k.startswith("generator.")}
    load_strict(model, plain)
    with torch.no_grad():
        assert_close(model(io["input"]), io["output_generator"], what="output_generator")


def test_cleaning_stops_on_the_mean_residue_of_the_whole_clip():
    """The case cleaned 3 times (mean |residue| 0.05177, 0.05536, 0.06071 against 5/255); the count is mmagic's
    loop: the first pass whose mean is under the threshold, else 3."""
    model, io, _ = golden_model()
    x = io["input"]
    with torch.no_grad():
        sums = measure_residues(model, x, (0, x.shape[-2], 0, x.shape[-1]))
    assert sums[2] == x.numel()
    means = (sums[:2] / sums[2]).tolist()
    assert means == pytest.approx([0.05177, 0.05536], abs=1e-5)
    assert realbasicvsr.decide_cleaning(model, sums) == 3
    assert realbasicvsr.cleaning_passes([0.05, 0.01], 0.02) == 2
    assert realbasicvsr.cleaning_passes([0.01, 0.5], 0.02) == 1
    assert realbasicvsr.cleaning_passes([0.05, 0.04], 0.02) == 3
    with torch.no_grad():  # a threshold just over pass 1's mean: one pass, the cleaned clip of one pass
        once = golden_model(dynamic_refine_thres=0.0518 * 255)[0]
        assert_close(once(x, return_lqs=True)[1], clean_frames(model, x, 1), what="one cleaning pass")


@pytest.mark.parametrize("chunk", [2, 4])
def test_streams_exactly_through_the_engine(chunk):
    """Survey, then blocks of ``chunk`` frames (the last one shorter for 4): the golden whole-clip output."""
    model, io, _ = golden_model()
    assert model.spec.temporal.kind == "bidirectional" and model.spec.passes.survey is not None
    y = upscale_tensor(model, io["input"][0], make_config("cpu", chunk=chunk))
    assert_close(y, io["output"][0], what=f"blocks of {chunk}")


def _real_frames(n: int = 6) -> torch.Tensor:
    """carphone frames 0..n-1 (a 64x80 crop of the face), the second half with added noise: the cleaning residue
    differs between the halves."""
    frames = []
    with av.open(str(data_path("clips", "carphone_pristine.mp4"))) as c:
        for f in c.decode(video=0):
            frames.append(f.to_ndarray(format="rgb24")[32:96, 48:128])
            if len(frames) == n:
                break
    x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255
    noise = torch.randn(x[n // 2:].shape, generator=torch.Generator().manual_seed(0))
    x[n // 2:] = (x[n // 2:] + 0.1 * noise).clamp(0, 1)
    return x


@pytest.mark.parametrize("side", ["fewer", "more"])
def test_the_cleaning_decision_is_the_whole_videos_not_each_blocks(side):
    """A threshold just beside the whole video's mean residue, towards one block's: a decision per block of 3 frames
    (with or without its context frames) would clean that block another number of times. The engine's survey
    decides over the whole video, as ``forward`` does."""
    model, _, _ = golden_model()
    x = _real_frames()
    whole = (0, x.shape[-2], 0, x.shape[-1])
    with torch.no_grad():
        blocks = [measure_residues(model, x[None, a : a + 3], whole) for a in (0, 3)]
    m1 = [float(b[0] / b[2]) for b in blocks]
    m_all = sum(m1) / 2
    # "fewer": the whole video cleans once, the noisier block alone would clean more; "more": the reverse
    thres = m_all + 0.1 * (max(m1) - m_all) if side == "fewer" else m_all - 0.1 * (m_all - min(m1))
    model.dynamic_refine_thres = thres
    per_block = [realbasicvsr.decide_cleaning(model, b) for b in blocks]
    decided = realbasicvsr.decide_cleaning(model, blocks[0] + blocks[1])
    assert len(set(per_block)) == 2 and decided in per_block  # the two blocks disagree; one agrees with the video
    with torch.no_grad():
        want = model(x[None])[0]
        wrong = model.basicvsr(torch.cat([clean_frames(model, x[None, a : a + 3], k) for a, k in zip((0, 3), per_block)], 1))[0]
    got = upscale_tensor(model, x, make_config("cpu", chunk=3))
    rel_close(got, want, what="streamed against the whole clip")
    assert (got - wrong).abs().max() > 100 * (got - want).abs().max()


def test_a_resumed_run_keeps_the_survey(tmp_path):
    """The survey's sums stay in the work folder: a second run over the same input does not measure again."""
    model, io, _ = golden_model()
    calls = []

    def counting(m, x, region):
        calls.append(x.shape[1])
        return measure_residues(m, x, region)

    passes = dataclasses.replace(model.spec.passes, survey=dataclasses.replace(model.spec.passes.survey, measure=counting))
    model.spec = dataclasses.replace(model.spec, passes=passes)
    x = io["input"][0]
    first = upscale_tensor(model, x, make_config("cpu", chunk=2), Hooks(workdir=tmp_path))
    assert sum(calls) == x.shape[0]  # every frame measured once
    second = upscale_tensor(model, x, make_config("cpu", chunk=2), Hooks(workdir=tmp_path))
    assert sum(calls) == x.shape[0]
    assert_close(second, first)
    assert_close(first, io["output"][0])


def test_the_passes_refuse_a_block_without_the_whole_videos_decision():
    model, io, _ = golden_model()
    x = io["input"][:, :3]
    with pytest.raises(ValueError, match="whole video"):
        realbasicvsr.realbasicvsr_backward(model, x, None, realbasicvsr.Block(0, 2, 6))


def test_flow_warping_samples_in_float32_under_bf16(grid_sample_dtypes):
    torch.manual_seed(0)
    model = RealBasicVSR(mid_channels=8, num_propagation_blocks=1, num_cleaning_blocks=1, dynamic_refine_thres=0).eval()
    x = torch.rand(3, 3, 40, 40)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        model(x[None])
    upscale_tensor(model, x, make_config("cpu", precision="bf16", chunk=2))
    assert len(grid_sample_dtypes) > 0
    assert all(d == (torch.float32, torch.float32) for d in grid_sample_dtypes), set(grid_sample_dtypes)


def test_detect_reads_the_sizes_from_the_keys():
    meta, _, d = load_case(CASE)
    sd = load_state_dict(d / "weights.pth")
    arch, kwargs = detect_realbasicvsr(sd, "weights.pth")
    assert arch == "RealBasicVSR"
    assert kwargs == {k: meta["kwargs"][k] for k in ("mid_channels", "num_propagation_blocks", "num_cleaning_blocks")}
    load_strict(RealBasicVSR(**kwargs), sd)
    other = RealBasicVSR(mid_channels=8, num_propagation_blocks=3, num_cleaning_blocks=1).state_dict()
    assert detect_realbasicvsr(other) == ("RealBasicVSR", {"mid_channels": 8, "num_propagation_blocks": 3,
                                                           "num_cleaning_blocks": 1})


def test_detect_gives_a_released_file_its_test_threshold():
    sd = RealBasicVSR().state_dict()
    for name, release in realbasicvsr.RELEASES.items():
        if release["filename"]:
            assert detect_realbasicvsr(sd, f"/cache/{release['filename']}") == ("RealBasicVSR", release["kwargs"]), name
    assert "dynamic_refine_thres" not in detect_realbasicvsr(sd, "renamed.pth")[1]


def test_detect_ignores_other_families_and_names_a_broken_key():
    basicsr = load_state_dict(load_case("basicsr_basicvsr")[2] / "weights.pth")
    assert detect_realbasicvsr(basicsr) is None
    model, _, _ = golden_model()
    sd = dict(model.state_dict())
    sd["basicvsr.backward_resblocks.main.0.weight"] = torch.zeros(16, 20, 3, 3)
    with pytest.raises(VsrkitError, match="backward_resblocks.main.0.weight"):
        detect_realbasicvsr(sd, "x.pth")


def test_releases_table():
    assert list(realbasicvsr.RELEASES) == ["realbasicvsr", "realbasicvsr-x4", "realbasicvsr-wogan-x4"]
    for name, r in realbasicvsr.RELEASES.items():
        assert r["arch"] == "RealBasicVSR"
        model = RealBasicVSR(**r["kwargs"])
        if r["filename"] is None:
            assert model.dynamic_refine_thres == 1.0  # the architecture's default: 255 / 255
            continue
        assert r["sha256"] == r["filename"].rsplit("-", 1)[1].split(".")[0] and len(r["sha256"]) == 8, name
        assert r["url"].startswith("https://download.openmmlab.com/") and r["url"].endswith(r["filename"]), name
        assert r["licence"].startswith("Apache-2.0") and r["summary"] and r["protocol"], name
        assert sum(p.numel() for p in model.parameters()) > 4_000_000  # 64 channels, 20 + 20 blocks


def test_mmagic_spynet_file_and_official_arguments(tmp_path):
    """``spynet_pretrained``: mmagic's SpyNet files ({'state_dict': ...}, no mean/std) load strictly; a URL is refused
    (nothing is downloaded by a network); ``is_fix_cleaning`` freezes the cleaning module; SpyNet is always frozen."""
    from vsrkit.models.layers.spynet import MMagicSpyNet

    torch.manual_seed(1)
    src = MMagicSpyNet()
    sd = {k: v for k, v in src.state_dict().items() if k not in ("mean", "std")}
    torch.save({"state_dict": sd, "meta": {}}, tmp_path / "spynet.pth")
    model = RealBasicVSR(8, 1, 1, spynet_pretrained=str(tmp_path / "spynet.pth"), is_fix_cleaning=True)
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), model.basicvsr.spynet.state_dict().values()))
    assert not any(p.requires_grad for p in model.image_cleaning.parameters())
    assert not any(p.requires_grad for p in model.basicvsr.spynet.parameters())
    assert all(p.requires_grad for p in model.basicvsr.backward_resblocks.parameters())
    with pytest.raises(ValueError, match="local file"):
        RealBasicVSR(8, 1, 1, spynet_pretrained="https://example.org/spynet.pth")


def test_sequential_cleaning_gives_the_same_clip():
    model, io, _ = golden_model()
    seq = golden_model(is_sequential_cleaning=True)[0]
    with torch.no_grad():
        rel_close(seq(io["input"], return_lqs=True)[1], model(io["input"], return_lqs=True)[1], what="lqs")


def test_exports_to_onnx_with_the_cleaning_choice_in_the_graph(tmp_path):
    """The exported graph runs all three cleaning passes and picks the one the loop would stop at."""
    from vsrkit.export.onnx import export_onnx

    for thres in (5, 255):  # 3 passes and 1 pass on a random input
        model, io, _ = golden_model(dynamic_refine_thres=thres)
        meta = export_onnx(model, tmp_path / f"rb{thres}.onnx", size=40, frames=3, check=True)
        assert meta["max_abs_error"] <= 1e-4, thres


def test_a_tiled_survey_counts_every_pixel_once():
    """Tiles overlap; the survey sums over each tile's own part (``Runner.owned``), so a frame's pixels are counted
    once and padding (frames under SpyNet's 33 px are padded) not at all."""
    torch.manual_seed(0)
    model = RealBasicVSR(mid_channels=4, num_propagation_blocks=1, num_cleaning_blocks=1).eval()
    counted = []

    def counting(m, x, region):
        sums = measure_residues(m, x, region)
        counted.append(int(sums[2]))
        return sums

    passes = dataclasses.replace(model.spec.passes, survey=dataclasses.replace(model.spec.passes.survey, measure=counting))
    model.spec = dataclasses.replace(model.spec, passes=passes)
    for h, w, tile in ((70, 90, 40), (70, 90, 0), (20, 50, 0)):
        counted.clear()
        upscale_tensor(model, torch.rand(3, 3, h, w), make_config("cpu", chunk=2, tile=tile, tile_overlap=10))
        assert sum(counted) == 3 * 3 * h * w, (h, w, tile)
        assert len(counted) == (6 if tile else 1) * 2  # tiles x blocks of frames


def test_progress_has_a_survey_phase_before_the_two_passes():
    torch.manual_seed(0)
    model = RealBasicVSR(mid_channels=4, num_propagation_blocks=1, num_cleaning_blocks=1).eval()
    seen: dict[str, int] = {}

    def on_progress(phases, index, done):
        seen[phases[index].name] = max(done, seen.get(phases[index].name, 0))
        assert [p.name for p in phases] == ["reading", "survey", "backward", "forward"]

    upscale_tensor(model, torch.rand(5, 3, 40, 40), make_config("cpu", chunk=2), Hooks(on_progress=on_progress))
    assert seen["survey"] == 5 and seen["forward"] == 5 and seen["backward"] > 0
