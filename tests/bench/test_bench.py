"""`vsrkit bench`: the fields are measured, not guessed (timings themselves are never asserted)."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from golden import data_path

from vsrkit.bench.run import bench_model, build_model, conv_throughput, parse_size
from vsrkit.cli.main import main

CPU = torch.device("cpu")


def test_frame_model_fields_and_counted_flops():
    net = build_model("bicubic-x4")
    r = bench_model(net, (12, 20), CPU, "fp32", warmup=1, repeat=3)
    # FLOPs: one convolution of the s*s polyphase filters on the (1-channel) frame, a multiply-add = 2
    k = net.polyphase_filters().shape
    assert r["gflop_per_frame"] * 1e9 == pytest.approx(2 * k[0] * k[1] * k[2] * k[3] * 12 * 20)
    assert r["params"] == sum(p.numel() for p in net.parameters()) > 0
    assert r["ms_per_frame"] > 0 and r["fps"] == pytest.approx(1000 / r["ms_per_frame"])
    assert r["ms_per_frame"] == pytest.approx(sorted(r["ms_per_frame_all"])[1])  # the median of 3
    assert r["peak_rss_mib"] >= r["rss_before_mib"] > 10 and r["cuda_max_allocated_mib"] is None
    assert r["size"] == "20x12" and r["output_size"] == "80x48" and r["frames_per_call"] == 1


def test_recurrent_model_roofline_fraction():
    torch.manual_seed(0)
    r = bench_model(build_model("rlsp-7-48"), (24, 32), CPU, "fp32", warmup=1, repeat=2)
    assert r["kind"].startswith("recurrent") and r["input_shape"] == [1, 3, 3, 24, 32]
    assert r["gflop_per_frame"] > 0.1
    roof = conv_throughput(CPU, None)
    assert roof["gflop"] == pytest.approx(2 * 128 * 128 * 9 * 128 * 128 / 1e9)
    assert r["conv_gflops_per_s"] == roof["gflops_per_s"]
    assert 0 < r["roofline_fraction"] <= 1.5
    assert r["roofline_fraction"] == pytest.approx(r["gflops_per_s"] / roof["gflops_per_s"])


def test_sequence_model_counts_per_frame():
    from torch.utils.flop_counter import FlopCounterMode

    from vsrkit.models.basicvsr import BasicVSR

    net = BasicVSR(num_feat=8, num_block=1).eval()  # a small bidirectional model (SpyNet needs 64 pixels)
    r = bench_model(net, (64, 64), CPU, "fp32", frames=2, warmup=0, repeat=1)
    assert r["frames_per_call"] == 2 and r["input_shape"] == [1, 2, 3, 64, 64]
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        net(torch.rand(1, 2, 3, 64, 64))
    assert r["gflop_per_frame"] * 1e9 == pytest.approx(counter.get_total_flops() / 2)


def test_cli_json_table_and_upscale_comparison(tmp_path):
    clip = data_path("clips", "carphone_pristine.mp4")
    out = tmp_path / "b.json"
    res = CliRunner().invoke(main, ["bench", "-m", "bicubic-x4,fsrcnn-x4", "--size", "24x16", "--device", "cpu",
                                    "--warmup", "1", "--repeat", "2", "--clip", str(clip), "--clip-frames", "3",
                                    "--json", str(out)])
    assert res.exit_code == 0, res.output
    r = json.loads(out.read_text())
    assert r["schema"] == "vsrkit-bench/1" and [x["model"] for x in r["results"]] == ["bicubic-x4", "fsrcnn-x4"]
    assert all(x["gflop_per_frame"] > 0 and 0 < x["roofline_fraction"] <= 1.5 for x in r["results"])
    assert r["roofline"][0]["dtype"] == "fp32" and r["roofline"][0]["gflops_per_s"] > 0
    up = r["upscale"]
    assert [u["model"] for u in up] == ["bicubic-x4", "fsrcnn-x4"] and all(u["frames"] == 3 for u in up)
    assert all(u["upscale_ms_per_frame"] > 0 and u["model_ms_per_frame"] > 0 for u in up)
    assert all(u["size"] == "176x144" for u in up)
    for needle in ("ms/frame", "GFLOP/s", "of conv", "bicubic-x4", "fsrcnn-x4", "roofline cpu fp32", "vsrkit upscale"):
        assert needle in res.output


@pytest.mark.parametrize("args, needle", [
    (["--size", "20"], "bad --size"),
    (["--repeat", "0"], "--repeat must be at least 1"),
    (["--precision", "fp8"], "unknown precision"),
    (["-m", "nosuch"], "unknown model"),
])
def test_cli_bad_options(args, needle):
    base = ["bench", "--size", "24x16", "--device", "cpu"]
    if "-m" not in args:
        base += ["-m", "bicubic-x4"]
    res = CliRunner().invoke(main, base + args)
    assert res.exit_code == 2 and needle in res.output and "Traceback" not in res.output


def test_parse_size():
    assert parse_size("320x180") == (180, 320)


def test_basicvsrpp_bench_counts_per_frame():
    """BasicVSR++ (a sequence model with deformable alignment) benches per frame like BasicVSR."""
    from torch.utils.flop_counter import FlopCounterMode

    from vsrkit.models.basicvsrpp import BasicVSRPlusPlus

    net = BasicVSRPlusPlus(mid_channels=8, num_blocks=1).eval()
    r = bench_model(net, (48, 40), CPU, "fp32", frames=3, warmup=0, repeat=1)  # padded to its 64-pixel minimum
    assert r["frames_per_call"] == 3 and r["input_shape"] == [1, 3, 3, 64, 64] and r["ms_per_frame"] > 0
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        net(torch.rand(1, 3, 3, 64, 64))
    assert r["gflop_per_frame"] * 1e9 == pytest.approx(counter.get_total_flops() / 3)
    # the plain name is mmagic's c64n7 with random weights (released names bench at their protocol's 100 frames)
    plain = build_model("basicvsrpp")
    assert (plain.mid_channels, len(plain.backbone["forward_2"].main[2])) == (64, 7)
