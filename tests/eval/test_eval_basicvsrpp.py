"""`vsrkit eval` with BasicVSR++ (a sequence model) on two real frame-folder clips: the x4 model under the Vid4
protocol and the same-size restoration variant (scale 1) under RGB scoring; the numbers equal a direct computation
on the network's whole-clip output, averaged per clip then over clips.

Tiny checkpoints (8 features, 1 block, random weights, live deformable offsets) saved as plain state dicts.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from eval_clips import carphone, write_clip
from media import run
from torch.nn import functional as F

from vsrkit.data.degrade import degrade
from vsrkit.eval import metrics as M
from vsrkit.eval.protocols import resolve_protocol
from vsrkit.eval.run import evaluate
from vsrkit.models.basicvsrpp import BasicVSRPlusPlus
from vsrkit.models.registry import get_entry


def tiny(low_res: bool) -> BasicVSRPlusPlus:
    torch.manual_seed(1)
    net = BasicVSRPlusPlus(mid_channels=8, num_blocks=1, is_low_res_input=low_res)
    with torch.no_grad():  # live offsets and masks (the official init zeroes the last offset convolution)
        net.deform_align.apply(lambda m: isinstance(m, torch.nn.Conv2d) and m.weight.normal_(0, 0.05))
    return net.eval()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """GT clips a (3 frames) and b (2 frames) of carphone, 96x64; BI x4 LR frames; noisy same-size frames."""
    root = tmp_path_factory.mktemp("bvpp_eval")
    frames = carphone(5)
    clips = {"a": frames[:3], "b": frames[3:]}
    rng = np.random.default_rng(0)
    for name, fr in clips.items():
        write_clip(root / "gt" / name, fr)
        write_clip(root / "lr" / name, [degrade(f, "bi", 4) for f in fr])
        write_clip(root / "noisy" / name,
                   [np.clip(f.astype(int) + rng.integers(-20, 21, f.shape), 0, 255).astype(np.uint8) for f in fr])
    return root, clips


def direct(net: BasicVSRPlusPlus, frames: list[np.ndarray]) -> list[np.ndarray]:
    """The network on the whole clip at once (padded bottom/right by replication to its minimum size, cropped
    back), rounded to uint8."""
    x = torch.stack([torch.from_numpy(f[..., :3]).permute(2, 0, 1).float() / 255 for f in frames])
    h, w = x.shape[-2:]
    side = net.spec.min_size
    x = F.pad(x, (0, max(side - w, 0), 0, max(side - h, 0)), mode="replicate")
    with torch.no_grad():
        y = net(x[None])[0]
    s = net.spec.scale
    y = (y[..., : h * s, : w * s].clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    return list(y)


def expected(net, root, clips, lr_dir: str, y_channel: bool) -> dict[str, list[float]]:
    from eval_clips import read_clip

    out = {}
    for name, gt in clips.items():
        sr = direct(net, read_clip(root / lr_dir / name))
        out[name] = [M.psnr(o, g[..., :3], 0, y_channel) for o, g in zip(sr, gt)]
    return out


def check(result: dict, want: dict[str, list[float]]) -> None:
    # 0.05 dB: the engine's channels-last convolutions may round a few pixels to the next level
    for c in result["clips"]:
        got = [f["psnr"] for f in result["frames"] if f["clip"] == c["name"]]
        assert got == pytest.approx(want[c["name"]], abs=0.05)
        assert c["psnr"] == pytest.approx(np.mean(want[c["name"]]), abs=0.05)
    per_clip = [np.mean(v) for v in want.values()]
    assert result["overall"]["psnr"] == pytest.approx(np.mean(per_clip), abs=0.05)
    # per clip, then over clips: the 3- and 2-frame clips weigh the same
    assert abs(np.mean(per_clip) - np.mean(sum(want.values(), []))) > 1e-3


def test_cli_vid4_protocol_on_a_checkpoint(dataset, tmp_path):
    root, clips = dataset
    net = tiny(True)
    torch.save(net.state_dict(), tmp_path / "bvpp.pth")
    code, out = run("eval", "--weights", tmp_path / "bvpp.pth", "--gt", root / "gt", "--lr", root / "lr",
                    "--protocol", "vid4", "--device", "cpu", "--json", tmp_path / "r.json", "-q")
    assert code == 0, out
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["protocol"]["name"] == "vid4" and r["protocol"]["channel"] == "y"
    assert [c["frames"] for c in r["clips"]] == [3, 2] and [c["scored"] for c in r["clips"]] == [3, 2]
    check(r, expected(net, root, clips, "lr", y_channel=True))


def test_restoration_variant_at_scale_1_with_a_released_protocol(dataset):
    """The same-size variant scores its output against the GT at the input's size (RGB); the net carries the
    released models' run-time protocol (whole clips up to 100 frames, overlap 12)."""
    import dataclasses

    root, clips = dataset
    net = tiny(False)
    released = get_entry("basicvsrpp-reds4")[1].protocol
    assert (released.clip, released.clip_overlap) == (100, 12)
    net.spec = dataclasses.replace(net.spec, protocol=released)
    r = evaluate(net, root / "gt", root / "noisy", protocol=resolve_protocol(None, channel="rgb"), device="cpu",
                 progress=False)
    assert r["protocol"]["channel"] == "rgb"
    check(r, expected(net, root, clips, "noisy", y_channel=False))
